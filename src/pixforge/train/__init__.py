"""Training: the loop, the recipes (pix2pix, ...), schedule, sampler, samples, distributed helpers.

The package is also callable as the training function, so the package's face reads as the docs promise::

    from pixforge import train
    train(cfg, "runs/facades")          # = pixforge.train.loop.train(cfg, "runs/facades")

(``pixforge.train`` cannot simply be a function: importing any module of this package rebinds that name.)
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any


class _TrainPackage(types.ModuleType):
    def __call__(self, cfg: Any, run_dir: str | Path, resume: bool = False) -> Any:
        from pixforge.train.loop import train

        return train(cfg, run_dir, resume)


sys.modules[__name__].__class__ = _TrainPackage
