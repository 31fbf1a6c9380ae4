"""Images for the provenance tests, made in code (procedural renderings) or read from ../shared."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pytest

from pixforge.data.procedural import make_pair


def _procedural(seed: int, size: int = 256) -> np.ndarray:
    """A shaded rendering of little buildings (the demo's data): an ordinary, textured RGB image."""
    return make_pair(np.random.default_rng(seed), size)[1]


@pytest.fixture(scope="session")
def procedural() -> Callable[..., np.ndarray]:
    return _procedural


@pytest.fixture(scope="session")
def model_hash() -> str:
    return hashlib.sha256(b"pixforge provenance tests").hexdigest()


@pytest.fixture(scope="session")
def rendering() -> np.ndarray:
    return _procedural(0)


@pytest.fixture(scope="session")
def facades_photos(facades) -> list[np.ndarray]:
    """The photo halves of the first 12 facades val files: real, unmarked photographs."""
    from PIL import Image

    from pixforge.data.image_io import list_images

    photos = []
    for path in list_images(facades / "val")[:12]:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
            photos.append(np.asarray(rgb.crop((0, 0, rgb.width // 2, rgb.height))))
    return photos
