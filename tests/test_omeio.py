"""OME-TIFF planes: round trips, metadata, determinism, and readers that fail with one clear line."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vsbench.harness.omeio import ImageReadError, PlaneMeta, read_plane, write_plane


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (64, 48)])
def test_round_trip(tmp_path, dtype, shape):
    rng = np.random.default_rng(0)
    img = (rng.random(shape) * 1000).astype(dtype)
    path = tmp_path / "image_3_PC_z2.ome.tiff"
    write_plane(path, img, PlaneMeta(0.065, 0.07, "PC"))
    back, meta = read_plane(path)
    assert back.dtype == img.dtype and back.shape == shape
    np.testing.assert_array_equal(back, img)
    assert meta == PlaneMeta(0.065, 0.07, "PC")
    # readable as the organisers read it: tifffile, 2-D, OME metadata with the modality name
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and tif.asarray().shape == shape
        assert 'Name="PC"' in tif.ome_metadata and 'PhysicalSizeX="0.065"' in tif.ome_metadata


def test_same_pixels_same_bytes(tmp_path):
    img = np.arange(30, dtype=np.uint16).reshape(5, 6)
    write_plane(tmp_path / "a.ome.tiff", img, PlaneMeta(0.1, 0.1, "BF"))
    write_plane(tmp_path / "b.ome.tiff", img, PlaneMeta(0.1, 0.1, "BF"))
    a, b = (tmp_path / "a.ome.tiff").read_bytes(), (tmp_path / "b.ome.tiff").read_bytes()
    assert a.replace(b"a.ome.tiff", b"b.ome.tiff") == b


def test_fluor_fallback_and_plain_tiff(tmp_path):
    xml = ('<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="I:0">'
           '<Pixels ID="P:0" DimensionOrder="XYZCT" Type="uint16" SizeX="4" SizeY="3" SizeZ="1" SizeC="1" '
           'SizeT="1" PhysicalSizeX="0.2"><Channel ID="C:0" Fluor="DIC"/><TiffData/></Pixels></Image></OME>')
    tifffile.imwrite(tmp_path / "f.ome.tiff", np.zeros((3, 4), np.uint16), description=xml.encode(), metadata=None)
    _, meta = read_plane(tmp_path / "f.ome.tiff")
    assert meta.channel == "DIC" and meta.physical_size_x == 0.2 and meta.physical_size_y is None
    tifffile.imwrite(tmp_path / "plain.tif", np.ones((1, 1, 5, 6), np.float32))
    img, meta = read_plane(tmp_path / "plain.tif")
    assert img.shape == (5, 6) and meta == PlaneMeta()


def test_rejects_stacks_and_missing(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 5, 6), np.uint16), photometric="minisblack")
    with pytest.raises(ImageReadError, match="stack.tif: expected one 2-D plane"):
        read_plane(tmp_path / "stack.tif")
    with pytest.raises(ImageReadError, match="nope.tif: file not found"):
        read_plane(tmp_path / "nope.tif")
    with pytest.raises(ValueError, match="2-D"):
        write_plane(tmp_path / "x.tif", np.zeros((2, 3, 4)))


@pytest.fixture(scope="module")
def valid_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "v.ome.tiff"
    write_plane(path, np.random.default_rng(1).integers(0, 4000, (40, 30)).astype(np.uint16), PlaneMeta(0.1, 0.1, "BF"))
    return path.read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=2600))
def test_truncated_files_fail_cleanly(tmp_path, valid_bytes, cut):
    path = tmp_path / "t.ome.tiff"
    data = valid_bytes[: min(cut, len(valid_bytes) - 1)]
    path.write_bytes(data)
    with pytest.raises(ImageReadError) as info:
        read_plane(path)
    assert "\n" not in str(info.value) and str(info.value).startswith("t.ome.tiff:")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_files_never_crash_the_reader(tmp_path, valid_bytes, data):
    """Flipped bytes either still decode to a 2-D plane or give ImageReadError; nothing else."""
    buf = bytearray(valid_bytes)
    for _ in range(data.draw(st.integers(1, 20))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "c.ome.tiff"
    path.write_bytes(bytes(buf))
    try:
        img, _ = read_plane(path)
    except ImageReadError as exc:
        assert "\n" not in str(exc)
    else:
        assert img.ndim == 2


@given(blob=st.binary(max_size=600))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_garbage_fails_cleanly(tmp_path, blob):
    path = tmp_path / "g.tiff"
    path.write_bytes(blob)
    with pytest.raises(ImageReadError):
        read_plane(path)
