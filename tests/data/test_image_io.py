"""Specification of image decoding, validation and writing (pixforge.data.image_io)."""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import png
import pytest
import torch
from PIL import Image

from pixforge.data import image_io
from pixforge.data.image_io import (
    ImageError,
    from_tensor,
    list_images,
    probe_image,
    read_image,
    to_tensor,
    write_image,
)

FACADES = Path(__file__).parents[2].parent / "shared" / "datasets" / "facades"


@pytest.fixture
def facades_val() -> Path:
    if not (FACADES / "val").is_dir():
        pytest.skip("../shared/datasets/facades not present")
    return FACADES / "val"


@pytest.fixture
def rgb16() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 65536, (12, 10, 3), dtype=np.uint16)


def _expect_image_error(path: Path, *args: object, **kwargs: object) -> str:
    with pytest.raises(ImageError) as info:
        read_image(path, *args, **kwargs)
    message = str(info.value)
    assert path.name in message
    assert "\n" not in message
    return message


def _write_png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose IHDR claims a size but holds no pixel data: a cheap stand-in for a bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")))


def _write_rgb16_tiff(path: Path, arr: np.ndarray) -> None:
    """Minimal uncompressed 16-bit RGB TIFF (Pillow can read it only reduced to 8 bits)."""
    height, width, _ = arr.shape
    data = arr.astype("<u2").tobytes()
    entries = [
        (256, width),
        (257, height),
        (258, None),
        (259, 1),
        (262, 2),
        (273, None),
        (277, 3),
        (278, height),
        (279, len(data)),
        (284, 1),
    ]
    ifd_offset = 8
    bits_offset = ifd_offset + 2 + 12 * len(entries) + 4
    data_offset = bits_offset + 6
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd_offset) + struct.pack("<H", len(entries)))
    for tag, value in entries:
        if tag == 258:
            out += struct.pack("<HHII", tag, 3, 3, bits_offset)
        elif tag in (273, 279):
            out += struct.pack("<HHII", tag, 4, 1, data_offset if tag == 273 else value)
        else:
            out += struct.pack("<HHIHH", tag, 3, 1, value, 0)
    out += struct.pack("<I", 0) + struct.pack("<HHH", 16, 16, 16) + data
    path.write_bytes(bytes(out))


# --- decoding ---------------------------------------------------------------------------------------


def test_facades_file_decodes_to_256x512_rgb_uint8(facades_val: Path) -> None:
    arr = read_image(facades_val / "1.jpg", channels=3)
    assert arr.shape == (256, 512, 3)
    assert arr.dtype == np.uint8


def test_gray_read_is_pillows_luma_and_keeps_three_dimensions(facades_val: Path) -> None:
    gray = read_image(facades_val / "1.jpg", channels=1)
    expected = np.asarray(Image.open(facades_val / "1.jpg").convert("L"))
    assert gray.shape == (256, 512, 1)
    np.testing.assert_array_equal(gray[..., 0], expected)


def test_gray_source_read_as_rgb_replicates_the_channel(tmp_path: Path) -> None:
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgb = read_image(tmp_path / "g.png", channels=3)
    assert rgb.shape == (6, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray)


def test_16bit_grayscale_png_keeps_values_above_255(tmp_path: Path) -> None:
    gray = np.arange(0, 65536, 257, dtype=np.uint16).reshape(16, 16)
    write_image(gray, tmp_path / "g16.png")
    back = read_image(tmp_path / "g16.png", channels=1)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back[..., 0], gray)
    assert probe_image(tmp_path / "g16.png").bits == 16


def test_16bit_rgb_png_keeps_values_above_255(tmp_path: Path, rgb16: np.ndarray) -> None:
    # Written with pypng directly, so reading is checked independently of write_image.
    height, width, _ = rgb16.shape
    with open(tmp_path / "rgb16.png", "wb") as f:
        png.Writer(width, height, greyscale=False, bitdepth=16).write(f, rgb16.reshape(height, width * 3))
    back = read_image(tmp_path / "rgb16.png", channels=3)
    assert back.dtype == np.uint16
    assert back.max() > 255
    np.testing.assert_array_equal(back, rgb16)
    assert probe_image(tmp_path / "rgb16.png").bits == 16


def test_16bit_rgb_png_round_trips_through_write_image(tmp_path: Path, rgb16: np.ndarray) -> None:
    write_image(rgb16, tmp_path / "rgb16.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb16.png", channels=3), rgb16)


def test_16bit_rgb_read_as_gray_stays_16bit(tmp_path: Path, rgb16: np.ndarray) -> None:
    write_image(rgb16, tmp_path / "rgb16.png")
    gray = read_image(tmp_path / "rgb16.png", channels=1)
    wide = rgb16.astype(np.uint64)
    luma = (wide[..., 0] * 19595 + wide[..., 1] * 38470 + wide[..., 2] * 7471 + 0x8000) >> 16
    assert gray.dtype == np.uint16
    np.testing.assert_array_equal(gray[..., 0], luma)


@pytest.mark.parametrize(("greyscale", "planes"), [(True, 2), (False, 4)])
def test_16bit_png_with_alpha_drops_alpha_and_keeps_16_bits(
    tmp_path: Path, greyscale: bool, planes: int
) -> None:
    arr = np.random.default_rng(4).integers(0, 65536, (5, 6, planes), dtype=np.uint16)
    with open(tmp_path / "alpha16.png", "wb") as f:
        png.Writer(6, 5, greyscale=greyscale, alpha=True, bitdepth=16).write(f, arr.reshape(5, 6 * planes))
    back = read_image(tmp_path / "alpha16.png", channels=planes - 1)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, arr[..., : planes - 1])


def test_16bit_rgb_tiff_is_refused_rather_than_reduced_to_8_bits(tmp_path: Path, rgb16: np.ndarray) -> None:
    _write_rgb16_tiff(tmp_path / "rgb16.tif", rgb16)
    assert "16-bit" in _expect_image_error(tmp_path / "rgb16.tif", 3)


def test_rgba_drops_alpha_keeping_stored_colours(tmp_path: Path) -> None:
    rgba = np.random.default_rng(1).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png", channels=3), rgba[..., :3])


def test_palette_image_with_transparency_becomes_rgb(tmp_path: Path) -> None:
    im = Image.new("P", (4, 3))
    im.putpalette([0, 0, 0, 200, 10, 20] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.save(tmp_path / "p.png", transparency=0)
    arr = read_image(tmp_path / "p.png", channels=3)
    assert arr.shape == (3, 4, 3)
    assert tuple(arr[1, 1]) == (200, 10, 20)


def test_exif_orientation_is_applied_to_pixels_and_header_size(tmp_path: Path) -> None:
    arr = np.zeros((4, 6, 3), dtype=np.uint8)
    arr[0, 0] = 255  # top-left marker
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    im.save(tmp_path / "r.png", exif=exif)
    back = read_image(tmp_path / "r.png", channels=3)
    assert back.shape == (6, 4, 3)
    assert back[0, -1, 0] == 255  # top-left went to top-right
    header = probe_image(tmp_path / "r.png")
    assert (header.height, header.width) == (6, 4)


# --- bad inputs: one-line ImageError naming the file ------------------------------------------------


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    _expect_image_error(path, 3)


def test_truncated_jpeg_names_the_file(tmp_path: Path, facades_val: Path) -> None:
    data = (facades_val / "1.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in _expect_image_error(path, 3)


def test_truncated_16bit_png_names_the_file(tmp_path: Path, rgb16: np.ndarray) -> None:
    write_image(rgb16, tmp_path / "whole.png")
    path = tmp_path / "cut.png"
    path.write_bytes((tmp_path / "whole.png").read_bytes()[:120])
    _expect_image_error(path, 3)


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not pixels\n")
    assert "not an image" in _expect_image_error(path, 3)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    assert "not found" in _expect_image_error(tmp_path / "gone.png", 3)


def test_float_image_cannot_be_converted_without_guessing_a_range(tmp_path: Path) -> None:
    Image.new("F", (4, 4), 0.5).save(tmp_path / "float.tif")
    assert "mode 'F'" in _expect_image_error(tmp_path / "float.tif", 3)


def test_image_over_max_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    Image.new("L", (3000, 2000)).save(tmp_path / "big.png")
    message = _expect_image_error(tmp_path / "big.png", 1, max_pixels=1_000_000)
    assert "3000x2000 = 6000000 pixels exceeds max_pixels 1000000" in message
    with pytest.raises(ImageError, match=r"big\.png"):
        probe_image(tmp_path / "big.png", max_pixels=1_000_000)


def test_pillows_decompression_bomb_error_becomes_image_error(tmp_path: Path) -> None:
    _write_png_header_only(tmp_path / "bomb.png", 20_000, 20_000)  # 4e8 pixels, over 2x Pillow's limit
    assert "decompression bomb" in _expect_image_error(tmp_path / "bomb.png", 3, max_pixels=10**12)


def test_unsupported_channel_count_is_a_caller_error(facades_val: Path) -> None:
    with pytest.raises(ValueError, match="channels"):
        read_image(facades_val / "1.jpg", channels=4)


# --- writing ----------------------------------------------------------------------------------------


def test_write_image_creates_folders_and_leaves_no_temp_files(tmp_path: Path) -> None:
    arr = np.random.default_rng(2).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    out = write_image(arr, tmp_path / "a" / "b" / "x.png")
    assert out == tmp_path / "a" / "b" / "x.png"
    assert [p.name for p in out.parent.iterdir()] == ["x.png"]
    np.testing.assert_array_equal(read_image(out, channels=3), arr)


def test_write_image_replaces_an_existing_file_completely(tmp_path: Path) -> None:
    big = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    small = np.full((2, 3), 7, dtype=np.uint8)
    write_image(big, tmp_path / "x.png")
    write_image(small, tmp_path / "x.png")
    np.testing.assert_array_equal(read_image(tmp_path / "x.png", channels=1)[..., 0], small)


def test_failed_write_keeps_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = np.full((4, 4), 9, dtype=np.uint8)
    write_image(old, tmp_path / "x.png")

    def crash(arr: np.ndarray, f: object) -> None:
        f.write(b"half a png")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(image_io, "_encode_png", crash)
    with pytest.raises(KeyboardInterrupt):
        write_image(np.zeros((4, 4), dtype=np.uint8), tmp_path / "x.png")
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "x.png", channels=1)[..., 0], old)


def test_write_image_refuses_to_overwrite_when_asked(tmp_path: Path) -> None:
    write_image(np.zeros((2, 2), dtype=np.uint8), tmp_path / "x.png")
    with pytest.raises(FileExistsError, match=r"x\.png"):
        write_image(np.zeros((2, 2), dtype=np.uint8), tmp_path / "x.png", overwrite=False)


def test_write_image_refuses_float_arrays_and_non_png_names(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="float32"):
        write_image(np.zeros((2, 2), dtype=np.float32), tmp_path / "x.png")
    with pytest.raises(ImageError, match="PNG"):
        write_image(np.zeros((2, 2), dtype=np.uint8), tmp_path / "x.jpg")


# --- tensors ----------------------------------------------------------------------------------------


def test_uint8_round_trip_through_tensor_is_exact() -> None:
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    t = to_tensor(arr)
    assert t.shape == (3, 16, 16)
    assert t.dtype == torch.float32
    assert t.min() == -1.0 and t.max() == 1.0
    np.testing.assert_array_equal(from_tensor(t), arr)


def test_uint16_round_trip_through_tensor_is_exact() -> None:
    arr = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1)
    np.testing.assert_array_equal(from_tensor(to_tensor(arr), np.uint16), arr)


def test_from_tensor_clamps_and_rounds() -> None:
    t = torch.tensor([[[-3.0, 3.0, -1.0 + 2 * 0.6 / 255]]])
    assert from_tensor(t).ravel().tolist() == [0, 255, 1]


# --- listing ----------------------------------------------------------------------------------------


def test_list_images_is_natural_non_recursive_and_case_insensitive(tmp_path: Path) -> None:
    for name in ["10.jpg", "2.PNG", "1.jpeg", "notes.txt", "._3.jpg", "b.TIF"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "0.jpg").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["1.jpeg", "2.PNG", "10.jpg", "b.TIF"]


def test_list_images_names_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_images(tmp_path / "nowhere")


def test_image_error_survives_pickling_and_a_dataloader_worker_reraise(tmp_path: Path) -> None:
    err = ImageError(tmp_path / "x.png", "not an image Pillow can read")
    again = pickle.loads(pickle.dumps(err))
    assert (str(again), again.path, again.problem) == (str(err), err.path, err.problem)
    # torch's ExceptionWrapper.reraise calls exc_type(message) with the worker's formatted traceback.
    assert (
        str(ImageError("Caught ImageError in DataLoader worker")) == "Caught ImageError in DataLoader worker"
    )


# -- the same checks for bytes in memory (request bodies) -----------------------------------------------------

def _bytes_cases(tmp_path: Path, rgb16: np.ndarray) -> list[Path]:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (9, 14, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(rng.integers(0, 256, (9, 14), dtype=np.uint8)).save(tmp_path / "gray.jpg", quality=95)
    write_image(rgb16, tmp_path / "rgb16.png")
    rotated = Image.fromarray(rng.integers(0, 256, (6, 11, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=95)
    return [tmp_path / n for n in ("rgb.png", "gray.jpg", "rgb16.png", "rotated.jpg")]


@pytest.mark.parametrize("channels", [1, 3])
def test_bytes_read_exactly_as_the_file_would_be(tmp_path: Path, rgb16: np.ndarray, channels: int) -> None:
    for path in _bytes_cases(tmp_path, rgb16):
        data = path.read_bytes()
        expected = read_image(path, channels)
        got = image_io.read_image_bytes(data, channels, name="upload")
        assert got.dtype == expected.dtype and np.array_equal(got, expected), path.name
        header = image_io.probe_image_bytes(data, "upload")
        assert (header.height, header.width, header.bits) == (*expected.shape[:2], expected.dtype.itemsize * 8)


def test_bytes_header_says_format_and_mode_and_animations_are_refused() -> None:
    gif = image_io.probe_image_bytes(_encode(Image.new("P", (8, 8)), "GIF"))
    assert (gif.format, gif.mode) == ("GIF", "P")
    cmyk = image_io.probe_image_bytes(_encode(Image.new("CMYK", (8, 8)), "JPEG"))
    assert (cmyk.format, cmyk.mode) == ("JPEG", "CMYK")
    frames = [Image.new("RGB", (8, 8), (80 * i, 0, 0)).convert("P") for i in range(3)]
    with pytest.raises(image_io.UnsupportedImageError, match="body: holds 3 pages or frames"):
        image_io.probe_image_bytes(_encode(frames[0], "GIF", save_all=True, append_images=frames[1:]), "body")


def test_bytes_errors_say_what_kind_of_failure_and_name_the_source() -> None:
    png_data = _encode(Image.new("RGB", (40, 40), (1, 2, 3)), "PNG")
    noisy = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)), "PNG")
    cases = [
        (lambda: image_io.read_image_bytes(noisy[: len(noisy) // 2], 3, "body"), image_io.CorruptImageError,
         "body: truncated or corrupt image file"),
        (lambda: image_io.probe_image_bytes(png_data, "body", max_pixels=100), image_io.ImageTooLargeError,
         "body: 40x40 = 1600 pixels exceeds max_pixels 100"),
        (lambda: image_io.probe_image_bytes(b"just text", "body"), image_io.NotAnImageError,
         "body: not an image Pillow can read"),
        (lambda: image_io.probe_image_bytes(png_data, "body", formats=("JPEG", "GIF")), image_io.NotAnImageError,
         "body: not an image Pillow can read (accepted: JPEG, GIF)"),
        (lambda: image_io.probe_image_bytes(_encode(Image.new("F", (4, 4)), "TIFF"), "body"),
         image_io.UnsupportedImageError, "body: mode 'F' (32-bit float) has no fixed value range"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind) as info:
            call()
        assert str(info.value).startswith(message)
        assert isinstance(info.value, ImageError)  # callers catching the base class see every kind


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
