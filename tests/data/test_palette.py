import numpy as np
import pytest
from PIL import Image

from pixforge.data.palette import FACADES, Palette, get_palette, list_palettes


def label_half(facades, name: str) -> np.ndarray:
    with Image.open(facades / "train" / name) as im:
        return np.asarray(im.convert("RGB"))[:, 256:]


def test_flat_colours_snap_to_their_own_class_and_render_back():
    grid = FACADES.colours[np.arange(12).reshape(3, 4)]
    assert np.array_equal(FACADES.snap(grid), np.arange(12).reshape(3, 4))
    assert np.array_equal(FACADES.render(FACADES.snap(grid)), grid)


def test_jpeg_noise_snaps_to_the_nearest_colour():
    noise = np.array([[5, -7, 9]])
    noisy = np.clip(FACADES.colours[[0, 6, 11]].astype(int) + noise, 0, 255).astype(np.uint8)[None]
    assert FACADES.snap(noisy).tolist() == [[0, 6, 11]]


# Points checked by eye on the snapped maps of train/1.jpg and train/22.jpg (label half, x from its left edge).
PINNED = [
    ("1.jpg", 232, 40, "shop"), ("1.jpg", 56, 72, "window"), ("1.jpg", 8, 8, "facade"),
    ("22.jpg", 8, 8, "background"), ("22.jpg", 40, 56, "facade"), ("22.jpg", 56, 88, "molding"),
    ("22.jpg", 72, 88, "balcony"), ("22.jpg", 120, 88, "pillar"), ("22.jpg", 56, 232, "window"),
]


@pytest.mark.parametrize(("name", "y", "x", "expected"), PINNED)
def test_facades_labels_snap_to_the_class_seen_by_eye(facades, name, y, x, expected):
    assert FACADES.classes[FACADES.snap(label_half(facades, name))[y, x]] == expected


def test_blended_borders_take_a_neighbouring_class_not_a_phantom_one():
    """Blue | yellow blended at the border: the blend is nearest to a third class (sill), which is nowhere
    near; in context it must become blue or yellow."""
    blue, yellow = FACADES.colours[FACADES.index("facade")], FACADES.colours[FACADES.index("blind")]
    row = np.array([blue] * 6 + [(blue.astype(int) + yellow) // 2] + [yellow] * 6, np.uint8)
    image = np.repeat(row[None], 7, axis=0)
    assert FACADES.classes[FACADES.snap(image[:, 6:7])[3, 0]] == "sill"  # alone: the phantom
    assert set(FACADES.snap(image)[:, 6].tolist()) <= {FACADES.index("facade"), FACADES.index("blind")}


def test_large_images_are_snapped_in_bands_without_seams():
    rng = np.random.default_rng(0)
    classes = np.repeat(np.repeat(rng.integers(0, 12, (40, 9)), 16, 0), 16, 1)  # 640 x 144, blocks of 16
    assert np.array_equal(FACADES.snap(FACADES.render(classes)), classes)


def test_palettes_are_found_by_name_and_errors_name_the_problem():
    assert get_palette("facades") is FACADES and "facades" in list_palettes()
    assert FACADES.index("window") == 2 and FACADES.to_dict()["colours"][0] == "#0000de"
    with pytest.raises(KeyError, match="unknown palette 'nope'"):
        get_palette("nope")
    with pytest.raises(KeyError, match="no class 'door2'"):
        FACADES.index("door2")
    with pytest.raises(ValueError, match="share a colour"):
        Palette("bad", ("a", "b"), np.array([(1, 2, 3), (1, 2, 3)]))
    with pytest.raises(ValueError, match="outside 0..11"):
        FACADES.render(np.array([[12]]))
    with pytest.raises(ValueError, match="expected an HxWx3 colour image"):
        FACADES.snap(np.zeros((4, 4), np.uint8))
