"""The one way to open a trained model for translation: a run directory, a checkpoint or weights file, or an
``export onnx`` file, and for a model that translates both ways, which way.

    load_translator("runs/horse2zebra", direction="BtoA")   # G_B of a CycleGAN run
    load_translator("edges.onnx")                            # ONNX Runtime

Command lines name a direction after the path: ``runs/horse2zebra:BtoA`` (``split_direction``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pixforge.infer.translator import Translator
from pixforge.runtime.components import DIRECTIONS


def is_onnx(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def load_translator(path: str | Path, direction: str | None = None, **kwargs: Any) -> Translator:
    """``Translator.from_onnx`` for an .onnx file, else ``Translator.from_pretrained``; ``kwargs`` go to it.

    An ONNX file holds one generator: a ``direction`` other than the one it was exported for is refused."""
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"direction '{direction}': expected AtoB or BtoA")
    if is_onnx(path):
        kwargs.pop("threads", None)
        translator = Translator.from_onnx(path, **kwargs)
        if direction is not None and translator.direction != direction:
            raise ValueError(f"{path}: this ONNX file translates {translator.direction} only (export "
                             f"{direction} from the run with `pixforge export onnx --direction {direction}`)")
        return translator
    return Translator.from_pretrained(path, direction=direction, **kwargs)


def split_direction(spec: str) -> tuple[str, str | None]:
    """``PATH`` or ``PATH:AtoB`` / ``PATH:BtoA`` -> (path, direction or None)."""
    path, sep, tail = spec.rpartition(":")
    if sep and tail in DIRECTIONS and path:
        return path, tail
    return spec, None
