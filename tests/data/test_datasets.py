"""Specification of pair listing and the paired dataset (pixforge.data.datasets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pixforge.config import DataConfig
from pixforge.data.datasets import DatasetError, PairedDataset, load_pairs
from pixforge.data.image_io import ImageError, from_tensor, read_image, to_tensor, write_image
from pixforge.data.transforms import eval_params, prepare

FACADES = Path(__file__).parents[2].parent / "shared" / "datasets" / "facades"


@pytest.fixture
def facades() -> Path:
    if not (FACADES / "val").is_dir():
        pytest.skip("../shared/datasets/facades not present")
    return FACADES


def _cfg(root: Path, **fields: Any) -> DataConfig:
    return DataConfig(root=root, **fields)


def _write_aligned(folder: Path, names: list[str], height: int = 40, half: int = 48) -> None:
    """Aligned files whose A and B halves are identical, so any joint transform keeps input == target."""
    rng = np.random.default_rng(0)
    for name in names:
        a = rng.integers(0, 256, (height, half, 3), dtype=np.uint8)
        write_image(np.concatenate([a, a], axis=1), folder / name)


# --- facades ---------------------------------------------------------------------------------------


def test_facades_val_items_are_crop_size_tensors_in_unit_range(facades: Path) -> None:
    ds = PairedDataset(_cfg(facades, max_items=4), "val", train=False)
    assert len(ds) == 4
    item = ds[0]
    assert item["input"].shape == item["target"].shape == (3, 256, 256)
    assert item["input"].dtype == torch.float32
    assert item["input"].min() >= -1.0 and item["input"].max() <= 1.0
    assert item["path"].endswith("1.jpg")
    assert item["index"] == 0


def test_btoa_makes_the_right_half_the_input(facades: Path) -> None:
    cfg = _cfg(facades, max_items=1, direction="BtoA")
    item = PairedDataset(cfg, "val", train=False)[0]
    ab = read_image(facades / "val" / "1.jpg", 3)
    params = eval_params((286, 286), "resize_and_crop", 256)
    left = prepare(ab[:, :256], "resize_and_crop", 286, 256)[15:271, 15:271]
    right = prepare(ab[:, 256:], "resize_and_crop", 286, 256)[15:271, 15:271]
    assert params.crop == (15, 15)
    torch.testing.assert_close(item["input"], to_tensor(right), rtol=0, atol=0)
    torch.testing.assert_close(item["target"], to_tensor(left), rtol=0, atol=0)


def test_same_seed_gives_the_same_item_and_another_seed_a_different_crop(facades: Path) -> None:
    ds = PairedDataset(_cfg(facades, max_items=2), "val", train=True)
    first, again, other = ds[1, 123], ds[1, 123], ds[1, 124]
    assert torch.equal(first["input"], again["input"]) and torch.equal(first["target"], again["target"])
    assert not torch.equal(first["input"], other["input"])


def test_an_int_key_while_training_uses_the_index_as_seed(facades: Path) -> None:
    ds = PairedDataset(_cfg(facades, max_items=2), "val", train=True)
    assert torch.equal(ds[1]["input"], ds[1, 1]["input"])


def test_grayscale_input_has_one_channel(facades: Path) -> None:
    item = PairedDataset(_cfg(facades, max_items=1, input_nc=1), "val", train=True)[0]
    assert item["input"].shape == (1, 256, 256)
    assert item["target"].shape == (3, 256, 256)


def test_cached_and_uncached_items_are_identical(facades: Path) -> None:
    cached = PairedDataset(_cfg(facades, max_items=3, cache=True), "val", train=True)
    cached.preload(progress=False)
    assert cached.cached_bytes() == 3 * 2 * 286 * 286 * 3
    fresh = PairedDataset(_cfg(facades, max_items=3, cache=False), "val", train=True)
    for i in range(3):
        assert torch.equal(cached[i, 99]["input"], fresh[i, 99]["input"])
    assert fresh.cached_bytes() == 0


# --- joint augmentation on synthetic pairs ---------------------------------------------------------


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "crop", "scale_width_and_crop", "none"])
def test_joint_augmentation_keeps_identical_halves_identical(tmp_path: Path, preprocess: str) -> None:
    _write_aligned(tmp_path / "train", ["1.png", "2.png"])
    cfg = _cfg(tmp_path, preprocess=preprocess, load_size=36, crop_size=32)
    ds = PairedDataset(cfg, "train", train=True)
    for seed in range(8):
        item = ds[0, seed]
        assert torch.equal(item["input"], item["target"])
    assert len({ds[0, seed]["input"].numpy().tobytes() for seed in range(8)}) > 1  # crops or flips vary


def test_16bit_pairs_keep_their_values(tmp_path: Path) -> None:
    a = np.random.default_rng(5).integers(0, 65536, (32, 32, 3), dtype=np.uint16)
    b = a[..., :1].copy()
    write_image(a, tmp_path / "train" / "A" / "1.png")
    write_image(b, tmp_path / "train" / "B" / "1.png")
    cfg = _cfg(tmp_path, layout="folders", preprocess="crop", crop_size=32, output_nc=1)
    item = PairedDataset(cfg, "train", train=False)[0]
    np.testing.assert_array_equal(from_tensor(item["input"], np.uint16), a)
    np.testing.assert_array_equal(from_tensor(item["target"], np.uint16), b)


# --- layouts ---------------------------------------------------------------------------------------


def test_folders_layout_pairs_files_by_stem_across_extensions(tmp_path: Path) -> None:
    for name in ["10.png", "2.png"]:
        write_image(np.zeros((8, 8, 3), dtype=np.uint8), tmp_path / "train" / "A" / name)
    (tmp_path / "train" / "B").mkdir()
    for name in ["2.jpg", "10.jpg"]:
        (tmp_path / "train" / "B" / name).write_bytes(b"")
    pairs = load_pairs(tmp_path, "train", "folders")
    assert [(p.a.name, p.b.name if p.b else None) for p in pairs] == [
        ("2.png", "2.jpg"),
        ("10.png", "10.jpg"),
    ]


def test_folders_with_mismatched_stems_list_the_unmatched_names(tmp_path: Path) -> None:
    for i in range(8):
        (tmp_path / "A").mkdir(exist_ok=True)
        (tmp_path / "A" / f"a{i}.png").write_bytes(b"")
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "a0.png").write_bytes(b"")
    (tmp_path / "B" / "extra.png").write_bytes(b"")
    with pytest.raises(DatasetError) as info:
        load_pairs(tmp_path, None, "folders")
    message = str(info.value)
    assert "7 only in A/ (a1.png, a2.png, a3.png, a4.png, a5.png, ...)" in message
    assert "1 only in B/ (extra.png)" in message
    assert "A/ has 8 images, B/ has 2" in message
    assert "\n" not in message


def test_missing_split_folder_names_the_path(tmp_path: Path) -> None:
    _write_aligned(tmp_path, ["1.png"])
    with pytest.raises(DatasetError, match=r"train: no such folder.*use split None"):
        load_pairs(tmp_path, "train", "aligned")
    assert len(load_pairs(tmp_path, None, "aligned")) == 1


def test_aligned_layout_on_a_folders_dataset_suggests_the_layout(tmp_path: Path) -> None:
    (tmp_path / "train" / "A").mkdir(parents=True)
    with pytest.raises(DatasetError, match="layout 'folders'"):
        load_pairs(tmp_path, "train", "aligned")


def test_unset_root_is_a_dataset_error() -> None:
    with pytest.raises(DatasetError, match=r"data\.root"):
        PairedDataset(DataConfig(), "train", train=True)


def test_max_items_keeps_the_first_pairs_in_natural_order(tmp_path: Path) -> None:
    _write_aligned(tmp_path / "train", ["10.png", "2.png", "1.png"])
    ds = PairedDataset(_cfg(tmp_path, max_items=2, load_size=32, crop_size=32), "train", train=False)
    assert [Path(s.a).name for s in ds.sources] == ["1.png", "2.png"]


# --- bad files -------------------------------------------------------------------------------------


def test_odd_width_aligned_pair_names_the_file(tmp_path: Path) -> None:
    _write_aligned(tmp_path / "train", ["1.png"])
    write_image(np.zeros((8, 11, 3), dtype=np.uint8), tmp_path / "train" / "17.png")
    with pytest.raises(ImageError, match=r"17\.png: width 11 is odd; aligned pairs need an even width"):
        PairedDataset(_cfg(tmp_path, load_size=32, crop_size=32), "train", train=True)


def test_folders_pair_of_different_sizes_names_both_files(tmp_path: Path) -> None:
    write_image(np.zeros((40, 40), dtype=np.uint8), tmp_path / "A" / "1.png")
    write_image(np.zeros((50, 40), dtype=np.uint8), tmp_path / "B" / "1.png")
    cfg = _cfg(tmp_path, layout="folders", preprocess="crop", crop_size=32)
    with pytest.raises(ImageError, match=r"A/1\.png: 40x40 and .*B/1\.png \(40x50\) differ"):
        PairedDataset(cfg, None, train=True)


def test_truncated_file_is_found_when_decoded_and_named(tmp_path: Path) -> None:
    _write_aligned(tmp_path / "train", ["1.png"])
    path = tmp_path / "train" / "1.png"
    path.write_bytes(path.read_bytes()[:-200])  # header intact, pixels cut
    ds = PairedDataset(_cfg(tmp_path, load_size=32, crop_size=32), "train", train=True)
    with pytest.raises(ImageError, match=r"1\.png: truncated or corrupt"):
        ds[0]


def test_skip_bad_counts_bad_files_and_leaves_them_out(tmp_path: Path) -> None:
    folder = tmp_path / "train"
    _write_aligned(folder, ["1.png", "2.png", "3.png", "cut.png"])
    (folder / "cut.png").write_bytes((folder / "cut.png").read_bytes()[:-200])
    (folder / "noise.jpg").write_bytes(np.random.default_rng(0).bytes(1000))
    write_image(np.zeros((8, 11, 3), dtype=np.uint8), folder / "odd.png")
    ds = PairedDataset(_cfg(tmp_path, skip_bad=True, load_size=32, crop_size=32), "train", train=True)
    assert len(ds) == 3
    assert sorted(Path(path).name for path, _ in ds.skipped) == ["cut.png", "noise.jpg", "odd.png"]
    assert all(reason and "\n" not in reason for _, reason in ds.skipped)
    assert ds.cached_bytes() > 0  # skip_bad decodes every file once; the cache keeps the result
    assert [ds[i]["input"].shape for i in range(3)] == [(3, 32, 32)] * 3


def test_items_from_worker_processes_match_direct_indexing(tmp_path: Path) -> None:
    _write_aligned(tmp_path / "train", ["1.png", "2.png", "3.png"])
    ds = PairedDataset(_cfg(tmp_path, load_size=36, crop_size=32), "train", train=True)
    keys = [(0, 11), (1, 12), (2, 13), (0, 14)]
    loader = DataLoader(ds, sampler=keys, batch_size=None, num_workers=2)
    for key, item in zip(keys, loader, strict=True):
        assert torch.equal(item["input"], ds[key]["input"])


def test_a_bad_file_in_a_worker_still_raises_image_error(tmp_path: Path) -> None:
    _write_aligned(tmp_path / "train", ["1.png"])
    path = tmp_path / "train" / "1.png"
    path.write_bytes(path.read_bytes()[:-200])
    ds = PairedDataset(_cfg(tmp_path, load_size=32, crop_size=32), "train", train=True)
    batches = iter(DataLoader(ds, batch_size=None, num_workers=1))
    with pytest.raises(ImageError, match=r"1\.png"):
        next(batches)
    assert next(batches, None) is None  # exhausting the loader shuts its worker down now
