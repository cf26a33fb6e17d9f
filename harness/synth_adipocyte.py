"""Synthetic Adipocyte Cell Imaging Challenge data: brightfield z-stacks and three fluorescence channels.

``synthesize_adipocyte(out)`` writes one split directory for the task ``adipocyte`` in the layout of the
challenge (``adipocyte.md`` §2): Yokogawa CV7000 file names, 7 brightfield planes and 3 fluorescence
channels per image set, uint16 TIFF. The images come from a small optical model of differentiated
adipocytes, so that a virtual-staining model has something to learn, the brightfield shows lipid
droplets clearly and nuclei only faintly (as in the real data), the z-window of the input matters, and
the fluorescence is misaligned against the brightfield the way the Soft Matter Lab report describes.
numpy/scipy only; every parameter is a named module constant, recorded in ``manifest.json``.

Layout::

    OUT/inputs/AssayPlate_Greiner_#655090_<well>_T0001F<site:03d>L01A04Z<zz:02d>C04.tif   zz = 01..07
    OUT/ground_truth/AssayPlate_Greiner_#655090_<well>_T0001F<site:03d>L01A0<c>Z01C0<c>.tif
        c = 1 nuclei (Hoechst), 2 lipid droplets (Bodipy), 3 cytoplasm (CellTracker Red)
    OUT/manifest.json   task "adipocyte", sha256 of every file, info (below)

Image set ``k`` (0-based) is site ``k % N_sites + 1`` of well ``WELLS[k // N_sites]`` (the 8 training
wells; N_sites = 6/8/12 at 20x/40x/60x, so at most 48/64/96 sets).

Specimen (per image set). A confluent layer of cells (Fourier-modulated ellipses, semi-axes 12-28 µm,
60-85 % of the area covered), each with an elliptical nucleus (semi-axis 6-10 µm) and a cytoplasmic dome
(2-4 µm high, 4-7 µm over the nucleus). A fraction (70 %) of the cells is differentiated and holds
15-90 lipid droplets with log-uniformly distributed radii 0.4-6 µm (many small, few large), packed
without overlap in the cytoplasm around the nucleus; the cell body covers every droplet. Refractive
index increments: cytoplasm +0.02 against the medium, nucleoplasm -0.006 against the cytoplasm (nuclei
have a slightly *lower* index than cytoplasm, Schürmann et al. 2016, cited by the seed report: they are
almost invisible in brightfield), lipid droplets +0.10 (n ≈ 1.46 against ≈ 1.36, Yanina et al. 2018:
the dominant brightfield feature). The specimen is cut into 1 µm horizontal slices (optical path
difference and weak attenuation per slice), reusing :class:`vsbench.harness.synth_lmc._Slices`.

Brightfield (transmitted light). The multi-slice Rytov angular-spectrum model of
:class:`vsbench.harness.synth_lmc._TLMicroscope` (lambda 0.55 µm, medium n 1.337), objective NA 0.75 /
0.95 / 1.2 and condenser NA 0.2-0.3 (partial-coherence envelope). ``NZ_STACK = 13`` planes are
synthesized at heights ``focus + (j - 6) * step`` (j = 0..12, step 2.0 / 1.5 / 1.0 µm), the focal
plane at best focus lying 3-5 µm above the coverslip. **Z-deviation** ``d``: the best-focus-centred
window is planes j = 3..9 (its Z04 in focus); image set ``k`` has ``d = k % (max_shift + 1)`` and its
window is shifted by ``z_shift = ±d`` planes (sign drawn per set), i.e. inputs Z01..Z07 are planes
``3 + z_shift .. 9 + z_shift`` and Z04 lies ``d`` planes (``d * step`` µm) from best focus;
``max_shift <= 3``. Intensities: background photo-electrons chosen so the mean is near the real mean
(20x ≈ 2595, 40x ≈ 713, 60x ≈ 525 ADU, ``adipocyte.md`` §2.2), up to 15 % vignetting, and the camera
model of :func:`vsbench.harness.synth_lmc._camera` (shot and read noise, gain, 100 ADU offset).

Fluorescence ground truth (confocal, one plane at best focus): the part of each structure inside an
optical section of 3 / 2 / 1.5 µm around the focal plane: nuclei = DNA density (nucleoplasm thickness
times a band-pass chromatin texture); lipid droplets = droplet chord inside the section (Bodipy);
cytoplasm = cell body inside the section minus droplets, nucleus at 40 % (CellTracker Red). Per-cell
staining levels 0.6-1.4; Gaussian PSF (sigma 0.21 lambda_em / NA) plus 15 % haze (sigma 2 µm);
background 10-30 % of the mean, scaled so that the mean over the simulated canvas (the field plus its
margin) is the real mean per channel and magnification (§2.2) times a per-image brightness 0.8-1.25
(a small field at 40x/60x that misses the nuclei is darker than that mean); same camera model.

Misalignment (seed report §2 "Image alignment", Table 1; ``adipocyte.md`` §3.4). Sites lie on a circle,
``phi = 2 pi (site - 1) / N_sites``; ``dx = Ax sin phi + Bx cos phi + Cx``, ``dy = Ay sin phi + By cos
phi + Cy`` (pixels) plus a small per-set jitter (sd 0.2 px, "fairly consistent across wells"), and a
scale ``M`` (0.9988 / 0.99958 / 0.99975). Convention of this generator: the feature at brightfield pixel
``p`` (x, y) appears in the fluorescence images at ``c + M (p - c) + (dx, dy)``, c the image centre. So
(dx, dy) is the displacement of the fluorescence against the brightfield, and resampling the
brightfield by that map aligns it with the fluorescence. (The signs and angle convention in the SML
code are unverified, ``adipocyte.md`` §3.4; this generator states its own.) The values are recorded per
set as ``misalignment = {dx, dy, scale}``.

Chosen here, not from the references: pixel sizes (CV7000 sCMOS 6.5 µm pixels: 0.325 / 0.1625 / 0.108
µm at 20x / 40x / 60x), NAs, z steps, cell and droplet geometry, refractive-index increments (from the
cited literature values), section thickness, noise and background levels, jitter. From the references:
the file-name pattern, channels, 7 planes, uint16, mean intensities, wells, sites per magnification,
the misalignment model and its constants (notebook values, which agree with the report's Table 1).

Determinism: all randomness of set ``k`` comes from ``SeedSequence(seed, spawn_key=(k, ...))``; the same
arguments give byte-identical files, and set ``k`` does not depend on how many sets are requested.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import tifffile
from scipy import fft as sfft
from scipy import ndimage

from vsbench.harness import adipocyte_split as names
from vsbench.harness import synth_lmc as lmc
from vsbench.harness.adipocyte_split import bf_name, fl_name
from vsbench.harness.split import GROUND_TRUTH, INPUTS, MANIFEST, write_manifest

GENERATOR = "vsbench.synth_adipocyte"
TASK = "adipocyte"

# ---- file names and acquisition (adipocyte.md §2) ----------------------------------------------------
FILE_PATTERN = names.FILE_PATTERN  # the CV7000 name helpers live in adipocyte_split (bf_name, fl_name)
WELLS = ("B03", "B04", "C02", "C03", "C04", "D02", "D03", "D04")  # the training wells
SITES = {"20x": 6, "40x": 8, "60x": 12}  # fields of view per well
BF_CHANNEL = names.BF_CHANNEL  # brightfield: action A04, channel C04, planes Z01..Z07
N_INPUT_PLANES = names.N_PLANES
FL_CHANNELS = {1: "nuclei", 2: "lipids", 3: "cytoplasm"}  # action = channel, one plane Z01

# ---- optics, chosen (CV7000 with a 6.5 µm sCMOS pixel) -----------------------------------------------
PIXEL_SIZE_UM = {"20x": 0.325, "40x": 0.1625, "60x": 0.108}
OBJECTIVE_NA = {"20x": 0.75, "40x": 0.95, "60x": 1.2}
CONDENSER_NA = (0.2, 0.3)  # brightfield condenser, per set
Z_STEP_UM = {"20x": 2.0, "40x": 1.5, "60x": 1.0}
NZ_STACK = 13  # synthesized planes around best focus (index NZ_STACK // 2)
MAX_SHIFT_LIMIT = (NZ_STACK - N_INPUT_PLANES) // 2  # 3
FOCUS_HEIGHT_UM = (3.0, 5.0)  # height of the best-focus plane above the coverslip
MAX_MARGIN_PX = 192  # cap on the canvas margin that keeps defocus blur from wrapping around

# ---- cells (chosen) ----------------------------------------------------------------------------------
CELL_MAJOR_UM = (12.0, 28.0)
CELL_ASPECT = (0.5, 0.9)
CELL_COVERAGE = (0.6, 0.85)
CELL_HEIGHT_UM = (2.0, 4.0)  # cytoplasmic dome height at the cell centre
NUCLEUS_HEIGHT_UM = (4.0, 7.0)  # total cell height over the nucleus
NUCLEUS_MAJOR_UM = (6.0, 10.0)
NUCLEUS_ASPECT = (0.6, 0.9)
CHROMATIN_SCALES_UM = (0.5, 2.0)  # band-pass of the chromatin texture
CHROMATIN_CONTRAST = 0.3
DIFFERENTIATED_FRACTION = 0.7  # cells holding lipid droplets
DROPLETS_PER_CELL = (15, 90)
DROPLET_RADIUS_UM = (0.4, 6.0)  # log-uniform: many small, few large
DROPLET_TRIES = 40  # placement attempts per droplet
DROPLET_COVER_UM = 0.5  # cytoplasm above a droplet's top
STAIN_LEVEL = (0.6, 1.4)  # per-cell staining level, per channel

# ---- refractive index increments and attenuation (1/µm) ---------------------------------------------
DN_CYTOPLASM = 0.02  # cytoplasm against the medium (n ≈ 1.357)
DN_NUCLEUS = -0.006  # nucleoplasm against the cytoplasm: nuclei are slightly less dense
DN_CHROMATIN = 0.004  # per unit of relative DNA-density fluctuation
DN_DROPLET = 0.10  # lipid droplet against the cytoplasm (n ≈ 1.46)
ABS_CYTOPLASM = 0.002
ABS_NUCLEUS = 0.004
ABS_DROPLET = 0.01
OPD_SMOOTH_PX = 0.6  # anti-aliasing blur of the sharp droplet edges before propagation

# ---- camera and intensities (means from adipocyte.md §2.2) -------------------------------------------
BF_MEAN_ADU = {"20x": 2595.0, "40x": 713.0, "60x": 525.0}
BF_VIGNETTING = (0.0, 0.15)
CAMERA_GAIN = 1.0  # ADU per photo-electron
READ_NOISE_E = (1.5, 3.0)
FL_MEAN_ADU = {
    "20x": {1: 412.0, 2: 700.0, 3: 663.0},
    "40x": {1: 358.0, 2: 634.0, 3: 384.0},
    "60x": {1: 286.0, 2: 1218.0, 3: 319.0},
}
FL_BRIGHTNESS = (0.8, 1.25)  # per-image factor on the mean (log-uniform)
FL_BACKGROUND = (0.1, 0.3)  # background as a fraction of the image mean (above the camera offset)
# Hoechst is calibrated per nucleus, not per image: a stain does not know how many nuclei a field
# holds. Mean nuclear signal above background (ADU, chosen): typical nuclei stay below the pipeline's
# apoptosis cut, MeanIntensity_Hoechst <= 0.04 (≈ 2620 ADU, adipocyte.md §1.6), and the image mean
# lands near the real one for a typical field. Background: a fraction of the real image mean.
NUCLEUS_SIGNAL_ADU = {"20x": 1000.0, "40x": 900.0, "60x": 800.0}
FL_BACKGROUND_NUCLEI = (0.4, 0.6)
FL_SECTION_UM = {"20x": 3.0, "40x": 2.0, "60x": 1.5}  # confocal optical section (full width)
FL_EMISSION_UM = {1: 0.46, 2: 0.515, 3: 0.60}
FL_HAZE = 0.15
FL_HAZE_SIGMA_UM = 2.0
CYTO_NUCLEUS_WEIGHT = 0.4  # CellTracker in the nucleus relative to the cytoplasm

# ---- misalignment (seed report Table 1 = adipocyte.md §3.4 notebook values; pixels) ------------------
MISALIGNMENT = {
    "20x": {"M": 0.9988, "Ax": 3.9549, "Bx": 0.06653, "Cx": -1.22169, "Ay": -0.1979, "By": -4.0921, "Cy": 0.7653},
    "40x": {"M": 0.99958, "Ax": 2.4922, "Bx": -0.03039, "Cx": -0.9588, "Ay": -0.16666, "By": -2.59577,
            "Cy": 0.61792},
    "60x": {"M": 0.99975, "Ax": 2.3054, "Bx": -0.0315, "Cx": -0.8363, "Ay": -0.1352, "By": -2.3049, "Cy": 0.8081},
}
MISALIGN_JITTER_PX = 0.2  # per-set deviation from the site model (sd, each axis)


def site_misalignment(magnification: str, site: int) -> tuple[float, float, float]:
    """Model misalignment (dx, dy, M) of ``site`` (1-based): fluorescence displacement against brightfield."""
    p = MISALIGNMENT[magnification]
    phi = 2 * math.pi * (site - 1) / SITES[magnification]
    dx = p["Ax"] * math.sin(phi) + p["Bx"] * math.cos(phi) + p["Cx"]
    dy = p["Ay"] * math.sin(phi) + p["By"] * math.cos(phi) + p["Cy"]
    return dx, dy, p["M"]


# ------------------------------------------------------------------------------------------------------
# specimen


class _Slices(lmc._Slices):
    """The LMC slice stack, tall enough for adipocytes with large droplets."""

    def __init__(self, n, height_um):
        self.count = int(math.ceil(height_um / lmc.SLICE_UM))
        self.opd = np.zeros((self.count, n, n), np.float32)
        self.absorb = np.zeros((self.count, n, n), np.float32)


def _section(z0, z1, lo, hi):
    """Length of [z0, z1] inside [lo, hi] (maps)."""
    return np.clip(np.minimum(z1, hi) - np.maximum(z0, lo), 0, None)


def _place_cells(rng, extent):
    cells = []
    nh = len(lmc.CELL_HARMONICS)
    harm = np.asarray(lmc.CELL_HARMONICS, np.float64)
    outlines = lmc.place_cell_outlines(rng, extent, CELL_COVERAGE, CELL_MAJOR_UM, CELL_ASPECT, overlap=0.85,
                                       tries_per_cell=30)
    for cx, cy, a, b, th, fc, fp in outlines:
        na = min(rng.uniform(*NUCLEUS_MAJOR_UM), 0.45 * a)
        nb = min(na * rng.uniform(*NUCLEUS_ASPECT), 0.6 * b)
        nth = th + rng.normal(0, 0.3)
        off = rng.uniform(-0.15, 0.15, 2) * (a, b)
        nx = cx + off[0] * math.cos(th) - off[1] * math.sin(th)
        ny = cy + off[0] * math.sin(th) + off[1] * math.cos(th)
        cells.append({
            "cell": (cx, cy, a, b, th, fc, fp),
            "nuc": (nx, ny, na, nb, nth, rng.uniform(0, 0.04, nh) / harm, rng.uniform(0, 2 * math.pi, nh)),
            "h_cyto": rng.uniform(*CELL_HEIGHT_UM),
            "h_nuc": rng.uniform(*NUCLEUS_HEIGHT_UM),
            "diff": bool(rng.uniform() < DIFFERENTIATED_FRACTION),
            "stain": rng.uniform(*STAIN_LEVEL, 3),
        })
    return cells


def _droplets(rng, cell):
    """Non-overlapping droplets (x, y, r) in the cytoplasm of a differentiated cell, largest first."""
    cs, ns = cell["cell"], cell["nuc"]
    count = int(rng.integers(DROPLETS_PER_CELL[0], DROPLETS_PER_CELL[1] + 1))
    rmax = min(DROPLET_RADIUS_UM[1], 0.3 * cs[3])
    radii = np.sort(np.exp(rng.uniform(math.log(DROPLET_RADIUS_UM[0]), math.log(rmax), count)))[::-1]
    placed = np.empty((0, 3))
    nuc_r = math.sqrt(ns[2] * ns[3])
    for r in radii:
        ang = rng.uniform(0, 2 * math.pi, DROPLET_TRIES)
        rho = np.sqrt(rng.uniform(0, 0.85**2, DROPLET_TRIES))
        x, y = lmc._to_xy(ang, rho, *cs)
        ok = lmc._rho(x, y, *cs) < 1 - 1.1 * r / math.sqrt(cs[2] * cs[3])
        ok &= (lmc._rho(x, y, *ns) - 1) * nuc_r > 1.1 * r
        if len(placed):
            gap = np.hypot(x[:, None] - placed[:, 0], y[:, None] - placed[:, 1]) - placed[:, 2] - r
            ok &= np.all(gap > 0.1, axis=1)
        idx = np.flatnonzero(ok)
        if len(idx):
            placed = np.vstack([placed, (x[idx[0]], y[idx[0]], r)])
    return placed


def _specimen(rng, n, px, focus_um, section_um):
    """Optical slices and the three in-section fluorescent densities on an n x n canvas."""
    extent = n * px
    cells = _place_cells(rng, extent)
    noise = rng.standard_normal((n, n)).astype(np.float32)
    s1, s2 = (s / px for s in CHROMATIN_SCALES_UM)
    texture = lmc._blur(noise, s1) - lmc._blur(noise, s2)
    texture /= max(float(texture.std()), 1e-12)
    height = max(NUCLEUS_HEIGHT_UM[1], 2 * DROPLET_RADIUS_UM[1] + DROPLET_COVER_UM + 0.5)
    slices = _Slices(n, height)
    lo, hi = focus_um - section_um / 2, focus_um + section_um / 2
    thick = np.zeros((n, n), np.float32)
    ld_opd = np.zeros((n, n), np.float32)
    ld_z0 = np.zeros((n, n), np.float32)
    ld_z1 = np.zeros((n, n), np.float32)
    dens = {c: np.zeros((n, n), np.float32) for c in FL_CHANNELS}
    n_droplets = 0
    for cell in cells:
        cs, ns = cell["cell"], cell["nuc"]
        drops = _droplets(rng, cell) if cell["diff"] else np.empty((0, 3))
        n_droplets += len(drops)
        reach = max(cs[2], cs[3]) * (1 + float(np.sum(cs[5])))
        j0, j1 = max(0, int((cs[0] - reach) / px)), min(n, int((cs[0] + reach) / px) + 2)
        i0, i1 = max(0, int((cs[1] - reach) / px)), min(n, int((cs[1] + reach) / px) + 2)
        if j0 >= j1 or i0 >= i1:
            continue
        X = ((np.arange(j0, j1) + 0.5) * px)[None, :]
        Y = ((np.arange(i0, i1) + 0.5) * px)[:, None]
        sl = (slice(i0, i1), slice(j0, j1))
        rc, rn = lmc._rho(X, Y, *cs), lmc._rho(X, Y, *ns)
        inside = rc < 1
        dome_c = cell["h_cyto"] * np.clip(1 - rc**2, 0, None) ** 0.5
        dome_n = cell["h_nuc"] * np.sqrt(np.clip(1 - rn**2, 0, None))
        # droplets: spheres resting 0.3 µm above the coverslip; chord h, from z0 to z0 + h
        chord = np.zeros_like(dome_c)
        z0 = np.zeros_like(dome_c)
        top = np.zeros_like(dome_c)
        for x, y, r in drops:
            h = 2 * np.sqrt(np.clip(r * r - (X - x) ** 2 - (Y - y) ** 2, 0, None))
            m = h > 0
            chord = np.where(m, h, chord)
            z0 = np.where(m, 0.3 + r - h / 2, z0)
            top = np.maximum(top, np.where(m, 0.3 + 2 * r + DROPLET_COVER_UM, 0))
        body = np.maximum(np.maximum(dome_c, dome_n), top * inside)
        thick[sl] = np.maximum(thick[sl], body)
        hn = 0.8 * dome_n
        dna = np.clip(1 + CHROMATIN_CONTRAST * texture[sl], 0.2, None)
        zn0 = (body - hn) / 2
        slices.add(DN_NUCLEUS * hn + DN_CHROMATIN * (dna - 1) * hn, ABS_NUCLEUS * dna * hn, zn0, zn0 + hn, sl)
        ld_opd[sl] += DN_DROPLET * chord
        ld_z0[sl] = np.where(chord > 0, z0, ld_z0[sl])
        ld_z1[sl] = np.where(chord > 0, z0 + chord, ld_z1[sl])
        st = cell["stain"]
        nuc_in = _section(zn0, zn0 + hn, lo, hi)
        ld_in = _section(z0, z0 + chord, lo, hi) * (chord > 0)
        body_in = _section(0, body, lo, hi) * inside
        dens[1][sl] += st[0] * nuc_in * dna
        dens[2][sl] += st[1] * ld_in
        dens[3][sl] += st[2] * np.clip(body_in - ld_in - (1 - CYTO_NUCLEUS_WEIGHT) * nuc_in, 0, None)
    slices.add(DN_CYTOPLASM * thick, ABS_CYTOPLASM * thick, 0, thick)
    sm = OPD_SMOOTH_PX
    slices.add(lmc._blur(ld_opd, sm), lmc._blur(ABS_DROPLET / DN_DROPLET * ld_opd, sm), ld_z0, ld_z1)
    return slices, dens, len(cells), n_droplets


# ------------------------------------------------------------------------------------------------------
# imaging


def _misalign(img, centre, dx, dy, scale):
    """Resample so the feature at p appears at centre + scale (p - centre) + (dx, dy); (row, col) axes."""
    c = np.asarray(centre, np.float64)
    shift = np.array([dy, dx])
    offset = c - (c + shift) / scale
    out = ndimage.affine_transform(img, np.eye(2) / scale, offset=offset, order=3, mode="nearest")
    return np.clip(out, 0, None)


def _set_plan(seed, k, magnification, max_shift):
    rng = lmc._seq(seed, k, 0)
    n_sites = SITES[magnification]
    site = k % n_sites + 1
    well = WELLS[k // n_sites]
    d = k % (max_shift + 1)
    z_shift = d if rng.uniform() < 0.5 else -d  # always drawn: the rest of the plan does not depend on d
    mdx, mdy, scale = site_misalignment(magnification, site)
    jit = rng.normal(0, MISALIGN_JITTER_PX, 2)
    return {
        "index": k, "well": well, "site": site, "fov": site, "phi": 2 * math.pi * (site - 1) / n_sites,
        "d": d, "z_shift": z_shift,
        "planes": [NZ_STACK // 2 - N_INPUT_PLANES // 2 + z_shift + i for i in range(N_INPUT_PLANES)],
        "misalignment": {"dx": mdx + float(jit[0]), "dy": mdy + float(jit[1]), "scale": scale},
        "model_misalignment": {"dx": mdx, "dy": mdy, "scale": scale},
        "condenser_na": float(rng.uniform(*CONDENSER_NA)),
        "focus_height_um": float(rng.uniform(*FOCUS_HEIGHT_UM)),
    }


def _render_set(root, seed, k, magnification, size, max_shift):
    plan = _set_plan(seed, k, magnification, max_shift)
    h, w = size
    px, step, na = PIXEL_SIZE_UM[magnification], Z_STEP_UM[magnification], OBJECTIVE_NA[magnification]
    height = max(NUCLEUS_HEIGHT_UM[1], 2 * DROPLET_RADIUS_UM[1] + DROPLET_COVER_UM + 0.5)
    max_dz = (NZ_STACK // 2) * step + height
    margin = min(int(math.ceil(max_dz * na / math.sqrt(lmc.N_MEDIUM**2 - na**2) / px)), MAX_MARGIN_PX) + 16
    n = sfft.next_fast_len(max(h, w) + 2 * margin)
    r0, c0 = (n - h) // 2, (n - w) // 2
    crop = (slice(r0, r0 + h), slice(c0, c0 + w))
    section = FL_SECTION_UM[magnification]
    slices, dens, ncells, ndrops = _specimen(lmc._seq(seed, k, 1), n, px, plan["focus_height_um"], section)

    orng = lmc._seq(seed, k, 2)
    scope = lmc._TLMicroscope(slices, plan["focus_height_um"], px, "BF", na, plan["condenser_na"], orng)
    del slices
    read_e = float(orng.uniform(*READ_NOISE_E))
    vignetting = float(orng.uniform(*BF_VIGNETTING))
    centre = orng.uniform(0.3, 0.7, 2) * (w, h)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    illum = 1 - vignetting * ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * (0.75 * max(h, w)) ** 2)
    photons = (BF_MEAN_ADU[magnification] - lmc.CAMERA_OFFSET_ADU) / CAMERA_GAIN
    for zi, j in enumerate(plan["planes"], start=1):
        inten = scope.intensity((j - NZ_STACK // 2) * step)[crop]
        img = lmc._camera(lmc._seq(seed, k, 3, zi), photons * illum * inten, CAMERA_GAIN, read_e)
        tifffile.imwrite(root / INPUTS / bf_name(plan["well"], plan["site"], zi), img)

    frng = lmc._seq(seed, k, 4)
    mis = plan["misalignment"]
    centre_rc = (r0 + (h - 1) / 2, c0 + (w - 1) / 2)
    fl = {}
    for ch in FL_CHANNELS:
        brightness = lmc._loguniform(frng, *FL_BRIGHTNESS)
        bg_frac = float(frng.uniform(*(FL_BACKGROUND_NUCLEI if ch == 1 else FL_BACKGROUND)))
        fread = float(frng.uniform(*READ_NOISE_E))
        sigma = math.hypot(0.21 * FL_EMISSION_UM[ch] / na, 0.3 * px) / px
        d = dens[ch]
        f = (1 - FL_HAZE) * lmc._blur(d, sigma) + FL_HAZE * lmc._blur(d, FL_HAZE_SIGMA_UM / px)
        f = _misalign(f, centre_rc, mis["dx"], mis["dy"], mis["scale"])
        target = (FL_MEAN_ADU[magnification][ch] - lmc.CAMERA_OFFSET_ADU) * brightness / CAMERA_GAIN
        if ch == 1:
            inside = f[d > 0]
            level = float(inside.mean()) if inside.size else 0.0
            scale = NUCLEUS_SIGNAL_ADU[magnification] * brightness / CAMERA_GAIN / level if level > 0 else 0.0
        else:
            mean = float(f[margin // 2:n - margin // 2, margin // 2:n - margin // 2].mean())
            scale = (1 - bg_frac) * target / mean if mean > 0 else 0.0
        img = lmc._camera(lmc._seq(seed, k, 5, ch), scale * f[crop] + bg_frac * target, CAMERA_GAIN, fread)
        tifffile.imwrite(root / GROUND_TRUTH / fl_name(plan["well"], plan["site"], ch), img)
        fl[FL_CHANNELS[ch]] = {"brightness": brightness, "background_fraction": bg_frac}
    return {**plan, "n_cells": ncells, "n_droplets": ndrops, "canvas_px": n, "read_noise_e": read_e,
            "vignetting": vignetting, "fluorescence": fl}


def _model_constants() -> dict:
    out = {}
    for name, v in globals().items():
        if name.isupper() and name not in {"GROUND_TRUTH", "INPUTS", "MANIFEST"} and isinstance(
                v, (int, float, tuple, dict, str)):
            out[name] = json.loads(json.dumps(v))  # tuples -> lists, int keys -> str
    out["LMC_REUSED"] = {k: getattr(lmc, k) for k in ("WAVELENGTH_UM", "N_MEDIUM", "SLICE_UM",
                                                      "CAMERA_OFFSET_ADU", "POISSON_EXACT_BELOW")}
    return out


def _prepare(root: Path) -> None:
    if root.exists():
        try:
            ours = json.loads((root / MANIFEST).read_text())["info"]["generator"] == GENERATOR
        except (OSError, ValueError, KeyError, TypeError):
            ours = False
        if ours:
            shutil.rmtree(root)
        elif any(root.iterdir()):
            raise FileExistsError(f"{root}: exists, is not empty and is not a split written by {GENERATOR}")
    (root / INPUTS).mkdir(parents=True, exist_ok=True)
    (root / GROUND_TRUTH).mkdir(parents=True, exist_ok=True)


def synthesize_adipocyte(out: Path, magnification: str = "20x", sets: int = 2, size: tuple[int, int] = (256, 256),
                         seed: int = 0, max_shift: int = 3, progress: bool = False) -> Path:
    """Write a synthetic adipocyte split (``sets`` image sets of ``size`` = (H, W) pixels) to ``out``.

    Same arguments, same bytes. Returns ``out``.
    """
    from tqdm import tqdm

    if magnification not in SITES:
        raise ValueError(f"synthesize_adipocyte: magnification must be one of {sorted(SITES)}")
    if not 0 <= max_shift <= MAX_SHIFT_LIMIT:
        raise ValueError(f"synthesize_adipocyte: max_shift must be in 0..{MAX_SHIFT_LIMIT}")
    if not 1 <= sets <= len(WELLS) * SITES[magnification]:
        raise ValueError(f"synthesize_adipocyte: sets must be in 1..{len(WELLS) * SITES[magnification]}")
    h, w = (int(s) for s in size)
    if min(h, w) < 32:
        raise ValueError("synthesize_adipocyte: size must be at least 32 x 32")
    out = Path(out)
    _prepare(out)
    table = []
    for k in tqdm(range(sets), desc="synth adipocyte", unit="set", file=sys.stderr, disable=not progress):
        table.append(_render_set(out, seed, k, magnification, (h, w), max_shift))
    info = {
        "generator": GENERATOR,
        "magnification": magnification,
        "pixel_size_um": PIXEL_SIZE_UM[magnification],
        "z_step_um": Z_STEP_UM[magnification],
        "params": {"magnification": magnification, "sets": sets, "size": [h, w], "seed": seed,
                   "max_shift": max_shift},
        "misalignment_convention": "fluorescence(c + scale*(p - c) + (dx, dy)) shows brightfield(p); "
                                   "c = image centre, pixels, x = column, y = row",
        "model": _model_constants(),
        "image_sets": table,
    }
    write_manifest(out, TASK, info)
    return out
