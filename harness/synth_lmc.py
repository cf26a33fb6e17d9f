"""Synthetic Light My Cells data: physically modelled cells imaged in transmitted light and fluorescence.

``synthesize_lmc(out)`` writes ``out/train`` and ``out/test`` in the layout of :mod:`vsbench.harness.split`
so that the whole harness can run end to end without the challenge data (``lmc.md`` §2). The images come
from a small optical model, not from noise: a virtual-staining model has something to learn, the three
modalities look different, and the z-deviation of the input slice matters. numpy/scipy only; every
parameter is a named module constant, recorded in each split's ``manifest.json``.

Specimen (per field of view, FOV). Adherent cells are placed without much overlap until 25-60 % of the
field is covered. Each cell is an ellipse (semi-axes 10-22 µm, aspect 0.35-0.8) whose boundary is
modulated by Fourier harmonics 2-5, with a cytoplasmic dome (1-2.5 µm high) and a nuclear dome (total
height 2-6 µm) over an elliptical nucleus that holds a band-pass chromatin texture (0.4-1.5 µm), a
brighter periphery, a refractile envelope and 1-3 dense nucleoli. Mitochondria are worm-like tubules
(0.5 µm wide, 1-4 µm long, persistence random walks) seeded outside the nucleus with a density that
decays away from it. Microtubules are persistence random walks (persistence length 15 µm) radiating from
a centrosome beside the nucleus to the cell edge. Actin is a set of straight-ish stress fibres along the
cell's long axis on the ventral membrane, a cortical rim and a diffuse pool. Refractile granules (lipid
droplets, vesicles) appear in transmitted light only. Structures sit at physical heights: the cell body
fills 0..thickness, the nucleus the middle of the cell, mitochondria at most 1 µm up, stress fibres at
0.25 µm; the specimen is cut into 1 µm horizontal slices, each with an optical path difference
``sum_k dn_k h_k`` (cytoplasm against the medium; nucleus, chromatin, envelope, nucleoli, mitochondria,
granules and filaments against the cytoplasm) and an attenuation ``a`` (weak absorption plus light
scattered beyond the pupil; mainly chromatin, nucleoli, mitochondria, granules).

Transmitted light (lambda = 0.55 µm, medium n = 1.337, objective NA 0.3-0.5). The focal plane at
``best_z`` lies 1-2 µm above the coverslip; plane ``z`` is ``(z - best_z) * step`` above it. Rytov
multi-slice imaging: the complex phase ``-a + i 2 pi/lambda OPD`` of each slice is propagated to the
focal plane by the angular spectrum over its own distance ``d`` and damped by the partial-coherence
envelope ``exp(-(pi NA_c d |f|)^2 / 2)`` of a condenser of numerical aperture NA_c (BF 0.12-0.3, PC
0.2-0.35, DIC 0.3-0.45); the field is ``exp`` of their sum (exactly the thin-object transmittance in
focus), and passes the objective pupil (cutoff NA/lambda, edge softened over NA_c/lambda). Brightfield
(BF) records ``|U|^2``. Zernike phase contrast (PC) multiplies the low-frequency disk of the spectrum
(radius 0.06-0.12 /µm, raised-cosine edge) by ``0.2-0.3 * exp(-i pi/2)``: dark objects with bright
halos. Differential interference contrast (DIC) interferes two copies of the field sheared by 0.1-0.2
µm along a fixed 45° direction with a bias retardation of 0.3-0.8 rad, i.e. multiplies the spectrum by
``sin(pi f.s + bias/2)``: the relief look. Intensities (empty background = 1) are scaled to a per-FOV
photon budget (500-8000 e-/pixel, log-uniform) with an illumination fall-off of up to 15 %, then shot
noise (Poisson; its normal approximation above 50 e-), read noise (1.5-3 e-), gain (0.5-2 ADU/e-) and a
100 ADU offset give uint16 pixels. The specimen is built on a canvas wider than the field by the widest
defocus blur, so light from outside enters the field and the FFT's wrap-around stays out of it.

Each FOV is a z-stack of 11-13 planes, 0.25-0.4 of the depth of field lambda/NA^2 apart (clipped to
0.5-1.0 µm), with ``best_z`` within 3 of the middle plane and at least ``max_deviation`` planes from one
end of the stack. Pixel size 0.2-0.35 µm (OME PhysicalSizeX/Y).

Fluorescence ground truth, for the organelles of the FOV's subset (the combinations of the real data,
none with all four): the organelle's density (projected DNA; mitochondrial volume; microtubule length
plus a diffuse pool and the centrosome; stress fibres plus rim and diffuse pool) with per-cell staining
levels (0.6-1.4), blurred by a Gaussian in-focus PSF (sigma = 0.21 lambda_em / NA, NA 0.75-1.3) plus
10-30 % out-of-focus haze (sigma 1.5 µm), scaled to 300-4000 e- at its 99.9th percentile over 1-5 %
background, with the same camera model; uint16 on the pixel grid of the transmitted-light input.

Splits. FOV ``k`` of each split cycles the modality BF, PC, DIC and the organelle subsets
{Mito, Nuc, Tub}, {Actin, Nuc}, {Mito, Nuc}, {Actin, Mito, Nuc} (two FOVs cover all four organelles and
three all modalities); later FOVs draw a subset with weights the square roots of the real FOV counts (no
Actin with DIC, as in the real data). All randomness of FOV ``k`` comes from generators seeded by
``SeedSequence(seed, spawn_key=(split, k, ...))``: the same arguments give byte-identical files and FOV
``k`` does not depend on how many FOVs are requested. The train split holds every plane of every FOV; the
test split, per FOV, one slice at each z-deviation 0..max_deviation (the side chosen at random where
both exist). Test image ids continue after the train ids.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from vsbench.harness.omeio import PlaneMeta, write_plane
from vsbench.harness.split import (
    BEST_Z_CSV,
    GROUND_TRUTH,
    INPUTS,
    LMC_ORGANELLE_FILES,
    MANIFEST,
    input_name,
    target_name,
    write_best_z,
    write_manifest,
)

GENERATOR = "vsbench.synth_lmc"

# ---- acquisition geometry ---------------------------------------------------------------------------
PIXEL_SIZE_RANGE_UM = (0.2, 0.35)  # pixel size in the specimen plane, per FOV (OME PhysicalSizeX/Y)
Z_STEP_RANGE_UM = (0.5, 1.0)  # distance between z planes, per FOV, clipped to this range ...
Z_STEP_PER_DOF = (0.25, 0.4)  # ... from this fraction of the objective's depth of field wavelength / NA²
NZ_RANGE = (11, 13)  # planes per z-stack, inclusive (raised to max_deviation + 1 if needed)
BEST_Z_SPREAD = 3  # best_z lies within this many planes of the middle plane
FOCUS_HEIGHT_UM = (1.0, 2.0)  # height above the coverslip of the focal plane at best_z

# ---- transmitted-light optics -----------------------------------------------------------------------
WAVELENGTH_UM = 0.55  # illumination wavelength (green filter)
N_MEDIUM = 1.337  # refractive index of the culture medium (propagation medium)
SLICE_UM = 1.0  # thickness of the horizontal slices the specimen is cut into (multi-slice model)
TL_NA_RANGE = (0.3, 0.5)  # objective NA, per FOV: pupil cutoff NA / wavelength
CONDENSER_NA_RANGE = {"BF": (0.12, 0.3), "PC": (0.2, 0.35), "DIC": (0.3, 0.45)}  # partial coherence
PC_RING_AMPLITUDE = (0.2, 0.3)  # amplitude transmission of the phase ring for the direct light
PC_RING_PHASE = -math.pi / 2  # the ring advances the direct light: positive (dark-object) contrast
PC_RING_RADIUS_PER_UM = (0.06, 0.12)  # radius of the low-frequency disk the ring acts on (halo ~1/r)
DIC_SHEAR_UM = (0.1, 0.2)  # lateral shear between the two DIC beams
DIC_SHEAR_ANGLE = math.pi / 4  # fixed shear direction (45° to the x axis)
DIC_BIAS_RAD = (0.3, 0.8)  # bias retardation between the beams

# ---- cells -----------------------------------------------------------------------------------------
CELL_MAJOR_UM = (10.0, 22.0)  # cell semi-major axis
CELL_ASPECT = (0.35, 0.8)  # semi-minor / semi-major axis
CELL_HARMONICS = (2, 3, 4, 5)  # Fourier harmonics modulating the cell boundary ...
CELL_HARMONIC_AMPLITUDE = 0.12  # ... with amplitude up to this / k
CELL_COVERAGE = (0.25, 0.6)  # target fraction of the field covered by cells
CELL_HEIGHT_UM = (1.0, 2.5)  # cytoplasmic dome height at the cell centre
NUCLEUS_HEIGHT_UM = (2.0, 6.0)  # total cell height over the nucleus
NUCLEUS_MAJOR_UM = (4.5, 8.0)  # nucleus semi-major axis (shrunk to fit the cell)
NUCLEUS_ASPECT = (0.65, 0.95)  # nucleus semi-minor / semi-major axis
NUCLEOLI = (1, 3)  # nucleoli per nucleus, inclusive
NUCLEOLUS_RADIUS_UM = (0.6, 1.4)  # nucleolus radius
CHROMATIN_SCALES_UM = (0.4, 1.5)  # band-pass (difference of Gaussians) of the chromatin texture
CHROMATIN_CONTRAST = 0.35  # relative standard deviation of DNA density in the nucleoplasm
MITO_DENSITY_PER_UM2 = (0.12, 0.25)  # mitochondria seeded per µm² of cell area
MITO_LENGTH_UM = (1.0, 4.0)  # tubule length
MITO_WIDTH_UM = 0.5  # tubule diameter
MITO_PERSISTENCE_UM = 3.0  # persistence length of the tubule's centre line
MITO_DECAY_UM = (3.0, 8.0)  # decay length of the seeding density away from the nucleus
MITO_HEIGHT_UM = 1.0  # mitochondria lie at mid-height of the cell, at most this high
MT_PER_CELL = (20, 60)  # microtubules per cell
MT_PERSISTENCE_UM = 15.0  # persistence length of microtubules
MT_WIDTH_UM = 0.025  # microtubule diameter
SF_PER_CELL = (4, 16)  # actin stress fibres per cell
SF_ANGLE_SD_RAD = 0.12  # spread of stress-fibre directions around the cell's long axis
SF_WIDTH_UM = (0.2, 0.5)  # stress-fibre bundle diameter
SF_HEIGHT_UM = 0.25  # stress fibres run along the ventral membrane, this high
ACTIN_RIM_UM = 0.6  # width of the cortical actin rim
GRANULE_DENSITY_PER_UM2 = 0.03  # refractile granules per µm² of cell area
GRANULE_RADIUS_UM = (0.15, 0.4)  # granule radius

# ---- refractive index increments (dimensionless) and absorption (1/µm) ------------------------------
DN_CYTOPLASM = 0.02  # cytoplasm against the medium
DN_NUCLEUS = -0.006  # nucleoplasm against the cytoplasm (the nucleus is slightly less dense)
DN_ENVELOPE = 0.03  # nuclear envelope with lamina and perinuclear ER against the cytoplasm ...
ENVELOPE_UM = (0.3, 1.0)  # ... width of that shell and its thickness seen edge-on
DN_CHROMATIN = 0.008  # per unit of relative DNA-density fluctuation
DN_NUCLEOLUS = 0.03  # nucleolus against the nucleoplasm
DN_MITO = 0.03  # mitochondrion against the cytoplasm
DN_MT = 0.05  # microtubule against the cytoplasm (nearly invisible: 25 nm thick)
DN_ACTIN = 0.03  # stress-fibre bundle against the cytoplasm
DN_GRANULE = 0.06  # lipid droplet / vesicle against the cytoplasm
# attenuation coefficients: absorption plus light scattered by sub-resolution structure beyond the pupil
ABS_CYTOPLASM = 0.003  # cytoplasm, per µm of cell thickness
ABS_CHROMATIN = 0.02  # nucleoplasm, per µm and per unit of relative DNA density
ABS_NUCLEOLUS = 0.06  # nucleoli
ABS_MITO = 0.05  # mitochondria
ABS_GRANULE = 0.4  # lipid droplets and vesicles

# ---- transmitted-light camera -----------------------------------------------------------------------
TL_PHOTONS = (500.0, 8000.0)  # background photo-electrons per pixel, per FOV (log-uniform)
TL_ILLUMINATION_FALLOFF = (0.0, 0.15)  # relative intensity loss from the field centre to the corner
CAMERA_GAIN = (0.5, 2.0)  # ADU per photo-electron
CAMERA_OFFSET_ADU = 100  # camera offset added to every pixel
READ_NOISE_E = (1.5, 3.0)  # read-noise standard deviation in electrons
POISSON_EXACT_BELOW = 50.0  # shot noise is drawn exactly below this mean, normally approximated above

# ---- fluorescence ground truth ----------------------------------------------------------------------
FL_NA_RANGE = (0.75, 1.3)  # objective NA of the fluorescence image
FL_EMISSION_UM = {"nucleus": 0.46, "mitochondria": 0.60, "tubulin": 0.52, "actin": 0.57}  # emission
FL_HAZE = (0.1, 0.3)  # fraction of out-of-focus light ...
FL_HAZE_SIGMA_UM = 1.5  # ... spread by a Gaussian of this sigma
FL_PEAK_PHOTONS = (300.0, 4000.0)  # photo-electrons at the 99.9th percentile of the density (log-uniform)
FL_BACKGROUND = (0.01, 0.05)  # background (autofluorescence, stray light) relative to the peak
FL_EXPRESSION = (0.6, 1.4)  # per-cell staining level, per organelle

# ---- split composition ------------------------------------------------------------------------------
# organelle subsets of the real training data (lmc.md §2.1) with their FOV counts; none has all four
LMC_COMBOS = {
    ("mitochondria", "nucleus"): 1691,
    ("nucleus",): 592,
    ("nucleus", "tubulin"): 146,
    ("mitochondria", "nucleus", "tubulin"): 77,
    ("mitochondria",): 41,
    ("actin", "nucleus"): 20,
    ("actin", "mitochondria", "nucleus"): 7,
}
# the first FOVs of each split: every organelle and every modality within three FOVs
COMBO_CYCLE = (
    ("mitochondria", "nucleus", "tubulin"),
    ("actin", "nucleus"),
    ("mitochondria", "nucleus"),
    ("actin", "mitochondria", "nucleus"),
)
MODALITY_CYCLE = ("BF", "PC", "DIC")
SPLITS = ("train", "test")

_ORGANELLES = tuple(LMC_ORGANELLE_FILES)
_HARM = np.asarray(CELL_HARMONICS, dtype=np.float64)


# ------------------------------------------------------------------------------------------------------
# geometry helpers


def _radius(ang, a, b, fc, fp):
    """Boundary radius of a Fourier-modulated ellipse at in-frame angle ``ang``."""
    rell = a * b / np.sqrt((b * np.cos(ang)) ** 2 + (a * np.sin(ang)) ** 2)
    return rell * (1.0 + np.sum(fc * np.cos(np.asarray(ang)[..., None] * _HARM + fp), axis=-1))


def _rho(x, y, cx, cy, a, b, th, fc, fp):
    """Normalised radius: < 1 inside the shape, 1 on its boundary (same shape as :func:`_radius`)."""
    dx, dy = x - cx, y - cy
    c, s = np.cos(th), np.sin(th)
    u, v = dx * c + dy * s, -dx * s + dy * c
    r = np.hypot(u, v) + 1e-12
    c1, s1 = u / r, v / r
    ck, sk = c1, s1
    mod = 1.0
    for k in range(2, int(_HARM[-1]) + 1):  # cos(k ang), sin(k ang) by the angle-addition recurrence
        ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
        j = int(np.searchsorted(_HARM, k))
        if j < len(_HARM) and _HARM[j] == k:
            mod = mod + fc[..., j] * (ck * np.cos(fp[..., j]) - sk * np.sin(fp[..., j]))
    return np.sqrt((b * u) ** 2 + (a * v) ** 2) / (a * b * mod)


def _to_xy(ang, rho, cx, cy, a, b, th, fc, fp):
    """Absolute coordinates of the point at in-frame angle ``ang`` and normalised radius ``rho``."""
    r = rho * _radius(ang, a, b, fc, fp)
    u, v = r * np.cos(ang), r * np.sin(ang)
    c, s = np.cos(th), np.sin(th)
    return cx + u * c - v * s, cy + u * s + v * c


_CELL_KEYS = ("cx", "cy", "a", "b", "th", "fc", "fp")
_NUC_KEYS = ("nx", "ny", "na", "nb", "nth", "nfc", "nfp")


def _shape(cells, keys, idx, steps=False):
    """Shape parameters of cells ``idx``; with ``steps``, shaped to broadcast against (walk, step) arrays."""
    out = tuple(cells[k][idx] for k in keys)
    if steps:
        out = tuple(v[:, None, :] if v.ndim == 2 else v[:, None] for v in out)
    return out


def _walks(rng, x0, y0, ang0, n_steps, ds, persistence):
    """Persistence random walks (one row per walk): positions after 0..n_steps-1 steps."""
    n = len(x0)
    turns = rng.normal(0.0, math.sqrt(ds / persistence), (n, n_steps)).astype(np.float64)
    turns[:, 0] = 0.0
    ang = ang0[:, None] + np.cumsum(turns, axis=1)
    steps = np.concatenate([np.zeros((n, 1)), np.full((n, n_steps - 1), ds)], axis=1)
    x = x0[:, None] + np.cumsum(steps * np.cos(ang), axis=1)
    y = y0[:, None] + np.cumsum(steps * np.sin(ang), axis=1)
    return x, y


def _splat(x, y, w, n, px):
    """Bilinear deposit of weights at points (µm) on an n x n grid, divided by the pixel area."""
    fx, fy = np.ravel(x) / px - 0.5, np.ravel(y) / px - 0.5
    w = np.ravel(w)
    x0, y0 = np.floor(fx), np.floor(fy)
    tx, ty = fx - x0, fy - y0
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    xi = np.concatenate([x0, x0 + 1, x0, x0 + 1])
    yi = np.concatenate([y0, y0, y0 + 1, y0 + 1])
    ww = np.concatenate([w * (1 - tx) * (1 - ty), w * tx * (1 - ty), w * (1 - tx) * ty, w * tx * ty])
    ok = (xi >= 0) & (xi < n) & (yi >= 0) & (yi < n)
    out = np.bincount(yi[ok] * n + xi[ok], weights=ww[ok], minlength=n * n)
    return (out / (px * px)).reshape(n, n).astype(np.float32)


def _blur(img, sigma_px):
    return ndimage.gaussian_filter(img, sigma_px, mode="constant", truncate=3.5)


# ------------------------------------------------------------------------------------------------------
# specimen


def place_cell_outlines(rng, extent, coverage=CELL_COVERAGE, major_um=CELL_MAJOR_UM, aspect=CELL_ASPECT,
                        overlap=0.95, tries_per_cell=20):
    """Yield ``(cx, cy, a, b, th, fc, fp)`` of cells on a square canvas of ``extent`` µm until the
    drawn coverage is reached: ellipses (semi-axes ``a`` > ``b``, angle ``th``) with a boundary
    modulated by CELL_HARMONICS (amplitudes ``fc``, phases ``fp``), centres at least ``overlap``
    times the sum of their mean radii apart. The caller may draw from ``rng`` between yields (the
    nucleus of the cell just yielded): the sequence of draws stays the same."""
    target_coverage = rng.uniform(*coverage)
    mean_area = math.pi * np.mean(major_um) ** 2 * np.mean(aspect)
    target = max(2, int(round(target_coverage * extent * extent / mean_area)))
    radii = np.empty(0)
    centres = np.empty((0, 2))
    for _ in range(target * tries_per_cell):
        if len(radii) >= target:
            break
        a = rng.uniform(*major_um)
        b = a * rng.uniform(*aspect)
        cx, cy = rng.uniform(-0.05 * extent, 1.05 * extent, 2)
        r = math.sqrt(a * b)
        if len(radii) and np.any(np.hypot(*(centres - (cx, cy)).T) < overlap * (radii + r)):
            continue
        th = rng.uniform(0, math.pi)
        fc = rng.uniform(0, CELL_HARMONIC_AMPLITUDE, len(_HARM)) / _HARM
        fp = rng.uniform(0, 2 * math.pi, len(_HARM))
        yield cx, cy, a, b, th, fc, fp
        radii = np.append(radii, r)
        centres = np.vstack([centres, (cx, cy)])


def _place_cells(rng, extent):
    """Cell shapes and nuclei on a square canvas of ``extent`` µm."""
    cells = {k: [] for k in _CELL_KEYS + _NUC_KEYS}
    for cx, cy, a, b, th, fc, fp in place_cell_outlines(rng, extent):
        # nucleus: inside the cell, roughly aligned with it, shrunk until its boundary is well inside
        na = min(rng.uniform(*NUCLEUS_MAJOR_UM), 0.55 * a)
        nb = min(na * rng.uniform(*NUCLEUS_ASPECT), 0.7 * b)
        nth = th + rng.normal(0, 0.2)
        off_u, off_v = rng.uniform(-0.25, 0.25) * a, rng.uniform(-0.1, 0.1) * b
        nx = cx + off_u * math.cos(th) - off_v * math.sin(th)
        ny = cy + off_u * math.sin(th) + off_v * math.cos(th)
        nfc = rng.uniform(0, 0.04, len(_HARM)) / _HARM
        nfp = rng.uniform(0, 2 * math.pi, len(_HARM))
        ring = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        for _shrink in range(12):
            bx, by = _to_xy(ring, 1.0, nx, ny, na, nb, nth, nfc, nfp)
            if np.max(_rho(bx, by, cx, cy, a, b, th, fc, fp)) < 0.8:
                break
            na, nb = 0.9 * na, 0.9 * nb
            nx, ny = 0.8 * nx + 0.2 * cx, 0.8 * ny + 0.2 * cy
        values = (cx, cy, a, b, th, fc, fp, nx, ny, na, nb, nth, nfc, nfp)
        for key, val in zip(_CELL_KEYS + _NUC_KEYS, values, strict=True):
            cells[key].append(val)
    cells = {k: np.asarray(v, dtype=np.float64) for k, v in cells.items()}
    n = len(cells["cx"])
    cells["n"] = n
    cells["h_cyto"] = rng.uniform(*CELL_HEIGHT_UM, n)
    cells["h_nuc"] = rng.uniform(*NUCLEUS_HEIGHT_UM, n)
    cells["expr"] = {o: rng.uniform(*FL_EXPRESSION, n) for o in _ORGANELLES}
    cells["mito_decay"] = rng.uniform(*MITO_DECAY_UM, n)
    return cells


class _Slices:
    """Optical path difference (µm) and absorption of the specimen in horizontal slices SLICE_UM thick."""

    def __init__(self, n):
        self.count = int(math.ceil(max(NUCLEUS_HEIGHT_UM[1], CELL_HEIGHT_UM[1]) / SLICE_UM))
        self.opd = np.zeros((self.count, n, n), np.float32)
        self.absorb = np.zeros((self.count, n, n), np.float32)

    def heights(self):
        return (np.arange(self.count) + 0.5) * SLICE_UM

    def add(self, opd, absorb, z0, z1, sl=(slice(None), slice(None))):
        """Spread a structure between heights z0 and z1 (µm, maps or scalars) over the slices it spans."""
        z0 = np.clip(z0, 0, self.count * SLICE_UM - 1e-3)
        z1 = np.maximum(z1, z0 + 1e-3)
        for k in range(self.count):
            overlap = np.minimum(z1, (k + 1) * SLICE_UM) - np.maximum(z0, k * SLICE_UM)
            frac = np.clip(overlap, 0, None) / (z1 - z0)
            if np.any(frac):
                self.opd[k][sl] += opd * frac
                self.absorb[k][sl] += absorb * frac


def _specimen(rng, n, px):
    """The specimen's optical slices and its four fluorescent densities on an n x n canvas."""
    extent = n * px
    cells = _place_cells(rng, extent)
    thick = np.zeros((n, n), np.float32)
    slices = _Slices(n)
    dens = {o: np.zeros((n, n), np.float32) for o in _ORGANELLES}
    noise = rng.standard_normal((n, n)).astype(np.float32)
    s1, s2 = (s / px for s in CHROMATIN_SCALES_UM)
    texture = _blur(noise, s1) - _blur(noise, s2)
    texture /= max(float(texture.std()), 1e-12)

    # ---- per-cell fields on the cell's bounding box
    for i in range(cells["n"]):
        cs = _shape(cells, _CELL_KEYS, i)
        ns = _shape(cells, _NUC_KEYS, i)
        reach = max(cs[2], cs[3]) * (1 + float(np.sum(cs[5])))
        j0, j1 = max(0, int((cs[0] - reach) / px)), min(n, int((cs[0] + reach) / px) + 2)
        i0, i1 = max(0, int((cs[1] - reach) / px)), min(n, int((cs[1] + reach) / px) + 2)
        if j0 >= j1 or i0 >= i1:
            continue
        X = ((np.arange(j0, j1) + 0.5) * px)[None, :]
        Y = ((np.arange(i0, i1) + 0.5) * px)[:, None]
        sl = (slice(i0, i1), slice(j0, j1))
        rc = _rho(X, Y, *cs)
        rn = _rho(X, Y, *ns)
        dome_c = cells["h_cyto"][i] * np.clip(1 - rc**2, 0, None) ** 0.7
        dome_n = cells["h_nuc"][i] * np.sqrt(np.clip(1 - rn**2, 0, None))
        body = np.maximum(dome_c, dome_n)
        thick[sl] = np.maximum(thick[sl], body)
        hn = 0.85 * dome_n  # nucleoplasm thickness (the cortex and cytoplasm lie above and below)
        nl = np.zeros_like(hn)
        in_nl = np.zeros_like(hn)
        for _ in range(rng.integers(NUCLEOLI[0], NUCLEOLI[1] + 1)):
            r = min(rng.uniform(*NUCLEOLUS_RADIUS_UM), 0.35 * ns[3])
            qx, qy = _to_xy(rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.5), *ns)
            d2 = ((X - qx) ** 2 + (Y - qy) ** 2) / r**2
            nl = np.maximum(nl, 2 * r * np.sqrt(np.clip(1 - d2, 0, None)))
            in_nl = np.maximum(in_nl, np.exp(-d2 * 2))
        nl = np.minimum(nl, hn)
        dna_rel = np.clip(1 + CHROMATIN_CONTRAST * texture[sl], 0.15, None) * (1 - 0.85 * in_nl)
        dna_rel = dna_rel + 0.4 * np.exp(-(((1 - rn) * ns[3] / 0.5) ** 2)) * (rn < 1)  # peripheral chromatin
        envelope = ENVELOPE_UM[1] * np.exp(-(((1 - rn) * ns[3] / ENVELOPE_UM[0]) ** 2)) * (rn < 1)
        # the nucleus sits in the middle of the cell's height, the nucleoli in the middle of the nucleus
        slices.add(DN_NUCLEUS * hn + DN_CHROMATIN * (dna_rel - 1) * hn + DN_ENVELOPE * envelope,
                   ABS_CHROMATIN * dna_rel * hn, (body - hn) / 2, (body + hn) / 2, sl)
        slices.add(DN_NUCLEOLUS * nl, ABS_NUCLEOLUS * nl, (body - nl) / 2, (body + nl) / 2, sl)
        dens["nucleus"][sl] += cells["expr"]["nucleus"][i] * hn * dna_rel
        rim = np.exp(-(((1 - rc) * math.sqrt(cs[2] * cs[3]) / ACTIN_RIM_UM) ** 2)) * (rc < 1)
        dens["actin"][sl] += cells["expr"]["actin"][i] * (1.0 * rim + 0.08 * body)
        dens["tubulin"][sl] += cells["expr"]["tubulin"][i] * 0.04 * dome_c

    slices.add(DN_CYTOPLASM * thick, ABS_CYTOPLASM * thick, 0, thick)
    mid = thick / 2
    nc = cells["n"]
    area = math.pi * cells["a"] * cells["b"]

    # ---- mitochondria: seeds outside the nucleus, denser near it; worm-like tubules
    ncand = rng.poisson(3 * rng.uniform(*MITO_DENSITY_PER_UM2) * area)
    owner = np.repeat(np.arange(nc), ncand)
    if len(owner):
        ang = rng.uniform(0, 2 * math.pi, len(owner))
        sx, sy = _to_xy(ang, np.sqrt(rng.uniform(0, 0.9**2, len(owner))), *_shape(cells, _CELL_KEYS, owner))
        rn = _rho(sx, sy, *_shape(cells, _NUC_KEYS, owner))
        dist = (rn - 1) * np.sqrt(cells["na"][owner] * cells["nb"][owner])
        keep = (rn > 1.05) & (rng.uniform(size=len(owner)) < np.exp(-dist / cells["mito_decay"][owner]))
        owner, sx, sy = owner[keep], sx[keep], sy[keep]
    if len(owner):
        ds = min(0.1, px / 2)
        nsteps = int(math.ceil(MITO_LENGTH_UM[1] / ds)) + 1
        length = rng.uniform(*MITO_LENGTH_UM, len(owner))
        # start half a length back so the seed is the tubule's middle
        x, y = _walks(rng, sx, sy, rng.uniform(0, 2 * math.pi, len(owner)), nsteps, ds, MITO_PERSISTENCE_UM)
        end = (np.arange(len(owner)), np.minimum((length / ds).astype(int), nsteps - 1))
        x = x - 0.5 * (x[end] - sx)[:, None]
        y = y - 0.5 * (y[end] - sy)[:, None]
        alive = (np.arange(nsteps)[None, :] * ds) <= length[:, None]
        o2 = np.broadcast_to(owner[:, None], x.shape)
        inside = ((_rho(x, y, *_shape(cells, _CELL_KEYS, owner, True)) < 0.97)
                  & (_rho(x, y, *_shape(cells, _NUC_KEYS, owner, True)) > 1))
        ok = alive & inside
        w = ds * cells["expr"]["mitochondria"][o2]
        line = _splat(x[ok], y[ok], w[ok], n, px)  # expression-weighted length per µm²
        line_plain = _splat(x[ok], y[ok], np.full(int(ok.sum()), ds), n, px)
        sig = max(MITO_WIDTH_UM / 2.6, 0.35 * px) / px
        xs_area = math.pi * (MITO_WIDTH_UM / 2) ** 2
        h_mito = xs_area * _blur(line_plain, sig)
        zc = np.minimum(mid, MITO_HEIGHT_UM)
        slices.add(DN_MITO * h_mito, ABS_MITO * h_mito, zc - h_mito / 2, zc + h_mito / 2)
        dens["mitochondria"] += xs_area * _blur(line, sig)

    # ---- microtubules from a centrosome beside the nucleus to the cell edge
    cen_x, cen_y = np.empty(nc), np.empty(nc)
    for i in range(nc):
        ns = _shape(cells, _NUC_KEYS, i)
        dx, dy = cells["cx"][i] - ns[0], cells["cy"][i] - ns[1]
        phi = math.atan2(dy, dx) if math.hypot(dx, dy) > 0.5 else rng.uniform(0, 2 * math.pi)
        phi += rng.normal(0, 0.5)
        # in-frame angle of that direction, then 0.8 µm beyond the nuclear boundary
        bx, by = _to_xy(phi - ns[4], 1.0, *ns)
        r = math.hypot(bx - ns[0], by - ns[1]) + 0.8
        cen_x[i], cen_y[i] = ns[0] + r * math.cos(phi), ns[1] + r * math.sin(phi)
    nmt = rng.integers(MT_PER_CELL[0], MT_PER_CELL[1] + 1, nc)
    owner = np.repeat(np.arange(nc), nmt)
    if len(owner):
        ds = min(0.2, px * 0.7)
        maxlen = 1.3 * float(np.max(cells["a"]))
        nsteps = int(math.ceil(maxlen / ds))
        x, y = _walks(rng, cen_x[owner], cen_y[owner], rng.uniform(0, 2 * math.pi, len(owner)), nsteps, ds,
                      MT_PERSISTENCE_UM)
        o2 = np.broadcast_to(owner[:, None], x.shape)
        inside = _rho(x, y, *_shape(cells, _CELL_KEYS, owner, True)) < 0.97
        alive = np.cumprod(inside, axis=1).astype(bool)
        alive &= (np.arange(nsteps)[None, :] * ds) <= (1.3 * cells["a"][owner])[:, None]
        sig = max(0.12, 0.35 * px) / px
        line_plain = _splat(x[alive], y[alive], np.full(int(alive.sum()), ds), n, px)
        line = _splat(x[alive], y[alive], ds * cells["expr"]["tubulin"][o2][alive], n, px)
        slices.add(DN_MT * math.pi * (MT_WIDTH_UM / 2) ** 2 * _blur(line_plain, sig), 0, mid, mid)
        cen = _splat(cen_x, cen_y, 3.0 * cells["expr"]["tubulin"], n, px)
        dens["tubulin"] += _blur(line + cen, sig)

    # ---- actin stress fibres along the long axis
    nsf = rng.integers(SF_PER_CELL[0], SF_PER_CELL[1] + 1, nc)
    owner = np.repeat(np.arange(nc), nsf)
    if len(owner):
        ds = min(0.2, px * 0.7)
        a, b = cells["a"][owner], cells["b"][owner]
        th = cells["th"][owner] + rng.normal(0, SF_ANGLE_SD_RAD, len(owner))
        off = rng.uniform(-0.85, 0.85, len(owner)) * b
        bow = rng.normal(0, 0.02, len(owner))
        nsteps = int(math.ceil(2.6 * float(np.max(cells["a"])) / ds))
        s = (np.arange(nsteps)[None, :] * ds) - 1.3 * a[:, None]
        v = off[:, None] + bow[:, None] * s**2
        x = cells["cx"][owner][:, None] + s * np.cos(th)[:, None] - v * np.sin(th)[:, None]
        y = cells["cy"][owner][:, None] + s * np.sin(th)[:, None] + v * np.cos(th)[:, None]
        o2 = np.broadcast_to(owner[:, None], x.shape)
        ok = (_rho(x, y, *_shape(cells, _CELL_KEYS, owner, True)) < 0.93) & (np.abs(s) <= 1.3 * a[:, None])
        width = rng.uniform(*SF_WIDTH_UM, len(owner))
        xs_area = math.pi * (width / 2) ** 2
        sig = max(0.15, 0.35 * px) / px
        line_plain = _splat(x[ok], y[ok], (ds * np.broadcast_to(xs_area[:, None], x.shape))[ok], n, px)
        slices.add(DN_ACTIN * _blur(line_plain, sig), 0, SF_HEIGHT_UM, SF_HEIGHT_UM)
        wexp = ds * (xs_area / xs_area.mean())[:, None] * cells["expr"]["actin"][o2]
        dens["actin"] += 1.2 * _blur(_splat(x[ok], y[ok], wexp[ok], n, px), sig)

    # ---- refractile granules (visible in transmitted light only)
    ngr = rng.poisson(GRANULE_DENSITY_PER_UM2 * area)
    owner = np.repeat(np.arange(nc), ngr)
    if len(owner):
        ang = rng.uniform(0, 2 * math.pi, len(owner))
        gx, gy = _to_xy(ang, np.sqrt(rng.uniform(0, 0.85**2, len(owner))), *_shape(cells, _CELL_KEYS, owner))
        rad = rng.uniform(*GRANULE_RADIUS_UM, len(owner))
        vol = 4 / 3 * math.pi * rad**3
        sig = max(float(np.mean(GRANULE_RADIUS_UM)) / 1.5, 0.35 * px) / px
        h_gr = _blur(_splat(gx, gy, vol, n, px), sig)
        slices.add(DN_GRANULE * h_gr, ABS_GRANULE * h_gr, mid - h_gr / 2, mid + h_gr / 2)
    return slices, dens, nc


# ------------------------------------------------------------------------------------------------------
# imaging


def _camera(rng, expected_e, gain, read_e):
    """Photo-electrons -> uint16 ADU: shot noise, read noise, gain, offset."""
    lam = np.clip(expected_e, 0, None).astype(np.float32)
    # shot plus read noise, with the shot noise in its normal approximation (variance = mean) ...
    noise = rng.standard_normal(lam.shape, dtype=np.float32)
    e = lam + np.sqrt(lam + np.float32(read_e**2)) * noise
    small = lam < POISSON_EXACT_BELOW
    if small.any():  # ... except at low counts, where it is drawn exactly
        e[small] = rng.poisson(lam[small]) + read_e * noise[small]
    adu = gain * e + CAMERA_OFFSET_ADU
    return np.clip(np.rint(adu), 0, 65535).astype(np.uint16)


class _TLMicroscope:
    """Angular-spectrum imaging of one sliced specimen in one modality at any defocus.

    Rytov approximation: the complex phase ``log t_k = -a_k + i phi_k`` of every slice is propagated
    to the focal plane over its own distance, damped by the partial-coherence envelope of that distance,
    and the field there is ``exp`` of their sum; it then passes the objective pupil and the modality's
    pupil filter. In focus and for a single slice this is the thin-object product of transmittances."""

    def __init__(self, slices, focus_um, px, modality, na, na_c, rng):
        n = slices.opd.shape[1]
        self.na, self.na_c = na, na_c
        f1 = sfft.fftfreq(n, d=px)
        fx, fy = f1[None, :], f1[:, None]
        f = np.hypot(fx, fy)
        df = 1.0 / (n * px)
        # pupil edge softened over NA_c / wavelength: the source-averaged (partially coherent) cutoff
        soft = max(self.na_c / WAVELENGTH_UM, df)
        spec = np.clip((self.na / WAVELENGTH_UM - f) / soft + 0.5, 0, 1).astype(np.complex64)
        self.params = {}
        self.background = 1.0
        if modality == "PC":
            gamma = rng.uniform(*PC_RING_AMPLITUDE)
            radius = rng.uniform(*PC_RING_RADIUS_PER_UM)
            # raised-cosine edge from 0.5 to 1.5 x radius: the ring's finite width, no ringing
            disk = 0.5 + 0.5 * np.cos(math.pi * np.clip(f / radius - 0.5, 0, 1))
            spec = spec * (1 - (1 - gamma * np.exp(1j * PC_RING_PHASE)) * disk)
            self.background = gamma**2
            self.params.update(ring_amplitude=gamma, ring_radius_per_um=radius)
        elif modality == "DIC":
            shear = rng.uniform(*DIC_SHEAR_UM)
            bias = rng.uniform(*DIC_BIAS_RAD)
            proj = fx * math.cos(DIC_SHEAR_ANGLE) + fy * math.sin(DIC_SHEAR_ANGLE)
            spec = spec * np.sin(math.pi * proj * shear + bias / 2)
            self.background = math.sin(bias / 2) ** 2
            self.params.update(shear_um=shear, bias_rad=bias)
        self.filter = spec.astype(np.complex64)
        k0 = N_MEDIUM / WAVELENGTH_UM
        self.f2 = (f**2).astype(np.float32)
        self.kz = (np.sqrt(np.clip(k0**2 - f**2, 0, None)) - k0).astype(np.float32)
        propagating = f < k0  # evanescent components do not reach the focal plane
        self.layers = []  # (spectrum of a slice's complex phase, distance of the slice below the focal plane)
        for k, z in enumerate(slices.heights()):
            if not (np.any(slices.opd[k]) or np.any(slices.absorb[k])):
                continue
            psi = -slices.absorb[k] + (2j * math.pi / WAVELENGTH_UM) * slices.opd[k]
            self.layers.append(((sfft.fft2(psi.astype(np.complex64)) * propagating).astype(np.complex64),
                                focus_um - z))

    def intensity(self, dz):
        """Image intensity with the focal plane ``dz`` µm above its best-focus height, background = 1."""
        acc = np.zeros(self.f2.shape, np.complex64)
        for spec, below in self.layers:
            d = dz + below
            envelope = np.exp(np.float32(-0.5 * (math.pi * self.na_c * d) ** 2) * self.f2)
            phase = np.float32(2 * math.pi * d) * self.kz
            acc += spec * (envelope * np.cos(phase) + 1j * (envelope * np.sin(phase)))
        field = np.exp(sfft.ifft2(acc))
        u = sfft.ifft2(sfft.fft2(field) * self.filter)
        return (u.real**2 + u.imag**2) / self.background


def _seq(seed, *key):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


def _loguniform(rng, lo, hi):
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _fov_plan(seed, split_idx, k, max_deviation):
    """Modality, organelles and z-stack geometry of FOV ``k`` (independent of the number of FOVs)."""
    rng = _seq(seed, split_idx, k, 0)
    modality = MODALITY_CYCLE[k % len(MODALITY_CYCLE)]
    if k < len(COMBO_CYCLE):
        combo = COMBO_CYCLE[k]
    else:
        combos = [c for c in LMC_COMBOS if not (modality == "DIC" and "actin" in c)]
        w = np.sqrt([LMC_COMBOS[c] for c in combos])
        combo = combos[int(rng.choice(len(combos), p=w / w.sum()))]
    nz = max(int(rng.integers(NZ_RANGE[0], NZ_RANGE[1] + 1)), max_deviation + 1)
    valid = [z for z in range(nz) if z >= max_deviation or nz - 1 - z >= max_deviation]
    near = [z for z in valid if abs(z - (nz - 1) / 2) <= BEST_Z_SPREAD]
    best_z = int(rng.choice(near or valid))
    na = float(rng.uniform(*TL_NA_RANGE))
    na_c = float(rng.uniform(*CONDENSER_NA_RANGE[modality]))
    step = float(np.clip(rng.uniform(*Z_STEP_PER_DOF) * WAVELENGTH_UM / na**2, *Z_STEP_RANGE_UM))
    return {
        "modality": modality,
        "organelles": list(combo),
        "nz": nz,
        "best_z": best_z,
        "z_step_um": step,
        "pixel_size_um": float(rng.uniform(*PIXEL_SIZE_RANGE_UM)),
        "objective_na": na,
        "condenser_na": na_c,
        "focus_height_um": float(rng.uniform(*FOCUS_HEIGHT_UM)),
    }


def _test_planes(rng, nz, best_z, max_deviation):
    planes = []
    for d in range(max_deviation + 1):
        options = sorted({z for z in (best_z - d, best_z + d) if 0 <= z < nz})
        planes.append(int(options[rng.integers(len(options))]))
    return planes


def _render_fov(root, seed, split_idx, k, image_id, size, max_deviation):
    plan = _fov_plan(seed, split_idx, k, max_deviation)
    nz, best_z, step, px = plan["nz"], plan["best_z"], plan["z_step_um"], plan["pixel_size_um"]
    modality = plan["modality"]
    if SPLITS[split_idx] == "train":
        planes = list(range(nz))
    else:
        planes = _test_planes(_seq(seed, split_idx, k, 1), nz, best_z, max_deviation)
    # canvas: the field plus a margin wider than the widest defocus blur, so no light wraps around
    max_dz = max(abs(z - best_z) for z in planes) * step + max(NUCLEUS_HEIGHT_UM[1], CELL_HEIGHT_UM[1])
    na_max = TL_NA_RANGE[1]
    margin = int(math.ceil(max_dz * na_max / math.sqrt(1 - na_max**2) / px)) + 16
    n = sfft.next_fast_len(size + 2 * margin)
    margin = (n - size) // 2
    crop = (slice(margin, margin + size), slice(margin, margin + size))

    slices, dens, ncells = _specimen(_seq(seed, split_idx, k, 2), n, px)
    orng = _seq(seed, split_idx, k, 3)
    scope = _TLMicroscope(slices, plan["focus_height_um"], px, modality, plan["objective_na"],
                          plan["condenser_na"], orng)
    del slices
    photons = _loguniform(orng, *TL_PHOTONS)
    gain = float(orng.uniform(*CAMERA_GAIN))
    read_e = float(orng.uniform(*READ_NOISE_E))
    falloff = float(orng.uniform(*TL_ILLUMINATION_FALLOFF))
    centre = orng.uniform(0.3, 0.7, 2) * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    illum = 1 - falloff * ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * (0.75 * size) ** 2)
    meta = PlaneMeta(px, px, modality)
    rows = []
    for z in planes:
        intensity = scope.intensity((z - best_z) * step)[crop]
        img = _camera(_seq(seed, split_idx, k, 4, z), photons * illum * intensity, gain, read_e)
        name = input_name(image_id, modality, z)
        write_plane(root / INPUTS / name, img, meta)
        rows.append((name, modality, z, best_z))

    frng = _seq(seed, split_idx, k, 5)
    fl_na = float(frng.uniform(*FL_NA_RANGE))
    haze = float(frng.uniform(*FL_HAZE))
    for oi, organelle in enumerate(_ORGANELLES):  # draw for all four: values do not depend on the subset
        peak = _loguniform(frng, *FL_PEAK_PHOTONS)
        bg = float(frng.uniform(*FL_BACKGROUND)) * peak
        fgain = float(frng.uniform(*CAMERA_GAIN))
        fread = float(frng.uniform(*READ_NOISE_E))
        if organelle not in plan["organelles"]:
            continue
        sigma = math.hypot(0.21 * FL_EMISSION_UM[organelle] / fl_na, 0.3 * px) / px
        d = dens[organelle]
        f = (1 - haze) * _blur(d, sigma) + haze * _blur(d, FL_HAZE_SIGMA_UM / px)
        top = float(np.percentile(f, 99.9))  # over the whole canvas: the brightness is the specimen's
        scale = peak / top if top > 0 else 0.0
        img = _camera(_seq(seed, split_idx, k, 6, oi), scale * f[crop] + bg, fgain, fread)
        write_plane(root / GROUND_TRUTH / target_name(image_id, organelle), img,
                    PlaneMeta(px, px, LMC_ORGANELLE_FILES[organelle]))
    info = {"image_id": image_id, **plan, "n_cells": int(ncells), "planes": planes,
            "tl_photons": photons, "camera_gain": gain, "fluorescence_na": fl_na,
            **{k2: float(v) for k2, v in scope.params.items()}}
    return rows, info


def _model_constants() -> dict:
    imported = {"BEST_Z_CSV", "GROUND_TRUTH", "INPUTS", "LMC_ORGANELLE_FILES", "MANIFEST"}
    names = [k for k, v in globals().items()
             if k.isupper() and k not in imported and isinstance(v, (int, float, tuple, dict, str))]
    out = {}
    for name in names:
        v = globals()[name]
        if name in ("LMC_COMBOS",):
            v = {"+".join(c): w for c, w in v.items()}
        elif name == "COMBO_CYCLE":
            v = ["+".join(c) for c in v]
        out[name] = list(v) if isinstance(v, tuple) else v
    return out


def _written_by_us(root: Path) -> bool:
    try:
        return json.loads((root / MANIFEST).read_text())["info"]["generator"] == GENERATOR
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _prepare(root: Path) -> None:
    if root.exists():
        if _written_by_us(root):
            shutil.rmtree(root)  # a split this generator wrote before: replace it
        elif any(root.iterdir()):
            raise FileExistsError(f"{root}: exists, is not empty and is not a split written by {GENERATOR}")
    (root / INPUTS).mkdir(parents=True, exist_ok=True)
    (root / GROUND_TRUTH).mkdir(parents=True, exist_ok=True)


def synthesize_lmc(out: Path, fovs: int = 6, size: int = 256, seed: int = 0, train_fovs: int | None = None,
                   max_deviation: int = 5, progress: bool = False) -> dict[str, Path]:
    """Write a synthetic Light My Cells ``train`` and ``test`` split under ``out``.

    ``fovs`` test fields of view (each gives ``max_deviation + 1`` test inputs), ``train_fovs`` (default
    ``fovs``) training FOVs with every z plane as input, images of ``size`` x ``size`` pixels.
    Same arguments, same bytes. Returns ``{"train": out/"train", "test": out/"test"}``.
    """
    from tqdm import tqdm

    train_fovs = fovs if train_fovs is None else train_fovs
    if fovs < 0 or train_fovs < 0 or size < 16 or max_deviation < 0:
        raise ValueError("synthesize_lmc: need fovs, train_fovs, max_deviation >= 0 and size >= 16")
    out = Path(out)
    counts = {"train": train_fovs, "test": fovs}
    first_id = {"train": 0, "test": train_fovs}
    paths = {}
    with tqdm(total=train_fovs + fovs, desc="synth lmc", unit="fov", file=sys.stderr,
              disable=not progress) as bar:
        for split_idx, split in enumerate(SPLITS):
            root = out / split
            _prepare(root)
            rows, table = [], []
            for k in range(counts[split]):
                r, info = _render_fov(root, seed, split_idx, k, first_id[split] + k, size, max_deviation)
                rows.extend(r)
                table.append(info)
                bar.update(1)
            write_best_z(root / GROUND_TRUTH / BEST_Z_CSV, rows)
            info = {
                "generator": GENERATOR,
                "split": split,
                "params": {"fovs": fovs, "train_fovs": train_fovs, "size": size, "seed": seed,
                           "max_deviation": max_deviation},
                "model": _model_constants(),
                "fov_table": table,
            }
            write_manifest(root, "lmc", info)
            paths[split] = root
    return paths
