import numpy as np
import pytest
from PIL import Image

from pixforge.data.palette import FACADES, Palette, get_palette, list_palettes


def label_half(facades, name: str) -> np.ndarray:
    with Image.open(facades / "train" / name) as im:
        return np.asarray(im.convert("RGB"))[:, 256:]


def majority(classes: np.ndarray, n_classes: int, size: int = 5) -> np.ndarray:
    """The most common class in each size x size window (box sums of one-hot planes)."""
    pad = size // 2
    votes = []
    for c in range(n_classes):
        plane = np.pad((classes == c).astype(np.int32), pad, mode="edge")
        s = plane.cumsum(0).cumsum(1)
        s = np.pad(s, ((1, 0), (1, 0)))
        votes.append(s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size])
    return np.argmax(np.stack(votes), 0)


def test_flat_colours_snap_to_their_own_class_and_render_back():
    grid = FACADES.colours[np.arange(12).reshape(3, 4)]
    assert np.array_equal(FACADES.snap(grid), np.arange(12).reshape(3, 4))
    assert np.array_equal(FACADES.render(FACADES.snap(grid)), grid)


def test_jpeg_noise_snaps_to_the_nearest_colour():
    noisy = np.clip(FACADES.colours[[0, 6, 11]].astype(int) + [[5, -7, 9]], 0, 255).astype(np.uint8)[None]
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


@pytest.mark.parametrize("name", ["1.jpg", "5.jpg", "22.jpg", "100.jpg"])
def test_over_98_percent_of_facades_label_pixels_snap_to_their_region_class(facades, name):
    classes = FACADES.snap(label_half(facades, name))
    # JPEG blurs 1-2 px at each border; the regions themselves are rectangles several pixels wide, so the
    # 5x5 majority is the class the eye sees.
    agreement = (classes == majority(classes, len(FACADES))).mean()
    assert agreement > 0.98, agreement


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
