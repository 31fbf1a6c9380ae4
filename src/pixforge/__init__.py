"""pixforge: paired image-to-image translation with conditional GANs.

    from pixforge import Translator, load_config, train

    cfg = load_config("facades", {"data": {"root": "datasets/facades"}})
    train(cfg, "runs/facades")
    photo = Translator.from_pretrained("runs/facades").predict(label_map)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pixforge.version import __version__

# Imported on first use, so `import pixforge` (and the CLI's start-up) does not pay for torch until needed.
_EXPORTS = {
    "Translator": "pixforge.infer.translator",
    "load_config": "pixforge.config",
    "Config": "pixforge.config",
}

__all__ = ["Config", "Translator", "__version__", "load_config", "train"]

if TYPE_CHECKING:
    from pixforge.config import Config, load_config
    from pixforge.infer.translator import Translator
    from pixforge.train.loop import train  # at run time: the callable pixforge.train package


def __getattr__(name: str) -> Any:
    if name == "train":  # the training package, callable as the training function (see its docstring)
        return importlib.import_module("pixforge.train")
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pixforge' has no attribute {name!r}")
