"""The procedural "blocks" dataset: deterministic, exact label colours, aligned A|B files, idempotent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixforge.data.procedural import PALETTE, make_pair, write_blocks_dataset


def test_same_seed_gives_identical_pairs() -> None:
    a1, b1 = make_pair(np.random.default_rng(7), 64)
    a2, b2 = make_pair(np.random.default_rng(7), 64)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)


def test_different_seeds_give_different_pairs() -> None:
    a1, b1 = make_pair(np.random.default_rng(1), 64)
    a2, b2 = make_pair(np.random.default_rng(2), 64)
    assert not np.array_equal(a1, a2)
    assert not np.array_equal(b1, b2)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_pair_is_two_hxwx3_uint8_images_of_the_requested_size(size: int) -> None:
    a, b = make_pair(np.random.default_rng(0), size)
    for image in (a, b):
        assert image.shape == (size, size, 3)
        assert image.dtype == np.uint8


def test_label_map_uses_only_exact_palette_colours() -> None:
    palette = {tuple(c) for c in PALETTE.values()}
    for seed in range(20):
        a, _ = make_pair(np.random.default_rng(seed), 64)
        assert {tuple(c) for c in a.reshape(-1, 3).tolist()} <= palette


def test_palette_colours_are_distinct() -> None:
    assert len(set(PALETTE.values())) == len(PALETTE)


def test_rendering_is_not_the_label_map() -> None:
    a, b = make_pair(np.random.default_rng(3), 64)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 20


def test_rendering_depends_on_the_layout_not_only_per_pixel_class() -> None:
    # Same class, different pixels -> different colours (texture and shading), or the task would be
    # a lookup table rather than image translation.
    a, b = make_pair(np.random.default_rng(4), 64)
    wall = np.all(a == PALETTE["wall"], axis=-1)
    assert len({tuple(c) for c in b[wall].tolist()}) > 20


def test_scenes_vary_in_the_classes_they_show() -> None:
    counts = np.zeros(len(PALETTE))
    colours = np.array(list(PALETTE.values()))
    for seed in range(30):
        a, _ = make_pair(np.random.default_rng(seed), 64)
        counts += np.all(a.reshape(-1, 1, 3) == colours[None], axis=-1).any(axis=0)
    assert (counts > 0).all(), "every class appears somewhere in 30 scenes"


def test_write_blocks_dataset_writes_aligned_pairs_that_decode(tmp_path: Path) -> None:
    root = write_blocks_dataset(tmp_path / "blocks", n_train=5, n_val=2, size=32, seed=0)
    assert root == tmp_path / "blocks"
    train = sorted((root / "train").glob("*.png"))
    val = sorted((root / "val").glob("*.png"))
    assert [p.name for p in train] == ["0001.png", "0002.png", "0003.png", "0004.png", "0005.png"]
    assert len(val) == 2
    for path in train + val:
        with Image.open(path) as im:
            assert im.size == (64, 32)
            assert im.mode == "RGB"
    first = np.asarray(Image.open(train[0]))
    a = first[:, :32]
    assert {tuple(c) for c in a.reshape(-1, 3).tolist()} <= set(PALETTE.values())


def test_file_contents_do_not_depend_on_how_many_pairs_are_written(tmp_path: Path) -> None:
    small = write_blocks_dataset(tmp_path / "small", n_train=2, n_val=1, size=32, seed=3)
    large = write_blocks_dataset(tmp_path / "large", n_train=4, n_val=1, size=32, seed=3)
    for name in ("train/0001.png", "train/0002.png", "val/0001.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(small / name)),
                                      np.asarray(Image.open(large / name)))


def test_rewriting_with_same_parameters_skips_generation(tmp_path: Path) -> None:
    root = write_blocks_dataset(tmp_path, n_train=3, n_val=1, size=32, seed=0)
    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
    write_blocks_dataset(tmp_path, n_train=3, n_val=1, size=32, seed=0)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.png")} == stamps


def test_rewriting_with_other_parameters_replaces_the_pairs(tmp_path: Path) -> None:
    write_blocks_dataset(tmp_path, n_train=4, n_val=2, size=32, seed=0)
    write_blocks_dataset(tmp_path, n_train=2, n_val=1, size=48, seed=1)
    train = sorted((tmp_path / "train").glob("*.png"))
    assert len(train) == 2 and len(list((tmp_path / "val").glob("*.png"))) == 1
    assert Image.open(train[0]).size == (96, 48)
    manifest = json.loads((tmp_path / "dataset.json").read_text())
    assert manifest["complete"] and manifest["params"]["seed"] == 1


def test_interrupted_generation_is_redone(tmp_path: Path) -> None:
    write_blocks_dataset(tmp_path, n_train=3, n_val=1, size=32, seed=0)
    (tmp_path / "train" / "0003.png").unlink()
    write_blocks_dataset(tmp_path, n_train=3, n_val=1, size=32, seed=0)
    assert (tmp_path / "train" / "0003.png").exists()


def test_refuses_to_write_into_a_folder_with_foreign_images(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "photo.jpg").write_bytes(b"not ours")
    with pytest.raises(FileExistsError, match=r"dataset\.json"):
        write_blocks_dataset(tmp_path, n_train=1, n_val=1, size=32)
    assert (tmp_path / "train" / "photo.jpg").exists()
