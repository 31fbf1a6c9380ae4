"""Shared fixtures: the ``../shared`` folder beside the checkout and small datasets made in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (the project's shared data folder sits beside the checkout)")
    return SHARED


@pytest.fixture(scope="session")
def facades(shared: Path) -> Path:
    root = shared / "datasets" / "facades"
    if not (root / "train").is_dir():
        pytest.skip(f"{root} not present")
    return root


@pytest.fixture(scope="session")
def reference_dir(shared: Path) -> Path:
    root = shared / "fixtures" / "reference-pix2pix" / "p2p_unet256_ngf16"
    if not (root / "latest_net_G.pth").is_file():
        pytest.skip(f"{root} not present")
    return root


@pytest.fixture(scope="session")
def stripes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny aligned A|B dataset (no ../shared needed): B is A's colours inverted and blurred."""
    from PIL import Image

    root = tmp_path_factory.mktemp("stripes")
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("val", 4)):
        (root / split).mkdir()
        for i in range(count):
            a = np.zeros((32, 32, 3), np.uint8)
            for _ in range(4):
                y, x = rng.integers(0, 24, 2)
                a[y:y + 8, x:x + 8] = rng.integers(0, 256, 3)
            b = 255 - a
            Image.fromarray(np.concatenate([a, b], 1)).save(root / split / f"{i}.png")
    return root
