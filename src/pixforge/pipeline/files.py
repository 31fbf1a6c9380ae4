"""``pixforge pipeline run``: image files through a pipeline, finals in ``OUT/`` and intermediates in
``OUT/<stage>/`` (with ``keep_intermediates``), every image written through ``write_generated``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from pixforge.data.image_io import read_image
from pixforge.infer.files import check_out_dir, expand_inputs, output_paths
from pixforge.infer.generated import write_generated
from pixforge.pipeline.core import ModelStage, Pipeline

PairSide = Literal["A", "B"]


@dataclass
class PipelineReport:
    finals: list[Path] = field(default_factory=list)
    intermediates: dict[str, list[Path]] = field(default_factory=dict)


def run_files(pipeline: Pipeline, inputs: Iterable[str | Path], out_dir: str | Path,
              keep_intermediates: bool = False, pair_side: PairSide | None = None, batch_size: int = 8,
              overwrite: bool = False, on_done: Callable[[int], None] | None = None) -> PipelineReport:
    """Run every input image through ``pipeline``; outputs are PNGs named after the inputs.

    ``pair_side``: the inputs are aligned A|B pair files (a dataset split) and the pipeline takes that half.
    Inputs are never overwritten (an output that would land on an input gets a ``_1`` suffix), and existing
    outputs only with ``overwrite``: checked before the first image runs, so a refused run changes nothing.
    """
    inputs = list(inputs)
    files = expand_inputs(inputs)
    out_dir = Path(out_dir)
    finals = output_paths(files, out_dir)
    stages = [s.name for s in pipeline.stages]
    keep = stages[:-1] if keep_intermediates else []
    check_out_dir(inputs, out_dir, finals + [out_dir / stage / f.name for stage in keep for f in finals], overwrite)
    first = pipeline.stages[0]
    channels = first.config.data.input_nc if isinstance(first, ModelStage) else 3
    report = PipelineReport(intermediates={name: [] for name in keep})
    digest, name = pipeline.model_hash, pipeline.name
    for start in range(0, len(files), batch_size):
        chunk = range(start, min(start + batch_size, len(files)))
        images = [_read(files[i], channels, pair_side) for i in chunk]
        for i, outputs in zip(chunk, pipeline.run_batch(images), strict=True):
            for stage in keep:
                path = out_dir / stage / finals[i].name
                report.intermediates[stage].append(
                    write_generated(outputs[stage], path, model_hash=digest, model_name=f"{name}:{stage}"))
            report.finals.append(write_generated(outputs[stages[-1]], finals[i], model_hash=digest,
                                                 model_name=name))
        if on_done:
            on_done(len(chunk))
    return report


def _read(path: Path, channels: int, pair_side: PairSide | None) -> np.ndarray:
    image = read_image(path, channels)
    if pair_side is None:
        return image
    half = image.shape[1] // 2
    if image.shape[1] % 2:
        raise ValueError(f"{path}: width {image.shape[1]} is odd; --pair-side needs A|B pair files of even width")
    return image[:, :half] if pair_side == "A" else image[:, half:]
