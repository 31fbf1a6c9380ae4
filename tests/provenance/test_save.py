"""save_generated / encode_generated: every format and kind of output comes out marked, labelled, whole."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pixforge.data.image_io import read_image
from pixforge.provenance import Provenance, SafetyFilter, encode_generated, save_generated, verify_file

NO_FINDINGS = SafetyFilter(detector=lambda image: [])  # the real detector has its own tests


@pytest.mark.parametrize(("name", "kind"), [("rgb8.png", "rgb8"), ("rgb16.png", "rgb16"), ("grey8.png", "grey8"),
                                            ("grey16.png", "grey16"), ("photo.jpg", "rgb8"), ("photo.webp", "rgb8"),
                                            ("deep.jpeg", "rgb16")])
def test_saved_output_verifies_as_marked_with_watermark_and_metadata(name, kind, tmp_path, rendering, model_hash):
    image = {"rgb8": rendering, "rgb16": rendering.astype(np.uint16) * 257, "grey8": rendering[..., 0],
             "grey16": rendering[..., :1].astype(np.uint16) * 257}[kind]
    path = save_generated(image, tmp_path / name, Provenance(model_hash, "facades"), safety=NO_FINDINGS)
    report = verify_file(path)
    assert report.marked and report.watermark.found and report.watermark.model_hash_prefix == model_hash[:6]
    meta = report.metadata
    assert meta is not None and meta.says_generated
    assert (meta.model_hash, meta.model_name) == (model_hash, "facades")
    assert meta.software.startswith("pixforge ") and meta.created.endswith("Z")
    pixels = read_image(path, channels=3)
    if name.endswith(".png"):  # PNG keeps the bit depth and size exactly
        assert pixels.dtype == image.dtype and pixels.shape[:2] == image.shape[:2]
    assert "| metadata: trainedAlgorithmicMedia (pixforge" in report.line()


def test_encode_generated_gives_the_bytes_save_would_write(rendering, model_hash):
    data = encode_generated(rendering, "JPG", Provenance(model_hash), safety=NO_FINDINGS)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.size == (256, 256) and b"trainedAlgorithmicMedia" in im.info["xmp"]


def test_overwrite_false_keeps_an_existing_file(tmp_path, rendering, model_hash):
    target = tmp_path / "x.png"
    target.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match=r"x\.png: already exists"):
        save_generated(rendering, target, Provenance(model_hash), safety=NO_FINDINGS, overwrite=False)
    assert target.read_bytes() == b"mine"


def test_a_write_that_fails_leaves_no_partial_file(tmp_path, rendering, model_hash, monkeypatch):
    import pixforge.atomic

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(pixforge.atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_generated(rendering, tmp_path / "x.png", Provenance(model_hash), safety=NO_FINDINGS)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("image", "name", "message"), [
    (np.zeros((8, 8, 3), np.uint8), "x.gif", r"x\.gif: unsupported output format '\.gif'"),
    (np.zeros((8, 8, 3), np.float32), "x.png", r"x\.png: cannot write a float32 array"),
    (np.zeros((8, 8, 4), np.uint8), "x.png", r"expected uint8 or uint16, HxW, HxWx1 or HxWx3"),
])
def test_bad_outputs_are_refused_naming_the_file(image, name, message, tmp_path, model_hash):
    with pytest.raises(ValueError, match=message):
        save_generated(image, tmp_path / name, Provenance(model_hash), safety=NO_FINDINGS)
    assert list(tmp_path.iterdir()) == []


def test_provenance_needs_a_hex_model_hash():
    with pytest.raises(ValueError, match="model_hash: expected a hex string"):
        Provenance("not-a-hash")
