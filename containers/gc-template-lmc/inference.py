"""
A Light My Cells algorithm in the shape of grand-challenge's example-algorithm template.

It reads every transmitted-light image in the input socket (grand-challenge gives one per job), predicts
the four organelles and writes them as OME-TIFF (the input's OME-XML as description, 128x128 tiles,
uint16, same height, width and file name) into the four output sockets:

    /input/images/organelles-transmitted-light-ome-tiff/<file>
    /output/images/{nucleus,mitochondria,tubulin,actin}-fluorescence-ome-tiff/<file>

The "model" is deliberately simple but not trivial: the nucleus is the inverted percentile-normalised
input, the other organelles are the normalised input smoothed at different scales.

To test it locally, as the platform runs it:

    docker run --rm --network none --read-only --tmpfs /tmp -v $PWD/test/input:/input:ro \
        -v $PWD/test/output:/output IMAGE
"""

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import tifffile

INPUT_PATH = Path("/input")
OUTPUT_PATH = Path("/output")
INPUT_SOCKET = "organelles-transmitted-light-ome-tiff"
ORGANELLES = ("nucleus", "mitochondria", "tubulin", "actin")
OME_NS = "{http://www.openmicroscopy.org/Schemas/OME/2016-06}"


def run():
    transmitted_light_path = INPUT_PATH / "images" / INPUT_SOCKET
    names = sorted(os.listdir(transmitted_light_path))
    print(f"Found {len(names)} transmitted light image(s): {names}")
    for input_file_name in names:
        image_input, metadata = read_image(transmitted_light_path / input_file_name)
        predictions = predict(image_input)
        for organelle in ORGANELLES:
            save_image(location=OUTPUT_PATH / "images" / f"{organelle}-fluorescence-ome-tiff",
                       array=predictions[organelle], filename=input_file_name, metadata=metadata)
        print(f"{input_file_name}: wrote {', '.join(ORGANELLES)}")
    return 0


def read_image(location):
    """The 2-D image and its OME-XML (or None for a plain TIFF)."""
    with tifffile.TiffFile(location) as tif:
        image_data = tif.asarray()
        metadata = tif.ome_metadata if tif.is_ome else None
    image_data = np.squeeze(image_data)
    if image_data.ndim != 2:
        raise ValueError(f"{location}: expected one 2-D plane, got shape {image_data.shape}")
    return image_data, metadata


def _normalise(image, low=1.0, high=99.0):
    lo, hi = np.percentile(image, [low, high])
    return np.clip((image.astype(np.float32) - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)


def _box_smooth(image, radius):
    """Mean over a (2r+1)^2 window (edges replicated), with cumulative sums: numpy only."""
    size = 2 * radius + 1
    padded = np.pad(image, radius, mode="edge").astype(np.float64)
    summed = np.cumsum(np.cumsum(padded, axis=0), axis=1)
    summed = np.pad(summed, ((1, 0), (1, 0)))
    window = summed[size:, size:] - summed[:-size, size:] - summed[size:, :-size] + summed[:-size, :-size]
    return (window / (size * size)).astype(np.float32)


def predict(image):
    normalised = _normalise(image)
    raw = {
        "nucleus": 1.0 - normalised,
        "mitochondria": _box_smooth(normalised, 1),
        "tubulin": _box_smooth(normalised, 2),
        "actin": np.abs(normalised - _box_smooth(normalised, 3)),
    }
    return {k: (_normalise(v, 0.0, 100.0) * 65535).round().astype(np.uint16) for k, v in raw.items()}


def _physical_sizes(metadata):
    if not metadata:
        return None, None
    try:
        pixels = ET.fromstring(metadata).find(f"{OME_NS}Image/{OME_NS}Pixels")
        return float(pixels.get("PhysicalSizeX")), float(pixels.get("PhysicalSizeY"))
    except (ET.ParseError, AttributeError, TypeError, ValueError):
        return None, None


def _as_uint16_ome(metadata):
    """The input's OME-XML with the pixel type of the prediction (uint16)."""
    try:
        root = ET.fromstring(metadata)
    except ET.ParseError:
        return None
    for pixels in root.iter(f"{OME_NS}Pixels"):
        pixels.set("Type", "uint16")
        pixels.set("SignificantBits", "16")
    ET.register_namespace("", OME_NS[1:-1])
    return ET.tostring(root, encoding="unicode")


def save_image(*, location, array, filename, metadata):
    location.mkdir(parents=True, exist_ok=True)
    physical_size_x, physical_size_y = _physical_sizes(metadata)
    description = _as_uint16_ome(metadata) if metadata else None
    if description is not None:
        description = description.encode()  # OME-XML is UTF-8 (µm); TIFF ASCII strings refuse str with it
    kwargs = {}
    if physical_size_x and physical_size_y:
        kwargs["resolution"] = (1e4 / physical_size_x, 1e4 / physical_size_y)  # pixels per cm
        kwargs["resolutionunit"] = "CENTIMETER"
    tifffile.imwrite(location / filename, array, description=description, metadata=None, tile=(128, 128),
                     photometric="minisblack", **kwargs)


if __name__ == "__main__":
    raise SystemExit(run())
