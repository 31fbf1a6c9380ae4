import io

import numpy as np
import pytest
from PIL import Image

from pixforge.data.palette import CONFIDENT_DISTANCE, FACADES, Palette, _box_any, get_palette, list_palettes


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
    assert FACADES.snap(image[:, 6:7])[3, 0] not in (FACADES.index("facade"), FACADES.index("blind"))  # alone
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


# --- acceptance: > 98% of pixels to the visually correct class --------------------------------------------------
# How it is measured. "Easy" pixels are close to a palette colour with their whole 3x3 neighbourhood of that
# same colour: a flat region, visibly that class, so their correct class is their nearest colour. The others
# (borders, thin stripes, JPEG-washed colour: 23-43% of a map) were sampled at random (32 per map, 64 for the
# densest, train/300) and each one judged by eye on a 13x13 zoomed patch of the original map; at a border
# either side counts. A map's share of correct pixels is then estimated as
#     easy share x (easy correct) + other share x (share of the judged points snapped to an accepted class).
# train/1, 22 and 300 were looked at while the snapping was developed; train/50 and 200 only for this check.
# Measured: 98.9%, 100%, 98.0%, 100%, 100%; all five together 99.4% (188 of 192 judged points right).
EYE_CHECKED = {
    "1.jpg": [
        (219, 15, "shop facade"), (152, 226, "facade balcony"), (218, 20, "facade shop"), (27, 19, "facade"),
        (97, 67, "window facade"), (137, 241, "balcony"), (149, 153, "blind facade"), (239, 12, "facade shop"),
        (99, 252, "window"), (92, 22, "blind"), (193, 155, "sill"), (100, 196, "blind"), (221, 26, "facade shop"),
        (171, 244, "window"), (255, 10, "background facade"), (83, 14, "facade"), (250, 29, "shop"),
        (181, 111, "facade"), (96, 102, "facade window"), (198, 253, "background window"), (233, 65, "facade"),
        (57, 2, "blind"), (164, 46, "facade"), (226, 199, "facade shop"), (153, 127, "facade"),
        (42, 110, "window facade"), (160, 85, "blind facade"), (147, 46, "facade"), (110, 125, "window facade"),
        (186, 156, "window"), (164, 245, "window background"), (60, 27, "window"),
    ],
    "22.jpg": [
        (203, 93, "molding facade"), (141, 145, "facade"), (202, 172, "molding facade"),
        (38, 87, "background facade"), (102, 104, "blind facade"), (132, 86, "pillar"), (137, 186, "facade"),
        (217, 222, "balcony facade"), (106, 142, "facade"), (94, 92, "facade"), (194, 201, "balcony"),
        (106, 206, "facade"), (204, 171, "molding facade"), (164, 179, "pillar"), (247, 226, "facade background"),
        (90, 172, "molding"), (228, 219, "balcony facade"), (176, 224, "facade"), (99, 148, "blind"),
        (197, 203, "balcony molding"), (216, 60, "balcony"), (64, 123, "molding facade"), (155, 188, "blind"),
        (213, 103, "facade"), (142, 150, "deco facade"), (52, 204, "facade"), (151, 146, "blind facade"),
        (135, 213, "pillar"), (112, 225, "background facade"), (184, 155, "window"), (156, 168, "facade pillar"),
        (66, 1, "background"),
    ],
    "300.jpg": [
        (190, 141, "window facade"), (100, 31, "sill"), (189, 5, "facade"), (0, 147, "background facade"),
        (62, 14, "window facade"), (90, 71, "facade"), (96, 52, "facade"), (206, 132, "molding facade"),
        (64, 93, "deco facade window"), (57, 213, "window cornice"), (159, 239, "sill facade window"),
        (64, 213, "window"), (194, 195, "window"), (120, 246, "window"), (234, 0, "facade"), (53, 165, "cornice"),
        (211, 188, "window"), (143, 15, "window facade"), (61, 24, "window"), (184, 15, "facade window"),
        (204, 153, "window"), (39, 151, "molding facade cornice"), (114, 43, "sill"), (201, 189, "window"),
        (101, 6, "sill"), (16, 54, "molding facade"), (110, 3, "facade"), (94, 86, "sill"), (70, 183, "deco"),
        (153, 124, "facade"), (114, 212, "sill"), (40, 241, "molding facade"), (107, 250, "facade sill"),
        (126, 77, "facade window"), (68, 143, "deco window"), (204, 132, "molding"), (55, 239, "window cornice"),
        (49, 206, "cornice"), (15, 109, "facade molding"), (188, 64, "facade"), (198, 167, "facade"),
        (48, 190, "cornice"), (96, 85, "sill"), (67, 78, "window"), (54, 240, "window cornice"),
        (127, 96, "facade window"), (58, 35, "window facade"), (81, 194, "window"), (47, 152, "cornice"),
        (75, 236, "facade deco"), (186, 97, "facade window"), (42, 54, "molding facade cornice"),
        (227, 0, "facade"), (82, 116, "window"), (216, 134, "window facade"), (87, 56, "facade"),
        (84, 17, "facade"), (201, 72, "molding facade"), (14, 136, "facade"), (113, 115, "sill"),
        (38, 67, "molding"), (89, 20, "facade"), (168, 45, "facade"), (153, 107, "facade"),
    ],
    "50.jpg": [
        (205, 176, "pillar facade"), (117, 130, "facade"), (204, 99, "window pillar"), (0, 100, "background"),
        (85, 47, "sill"), (113, 117, "shop molding"), (115, 236, "molding facade"), (232, 241, "pillar"),
        (87, 120, "sill"), (80, 30, "facade"), (190, 240, "window facade"), (87, 218, "sill"), (209, 82, "pillar"),
        (167, 254, "facade"), (249, 132, "facade"), (47, 55, "window"), (242, 82, "pillar"), (178, 251, "molding"),
        (84, 51, "sill"), (199, 91, "facade pillar"), (228, 16, "window"), (17, 147, "molding balcony"),
        (153, 182, "balcony facade"), (221, 79, "pillar"), (117, 228, "facade"), (7, 255, "balcony"),
        (150, 109, "facade"), (115, 37, "molding facade"), (91, 220, "facade"), (182, 119, "balcony"),
        (156, 32, "facade"), (29, 250, "molding"),
    ],
    "200.jpg": [
        (197, 140, "molding facade"), (137, 184, "cornice facade"), (197, 73, "molding facade"),
        (20, 78, "background facade"), (96, 53, "molding"), (129, 115, "sill facade"), (135, 26, "balcony"),
        (210, 21, "background"), (97, 214, "molding facade"), (92, 158, "molding cornice"), (194, 41, "background"),
        (98, 79, "facade"), (198, 123, "molding facade"), (172, 151, "facade"), (254, 74, "background"),
        (83, 155, "molding"), (226, 99, "facade window"), (179, 95, "window sill"), (95, 139, "molding"),
        (195, 174, "molding facade"), (207, 166, "window"), (59, 152, "facade"), (156, 235, "window"),
        (203, 253, "sill window"), (138, 252, "background"), (41, 117, "facade"), (152, 157, "window"),
        (133, 27, "balcony"), (102, 178, "cornice"), (182, 45, "molding"), (157, 244, "window"),
        (64, 166, "window"),
    ],
}


def easy_pixels(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(easy mask, nearest class): confident nearest colour throughout the 3x3 neighbourhood."""
    diff = rgb[None].astype(np.int32) - FACADES.colours.astype(np.int32)[:, None, None, :]
    distance = (diff * diff).sum(-1)
    nearest = distance.argmin(0)
    confident = distance.min(0) < CONFIDENT_DISTANCE**2
    easy = np.zeros(nearest.shape, bool)
    for c in range(len(FACADES)):
        flat = confident & (nearest == c)
        easy |= flat & ~_box_any(~flat, 3)
    return easy, nearest


def estimated_correct_share(facades, name: str) -> tuple[float, list]:
    rgb = label_half(facades, name)
    snapped = FACADES.snap(rgb)
    easy, nearest = easy_pixels(rgb)
    points = EYE_CHECKED[name]
    wrong = [(y, x, FACADES.classes[snapped[y, x]], accepted) for y, x, accepted in points
             if FACADES.classes[snapped[y, x]] not in accepted.split()]
    judged_right = 1 - len(wrong) / len(points)
    share = easy.mean() * (snapped[easy] == nearest[easy]).mean() + (~easy).mean() * judged_right
    return float(share), wrong


@pytest.mark.slow
def test_facades_label_maps_snap_to_the_visually_correct_class(facades):
    shares = {}
    for name in EYE_CHECKED:
        shares[name], wrong = estimated_correct_share(facades, name)
        assert shares[name] > 0.975 and len(wrong) <= 0.05 * len(EYE_CHECKED[name]), (name, shares[name], wrong)
    assert np.mean(list(shares.values())) > 0.98, shares


def jpeg(rgb: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality, subsampling="4:2:0")
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_thin_stripes_keep_their_class_through_jpeg_colour_subsampling():
    """2-4 pixel yellow "blind" bars and a facade strip between two shops: JPEG keeps their brightness but
    washes their colour towards the surroundings; nearest colour calls the bars "balcony"."""
    classes = np.full((48, 96), FACADES.index("facade"), np.uint8)
    for i, width in enumerate((2, 3, 4, 3, 2, 4)):
        classes[8:40, 6 + 8 * i:6 + 8 * i + width] = FACADES.index("blind")
    classes[8:40, 56:70] = FACADES.index("shop")
    classes[8:40, 73:90] = FACADES.index("shop")  # a 3-pixel facade gap at 70..72
    observed = jpeg(FACADES.render(classes))
    snapped = FACADES.snap(observed)
    phantom = ~np.isin(snapped, np.unique(classes))
    assert phantom.mean() < 0.005  # a few corner pixels of the 2-pixel bars, washed from two sides
    interior = np.ones_like(classes, bool)
    for shift in (-1, 1):
        for axis in (0, 1):
            interior &= np.roll(classes, shift, axis) == classes
    assert (snapped[interior] == classes[interior]).mean() > 0.99
    bars = classes == FACADES.index("blind")
    assert (snapped[bars] == FACADES.index("blind")).mean() > 0.9
    nearest = np.argmin(((observed[None].astype(int) - FACADES.colours[:, None, None].astype(int)) ** 2).sum(-1), 0)
    assert (nearest[bars] == FACADES.index("blind")).mean() < 0.8  # what plain nearest colour gets wrong
    assert (snapped[8:40, 70:73] == FACADES.index("facade")).mean() > 0.6  # the gap between the shops
