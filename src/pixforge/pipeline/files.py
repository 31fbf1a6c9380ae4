"""``pixforge pipeline run``: image files through a pipeline, finals in ``OUT/`` and intermediates in
``OUT/<stage>/`` (with ``keep_intermediates``), every image written through ``provenance.save_generated``
(marked, and passed through the safety filter: a flagged input writes nothing and the rest continue)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from pixforge.data.image_io import read_image
from pixforge.infer.files import NothingTranslated, check_out_dir, expand_inputs, output_paths
from pixforge.pipeline.core import ModelStage, Pipeline
from pixforge.provenance import DEFAULT_SAFETY_FILTER, Provenance, SafetyFilter, UnsafeImageError, save_generated

PairSide = Literal["A", "B"]


@dataclass
class PipelineReport:
    finals: list[Path] = field(default_factory=list)
    intermediates: dict[str, list[Path]] = field(default_factory=dict)
    blocked: list[tuple[Path, str]] = field(default_factory=list)
    """(input, reason) of each input whose outputs the safety filter withheld: nothing of it was written."""


def run_files(pipeline: Pipeline, inputs: Iterable[str | Path], out_dir: str | Path,
              keep_intermediates: bool = False, pair_side: PairSide | None = None, batch_size: int = 8,
              overwrite: bool = False, on_done: Callable[[int], None] | None = None,
              safety: SafetyFilter | None = DEFAULT_SAFETY_FILTER) -> PipelineReport:
    """Run every input image through ``pipeline``; outputs are PNGs named after the inputs.

    ``pair_side``: the inputs are aligned A|B pair files (a dataset split) and the pipeline takes that half.
    Inputs are never overwritten (an output that would land on an input gets a ``_1`` suffix), and existing
    outputs only with ``overwrite``: checked before the first image runs, so a refused run changes nothing.
    ``safety=None`` turns the output filter off (see RESPONSIBLE_USE.md); the marks stay.
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
            try:
                _write_outputs(outputs, keep, stages[-1], out_dir, finals[i], digest, name, report, safety)
            except UnsafeImageError as err:
                report.blocked.append((files[i], err.reason))
        if on_done:
            on_done(len(chunk))
    if not report.finals:
        raise NothingTranslated(f"pipeline: the safety filter withheld all {len(files)} output(s); first: "
                                f"{report.blocked[0][0]}: {report.blocked[0][1]}")
    return report


def _write_outputs(outputs: dict[str, np.ndarray], keep: list[str], last: str, out_dir: Path, final: Path,
                   digest: str, name: str, report: PipelineReport, safety: SafetyFilter | None) -> None:
    """All of one input's images, or none: every one is filtered before any is written."""
    wanted = [(out_dir / stage / final.name, outputs[stage], f"{name}:{stage}") for stage in keep]
    wanted.append((final, outputs[last], name))
    for _, image, _ in wanted:
        if safety is not None:
            safety.check(image, source=str(final))
    for path, image, label in wanted:
        written = save_generated(image, path, Provenance(digest, model_name=label), safety=None)
        if path == final:
            report.finals.append(written)
        else:
            report.intermediates[path.parent.name].append(written)


def _read(path: Path, channels: int, pair_side: PairSide | None) -> np.ndarray:
    image = read_image(path, channels)
    if pair_side is None:
        return image
    half = image.shape[1] // 2
    if image.shape[1] % 2:
        raise ValueError(f"{path}: width {image.shape[1]} is odd; --pair-side needs A|B pair files of even width")
    return image[:, :half] if pair_side == "A" else image[:, half:]
