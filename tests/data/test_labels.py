"""Label maps as input: class-index files, palette drawings, pix2pixHD's folders, one-hot + instance boundaries."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixforge.config import ConfigError, config_from_dict
from pixforge.data import (
    DatasetError,
    ImageError,
    LabelError,
    LabelMapDataset,
    encode_label_map,
    instance_boundaries,
    label_classes,
    open_dataset,
    read_index_map,
)
from pixforge.data.transforms import resize_nearest

COLOURS = np.array([(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (0, 0, 0)], np.uint8)


def test_index_maps_keep_their_values_whatever_the_png_kind(tmp_path):
    values = np.array([[0, 3, 34], [7, 255, 1]], np.uint8)
    Image.fromarray(values).save(tmp_path / "grey.png")
    palette_image = Image.fromarray(values, mode="P")
    palette_image.putpalette(list(np.random.default_rng(0).integers(0, 256, 768)))  # colours must not matter
    palette_image.save(tmp_path / "palette.png")
    Image.fromarray(np.stack([values] * 3, 2)).save(tmp_path / "rgb_grey.png")
    Image.fromarray(values.astype(np.uint16) * 100 + 1).save(tmp_path / "wide.png")  # 16-bit, as instance ids
    for name in ("grey.png", "palette.png", "rgb_grey.png"):
        assert np.array_equal(read_index_map(tmp_path / name), values), name
    assert np.array_equal(read_index_map(tmp_path / "wide.png"), values.astype(np.int32) * 100 + 1)


def test_colour_images_are_refused_as_index_maps_with_a_hint(tmp_path):
    Image.fromarray(COLOURS[np.array([[0, 1], [2, 3]])]).save(tmp_path / "mask.png")
    with pytest.raises(ImageError, match=r"mask\.png: a colour \(RGB\) image, not a class-index map.*input_palette"):
        read_index_map(tmp_path / "mask.png")


def test_values_outside_label_nc_are_refused_with_file_value_and_count_or_mapped_to_ignore():
    values = np.array([[0, 1, 255], [255, 40, 2]])
    with pytest.raises(LabelError) as err:
        label_classes(values, 35, "a/label.png")
    assert str(err.value) == ("a/label.png: label value 40 in 1 pixels is outside 0..34 (data.label_nc 35) "
                              "(and 1 other values outside the range); set data.ignore_label to map such values to "
                              "a class, or raise data.label_nc")
    mapped = label_classes(values, 35, "a/label.png", ignore_label=0)
    assert mapped.tolist() == [[0, 1, 0], [0, 0, 2]] and mapped.dtype == np.uint8


@pytest.mark.parametrize(("size_in", "size_out"), [((256, 256), (286, 286)), ((256, 256), (143, 143)),
                                                    ((1024, 2048), (512, 1024)), ((37, 100), (211, 57))])
def test_nearest_resize_picks_the_pixels_pillow_picks_and_invents_no_class(size_in, size_out):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 35, size_in).astype(np.uint8)
    ours = resize_nearest(labels, *size_out)
    pillow = np.asarray(Image.fromarray(labels).resize(size_out[::-1], Image.Resampling.NEAREST))
    assert np.array_equal(ours, pillow)
    assert set(np.unique(ours)) <= set(np.unique(labels))
    wide = labels.astype(np.int32) * 1000  # instance ids of any width resize the same way
    assert np.array_equal(resize_nearest(wide, *size_out), ours.astype(np.int32) * 1000)


def test_one_hot_and_instance_boundaries():
    classes = torch.tensor([[0, 0, 2], [0, 0, 2]])
    instances = torch.tensor([[5, 6, 9], [5, 6, 9]])
    x = encode_label_map(classes, 3, instances)
    assert x.shape == (4, 2, 3)
    assert x[:3].sum(0).eq(1).all() and x[2, :, 2].eq(1).all() and x[1].eq(0).all()
    # Two touching instances of the same class (5 | 6) are told apart by the boundary channel.
    assert x[3].tolist() == [[1, 1, 1], [1, 1, 1]]
    assert instance_boundaries(torch.tensor([[1, 1], [1, 1]])).sum() == 0
    assert encode_label_map(classes.unsqueeze(0), 3).shape == (1, 3, 2, 3)


def make_hd_layout(root: Path, count: int = 3, size: tuple[int, int] = (40, 60), with_instances: bool = True) -> Path:
    """pix2pixHD folders as Cityscapes names them: label, image and instance files with different suffixes.
    The image is each class's colour, so any misalignment of crops or flips between the maps shows."""
    rng = np.random.default_rng(1)
    for folder in ("train_label", "train_img", "train_inst"):
        (root / folder).mkdir(parents=True)
    h, w = size
    for i in range(count):
        classes = np.zeros(size, np.uint8)
        classes[: h // 2, : w // 3] = 1
        classes[h // 2 :, w // 2 :] = 3
        classes[rng.integers(0, h), :] = 2
        instances = classes.astype(np.uint16) * 1000
        instances[h // 2 :, w // 2 : 3 * w // 4] += 1  # two touching instances of class 3
        stem = f"city_{i:06d}"
        Image.fromarray(classes).save(root / "train_label" / f"{stem}_gtFine_labelIds.png")
        Image.fromarray(COLOURS[classes]).save(root / "train_img" / f"{stem}_leftImg8bit.png")
        if with_instances:
            Image.fromarray(instances).save(root / "train_inst" / f"{stem}_gtFine_instanceIds.png")
    return root


def hd_config(root: Path, **data):
    return config_from_dict({"data": {"root": str(root), "layout": "pix2pixhd", "label_nc": 5, "instance_maps": True,
                                      "preprocess": "resize_and_crop", "load_size": 36, "crop_size": 32, **data}})


def test_pix2pixhd_folders_give_one_hot_input_with_crops_and_flips_shared_by_all_maps(tmp_path):
    cfg = hd_config(make_hd_layout(tmp_path / "hd"))
    dataset = open_dataset(cfg.data, "train", train=True)
    assert isinstance(dataset, LabelMapDataset) and len(dataset) == 3
    assert dataset.sources[0].a.name.endswith("labelIds.png") and dataset.sources[0].inst is not None
    flipped = 0
    for seed in range(8):
        item = dataset[1, seed]
        assert item["input"].shape == (6, 32, 32)  # 5 classes + the boundary channel
        assert item["input"][:5].sum(0).eq(1).all()
        colours = torch.from_numpy(COLOURS.astype(np.float32) / 127.5 - 1)[item["label"]].permute(2, 0, 1)
        # Bicubic resizing blurs the photo's edges: compare away from the class borders.
        inner = item["input"][5] == 0
        assert (item["target"] - colours).abs().amax(0)[inner].max() < 0.05
        assert item["input"][5].sum() > 0 and item["instance"].unique().numel() >= 3
        flipped += int(item["label"][0, 0] == 0)  # class 1 sits top-left unless flipped
    assert 0 < flipped < 8


def test_pix2pixhd_folders_must_pair_up_and_instances_must_exist(tmp_path):
    root = make_hd_layout(tmp_path / "hd")
    next(iter((root / "train_img").iterdir())).unlink()
    with pytest.raises(DatasetError, match="need equally many .* found train_label/ 3, train_img/ 2"):
        open_dataset(hd_config(root).data, "train", train=True)
    bare = make_hd_layout(tmp_path / "bare", with_instances=False)
    with pytest.raises(DatasetError, match="instance_maps is on but there is no instance map"):
        open_dataset(hd_config(bare).data, "train", train=True)[0]
    assert open_dataset(hd_config(bare, instance_maps=False).data, "train", train=True)[0]["input"].shape[0] == 5


def test_a_label_value_beyond_label_nc_stops_loading_with_the_file_named(tmp_path):
    root = make_hd_layout(tmp_path / "hd")
    with pytest.raises(LabelError, match=r"city_000000_gtFine_labelIds\.png: label value 3 in \d+ pixels .* 0..2"):
        open_dataset(hd_config(root, label_nc=3, instance_maps=False).data, "train", train=True)[0]
    item = open_dataset(hd_config(root, label_nc=3, ignore_label=0, instance_maps=False).data, "train", True)[0]
    assert item["label"].max() <= 2


def test_label_options_that_do_not_fit_are_refused_by_the_config():
    with pytest.raises(ConfigError, match="instance_maps needs label maps"):
        config_from_dict({"data": {"instance_maps": True, "label_nc": 3}})
    with pytest.raises(ConfigError, match="layout 'pix2pixhd' reads class-index label maps"):
        config_from_dict({"data": {"layout": "pix2pixhd"}})
    with pytest.raises(ConfigError, match="ignore_label 7 must be a class of 0..4"):
        config_from_dict({"data": {"label_nc": 5, "ignore_label": 7}})
    cfg = config_from_dict({"data": {"label_nc": 35, "layout": "pix2pixhd", "instance_maps": True}})
    assert cfg.data.input_channels == 36


def test_facades_colour_labels_become_twelve_one_hot_channels(facades):
    cfg = config_from_dict({"data": {"root": str(facades), "direction": "BtoA", "input_palette": "facades",
                                     "label_nc": 12, "load_size": 143, "crop_size": 128, "max_items": 2}})
    item = open_dataset(cfg.data, "train", train=False)[0]
    assert item["input"].shape == (12, 128, 128) and item["input"].sum(0).eq(1).all()
    assert item["preview"].shape == item["target"].shape == (3, 128, 128)
    with pytest.raises(DatasetError, match="label_nc is 35 but palette 'facades' .* has 12 classes"):
        open_dataset(cfg.data.model_copy(update={"label_nc": 35}), "train", train=False)
