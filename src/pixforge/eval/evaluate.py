"""``pixforge eval``: a model (a run, weights, ONNX, or a pipeline) over a dataset split, scored image by image.

Pixel metrics (L1, PSNR, SSIM) always; LPIPS and FID/KID when their weights are on disk (``eval/weights.py``);
the FCN-score with a judge, for the generated photos and for the real ones (the upper bound). Images are
evaluated at their stored size (facades: 256x256), with no resizing or cropping.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pixforge.atomic import write_text
from pixforge.config import Config
from pixforge.data.datasets import load_pairs, read_pair
from pixforge.data.image_io import convert_channels
from pixforge.eval.fcn_score import FCNTally, Judge
from pixforge.eval.metrics import mean_abs_error, psnr, ssim
from pixforge.eval.weights import MissingWeights, weights_dir

PIXEL_METRICS = ("l1", "psnr", "ssim")
FCN_KEYS = {"pixel_acc": "fcn_pixel_acc", "class_acc": "fcn_class_acc", "iou": "fcn_iou"}
"""Judge scores under their names in ``--json`` files."""
EXAMPLE_SIZE = 256
"""Images kept for the report are shrunk to at most this many pixels on their longer side."""


class EvalModel(Protocol):
    """What evaluation needs of a model: a Translator (through ``TranslatorModel``) or a Pipeline."""

    name: str

    @property
    def input_config(self) -> Config: ...
    @property
    def output_config(self) -> Config: ...
    @property
    def model_hash(self) -> str: ...
    def predict_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]: ...


class TranslatorModel:
    """A Translator as an :class:`EvalModel` (its config says both sides)."""

    def __init__(self, translator: Any, name: str, model_hash: str) -> None:
        self.translator, self.name, self._hash = translator, name, model_hash

    @property
    def input_config(self) -> Config:
        return self.translator.config

    @property
    def output_config(self) -> Config:
        return self.translator.config

    @property
    def model_hash(self) -> str:
        return self._hash

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        return self.translator.predict_batch(list(images))


@dataclass
class Example:
    name: str
    input: np.ndarray
    output: np.ndarray
    target: np.ndarray


@dataclass
class Evaluation:
    model: str
    model_hash: str
    data: str
    split: str
    input_side: str
    target_side: str
    per_image: list[dict[str, Any]] = field(default_factory=list)
    means: dict[str, float] = field(default_factory=dict)
    """l1, psnr, ssim (+ lpips, fid, kid, fcn_pixel_acc, fcn_class_acc, fcn_iou where measured)."""
    upper_bound: dict[str, float] = field(default_factory=dict)
    """The judge's scores on the real photos, under the same keys as ``means``."""
    skipped: list[str] = field(default_factory=list)
    """One line per metric that was not computed, saying why (e.g. the weight file it expected)."""
    examples: list[Example] = field(default_factory=list)
    judge: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_hash": self.model_hash, "data": self.data, "split": self.split,
                "input_side": self.input_side, "target_side": self.target_side, "images": len(self.per_image),
                "judge": self.judge, "means": self.means, "upper_bound": self.upper_bound,
                "skipped": self.skipped, "per_image": self.per_image}

    def flat_means(self) -> dict[str, float]:
        """``--json``: the means under their keys, and the judge's upper bound as ``real_<key>``."""
        return {**self.means, **{f"real_{k}": v for k, v in self.upper_bound.items()}}


def sides(model: EvalModel) -> tuple[str, str]:
    """(input side, target side) of a dataset pair: the first model's input, the last model's output."""
    first, last = model.input_config.data.direction, model.output_config.data.direction
    return ("A" if first == "AtoB" else "B"), ("B" if last == "AtoB" else "A")


def evaluate(model: EvalModel, data_root: str | Path, split: str = "val", judge: Judge | None = None,
             learned_metrics: bool = True, weights: str | Path | None = None, batch_size: int = 8,
             max_items: int | None = None, on_done: Callable[[int], None] | None = None,
             layout: str | None = None) -> Evaluation:
    """Translate every pair's input side, score the output against the target side (and with ``judge``
    against the label side), and summarise. ``layout``: how the pairs are stored (default: as the model's
    training data; a model trained on unpaired data is scored on aligned A|B pairs unless told otherwise)."""
    input_side, target_side = sides(model)
    cfg_in, cfg_out = model.input_config.data, model.output_config.data
    if layout is None:
        layout = "aligned" if cfg_in.layout == "unaligned" else cfg_in.layout
    if layout == "unaligned":
        raise ValueError("--layout unaligned: scoring needs pairs of an input and its target; give paired data "
                         "(aligned A|B files, or A/ and B/ folders)")
    sources = load_pairs(data_root, split, layout)[:max_items]
    result = Evaluation(model=model.name, model_hash=model.model_hash, data=str(data_root), split=split,
                        input_side=input_side, target_side=target_side, judge=str(judge.meta.get("path", ""))
                        if judge else None)
    fcn = FCNTally(len(judge.palette)) if judge else None
    real = FCNTally(len(judge.palette)) if judge else None
    outputs_all: list[np.ndarray] = []
    targets_all: list[np.ndarray] = []
    for start in range(0, len(sources), batch_size):
        chunk = sources[start:start + batch_size]
        pairs = [dict(zip("AB", read_pair(s, 3, 3, cfg_in.max_pixels), strict=True)) for s in chunk]
        inputs = [convert_channels(p[input_side], cfg_in.input_nc) for p in pairs]
        outputs = model.predict_batch(inputs)
        for source, pair, inp, out in zip(chunk, pairs, inputs, outputs, strict=True):
            out = out[:, :, None] if out.ndim == 2 else out
            target = convert_channels(pair[target_side], cfg_out.output_nc)
            if out.shape != target.shape:
                raise ValueError(f"{source.a}: output {out.shape[1]}x{out.shape[0]}x{out.shape[2]} and target "
                                 f"{target.shape[1]}x{target.shape[0]}x{target.shape[2]} differ")
            record: dict[str, Any] = {"image": _name(source, Path(data_root) / split),
                                      "l1": mean_abs_error(out, target), "psnr": psnr(out, target),
                                      "ssim": ssim(out, target)}
            if judge and fcn and real:
                truth = judge.truth(pair[judge.label_side])
                scores = fcn.add(truth, judge.classes(out))
                record.update({FCN_KEYS[k]: v for k, v in scores.items()})
                real.add(truth, judge.classes(pair[judge.photo_side]))
            result.per_image.append(record)
            result.examples.append(Example(record["image"], _shrink(inp), _shrink(out), _shrink(target)))
            outputs_all.append(out)
            targets_all.append(target)
        if on_done:
            on_done(len(chunk))
    if not result.per_image:
        raise ValueError(f"{data_root}/{split}: no pairs to evaluate")
    result.means = {k: _mean([r[k] for r in result.per_image]) for k in PIXEL_METRICS}
    if fcn and real:
        result.means.update({FCN_KEYS[k]: v for k, v in fcn.scores().items()})
        result.upper_bound = {FCN_KEYS[k]: v for k, v in real.scores().items()}
    if learned_metrics:
        _learned(result, outputs_all, targets_all, weights_dir(weights))
    return result


def _learned(result: Evaluation, outputs: list[np.ndarray], targets: list[np.ndarray], folder: Path) -> None:
    """LPIPS per image, FID and KID over the split: each only where its weights are on disk."""
    from pixforge.eval.inception import FIDInception, fid, inception_features, kid
    from pixforge.eval.lpips import LPIPS, lpips_distances

    try:
        net = LPIPS.from_files(folder)
        for record, value in zip(result.per_image, lpips_distances(net, outputs, targets), strict=True):
            record["lpips"] = value
        result.means["lpips"] = _mean([r["lpips"] for r in result.per_image])
    except MissingWeights as err:
        result.skipped.append(str(err))
    try:
        inception = FIDInception.from_file(folder)
    except MissingWeights as err:
        result.skipped.append(str(err))
        return
    fake, real = inception_features(inception, outputs), inception_features(inception, targets)
    result.means["fid"] = fid(fake, real)
    result.means["kid"] = kid(fake, real)[0]


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _name(source: Any, folder: Path) -> str:
    try:
        return str(Path(source.a).relative_to(folder))
    except ValueError:
        return Path(source.a).name


def _shrink(image: np.ndarray) -> np.ndarray:
    """A copy small enough for the report (nearest-neighbour, integer steps: no new colours)."""
    step = max(1, math.ceil(max(image.shape[:2]) / EXAMPLE_SIZE))
    arr = image[::step, ::step]
    arr = (arr // 257).astype(np.uint8) if arr.dtype == np.uint16 else arr
    return np.ascontiguousarray(arr)


# ---------------------------------------------------------------------------------------------
# Files


def save_results(evaluation: Evaluation, out_dir: Path) -> tuple[Path, Path]:
    """``metrics.json`` (everything) and ``per_image.csv`` (one row per image) in ``out_dir``, atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_text(out_dir / "metrics.json", strict_json(evaluation.to_dict()))
    keys = list(dict.fromkeys(k for r in evaluation.per_image for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(evaluation.per_image)
    return json_path, write_text(out_dir / "per_image.csv", buffer.getvalue())


def write_json_means(evaluation: Evaluation, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, strict_json(evaluation.flat_means()))


def strict_json(data: Any) -> str:
    """Strict JSON: a non-finite number (PSNR of identical images, a score with no classes) becomes null."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, float | np.floating):
            return float(value) if math.isfinite(value) else None
        if isinstance(value, np.integer):
            return int(value)
        return value

    return json.dumps(clean(data), indent=2, allow_nan=False) + "\n"
