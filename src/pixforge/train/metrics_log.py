"""``metrics.jsonl``: one JSON object per logged step, appended as training goes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np


class MetricsLog:
    def __init__(self, path: Path, enabled: bool = True, resume_step: int | None = None,
                 tensorboard: Path | None = None) -> None:
        """``tensorboard``: a folder that also receives every record's numbers and the images given to
        :meth:`image`, as TensorBoard event files."""
        self.path, self.enabled = path, enabled
        if enabled and resume_step is not None and path.exists():
            self._drop_after(resume_step)
        self.board = TensorBoardLog(tensorboard) if enabled and tensorboard is not None else None

    def _drop_after(self, step: int) -> None:
        """A resumed run repeats the steps after its checkpoint; forget what the killed run logged there."""
        kept = [json.dumps(r) for r in read_metrics(self.path) if r.get("step", 0) <= step]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept))
        os.replace(tmp, self.path)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.board is not None:
            self.board.scalars(record)

    def image(self, tag: str, path: Path, step: int) -> None:
        """Show an image file (a sample grid) in TensorBoard; the JSON log has no images."""
        if self.enabled and self.board is not None:
            self.board.image(tag, path, step)

    def close(self) -> None:
        """Write out what TensorBoard still queues (its writer works in a background thread)."""
        if self.board is not None:
            self.board.writer.close()
            self.board = None


class TensorBoardLog:
    """Scalars and images as TensorBoard event files, through tensorboardX (no TensorFlow, no torchvision)."""

    _NOT_SCALARS = ("step", "epoch")

    def __init__(self, folder: Path) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ValueError("train.tensorboard: needs the tensorboardX package; "
                             "pip install 'pixforge[tensorboard]'") from None
        self.writer = SummaryWriter(str(folder), flush_secs=30)

    def scalars(self, record: dict[str, Any]) -> None:
        step = record.get("step")
        if not isinstance(step, int):
            return
        for key, value in record.items():
            if key not in self._NOT_SCALARS and isinstance(value, int | float) and not isinstance(value, bool):
                group = "val" if key.startswith("val_") else "train"
                self.writer.add_scalar(f"{group}/{key.removeprefix('val_')}", value, step)
        self.writer.flush()

    def image(self, tag: str, path: Path, step: int) -> None:
        from PIL import Image

        with Image.open(path) as im:
            self.writer.add_image(tag, np.asarray(im.convert("RGB")), step, dataformats="HWC")
        self.writer.flush()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl; a last line torn by a killed process is left out."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
