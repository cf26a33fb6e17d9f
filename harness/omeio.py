"""Reading and writing the 2-D OME-TIFF planes of a split (Light My Cells layout).

Every file holds one plane, axes TCZYX with T = C = Z = 1 (``lmc.md`` §2.1). The pixel size is in
``Pixels/@PhysicalSizeX|Y`` (micrometres) and the modality (BF, PC, DIC) or stain in
``Channel/@Name``, falling back to ``Channel/@Fluor`` as the organisers' template does (§2.2).
Readers validate and raise :class:`ImageReadError` with a one-line reason.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

# tifffile logs an error for every bad tag of a truncated or garbage file (four raw "TiffFileError" lines on the
# terminal for one truncated prediction); the readers report such a file once, in the case's one-line reason
logging.getLogger("tifffile").setLevel(logging.CRITICAL + 1)

_OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
_OME_TYPES = {"uint8": "uint8", "uint16": "uint16", "int16": "int16", "uint32": "uint32",
              "int32": "int32", "float32": "float", "float64": "double"}


class ImageReadError(ValueError):
    """A file that should hold one 2-D image plane cannot be used."""


@dataclass(frozen=True)
class PlaneMeta:
    physical_size_x: float | None = None  # micrometres per pixel
    physical_size_y: float | None = None
    channel: str | None = None  # modality (BF/PC/DIC) or stain name


def write_plane(path: Path | str, image: np.ndarray, meta: PlaneMeta = PlaneMeta()) -> None:
    """Write one 2-D plane as OME-TIFF (TCZYX, 1x1x1xHxW)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"write_plane expects a 2-D image, got shape {image.shape}")
    if image.dtype.name not in _OME_TYPES:
        raise ValueError(f"write_plane cannot store pixel type {image.dtype}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Our own OME-XML rather than tifffile's: no UUID or creator version, so the same pixels
    # always give the same bytes and the same sha256 in a split manifest.
    pixels = {
        "ID": "Pixels:0", "DimensionOrder": "XYZCT", "Type": _OME_TYPES[image.dtype.name],
        "SizeX": str(image.shape[1]), "SizeY": str(image.shape[0]), "SizeZ": "1", "SizeC": "1", "SizeT": "1",
    }
    for axis, value in (("X", meta.physical_size_x), ("Y", meta.physical_size_y)):
        if value is not None:
            pixels[f"PhysicalSize{axis}"] = repr(float(value))
            pixels[f"PhysicalSize{axis}Unit"] = "µm"
    root = ET.Element("OME", xmlns=_OME_NS)
    px = ET.SubElement(ET.SubElement(root, "Image", ID="Image:0", Name=path.name), "Pixels", pixels)
    channel = {"ID": "Channel:0:0", "SamplesPerPixel": "1"}
    if meta.channel is not None:
        channel["Name"] = meta.channel
    ET.SubElement(px, "Channel", channel)
    ET.SubElement(px, "TiffData", IFD="0", PlaneCount="1")
    xml = '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")
    tifffile.imwrite(path, image, description=xml.encode(), metadata=None, photometric="minisblack")


def _parse_ome(xml: str | None) -> PlaneMeta:
    if not xml:
        return PlaneMeta()
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return PlaneMeta()
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return PlaneMeta()

    def num(key: str) -> float | None:
        try:
            return float(pixels.attrib[key])
        except (KeyError, ValueError):
            return None

    channel = None
    for el in pixels:
        if el.tag.rsplit("}", 1)[-1] == "Channel":
            channel = el.attrib.get("Name") or el.attrib.get("Fluor")
            break
    return PlaneMeta(num("PhysicalSizeX"), num("PhysicalSizeY"), channel)


def read_plane(path: Path | str) -> tuple[np.ndarray, PlaneMeta]:
    """Read one 2-D plane and its OME metadata; :class:`ImageReadError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path.name}: file not found")
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise ImageReadError(f"{path.name}: TIFF holds no image")
            image = tif.series[0].asarray()
            meta = _parse_ome(tif.ome_metadata) if tif.is_ome else PlaneMeta()
    except ImageReadError:
        raise
    except Exception as exc:  # tifffile raises many types on truncated or garbage files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageReadError(f"{path.name}: not a readable TIFF (truncated or corrupt: {reason[:120]})") from exc
    while image.ndim > 2 and image.shape[0] == 1:  # T, C, Z of size 1
        image = image[0]
    if image.ndim == 3 and image.shape[-1] == 1:  # one sample per pixel stored as an axis
        image = image[..., 0]
    if image.ndim != 2:
        raise ImageReadError(f"{path.name}: expected one 2-D plane, got shape {image.shape}")
    if image.dtype.kind not in "uif" or image.size == 0:
        raise ImageReadError(f"{path.name}: unsupported pixel type {image.dtype} or empty image")
    return image, meta


def read_image(path: Path | str) -> np.ndarray:
    """The pixel array of :func:`read_plane`."""
    return read_plane(path)[0]
