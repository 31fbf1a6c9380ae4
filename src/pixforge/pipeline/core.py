"""``Pipeline``: translators chained in stages, with steps between them, checked before anything runs.

    pipe = Pipeline.from_yaml("rerender.yaml")
    photo = pipe(photo_in)                        # PIL in -> PIL out, numpy likewise
    stages = pipe.run(photo_in)                   # {"labels": ..., "edited": ..., "photo": ...}

A pipeline file::

    name: rerender                                # optional (default: the file's name)
    stages:
      - {name: labels, model: runs/facades-labels}     # a run directory, .safetensors file or .onnx model
      - name: edited                                   # a stage of steps (see pipeline/steps.py)
        steps: [{snap: facades}, {relabel: {map: {window: balcony}}}]
      - {name: photo, model: runs/facades, input_size: 256}   # input_size: the model only takes this size

Model paths are relative to the pipeline file. Loading checks every stage against the one before it
(channels, whether values are a label map and in which palette, fixed sizes) and stops at the first mismatch
with one line naming the stage, the field and both values.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
import yaml
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pixforge.config import Config
from pixforge.infer.load import load_translator
from pixforge.infer.translator import Translator
from pixforge.pipeline.kinds import INPUT, ImageKind, PipelineError
from pixforge.pipeline.steps import Apply, Step, parse_step

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"


# ---------------------------------------------------------------------------------------------
# The file


class StageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME)
    """Also the folder its intermediate images go to: letters, digits, '_' and '-' (no dots, so never a file's name)."""
    model: str | None = None
    direction: Literal["AtoB", "BtoA"] | None = None
    """Which way a two-way model (CycleGAN) translates in this stage; default AtoB."""
    steps: list[Any] | None = None
    input_size: int | tuple[int, int] | None = None

    @model_validator(mode="after")
    def _model_or_steps(self) -> StageSpec:
        if (self.model is None) == (self.steps is None):
            raise ValueError("give exactly one of model (a trained run, weights file or .onnx) or steps")
        if self.input_size is not None and self.model is None:
            raise ValueError("input_size belongs to a model stage")
        if self.direction is not None and self.model is None:
            raise ValueError("direction belongs to a model stage")
        if self.steps is not None and not self.steps:
            raise ValueError("steps: the list is empty")
        return self


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, pattern=_NAME)
    stages: list[StageSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> PipelineSpec:
        seen: set[str] = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"two stages are named '{stage.name}'; names must be unique")
            seen.add(stage.name)
        return self


def _parse(data: Any, source: str) -> PipelineSpec:
    if not isinstance(data, dict):
        raise PipelineError(f"{source}: expected a mapping with a 'stages' list")
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise PipelineError(f"{source}: field '{where}': {first['msg']}") from None


# ---------------------------------------------------------------------------------------------
# Stages


@dataclass
class ModelStage:
    """A translator as a stage. ``input_size`` (height, width): the model only accepts that size."""

    name: str
    translator: Translator
    input_size: tuple[int, int] | None = None
    source: str = ""
    """Where the model came from (a path), for messages."""
    digest: str = ""
    """The translator's ``model_hash`` (sha256 of the generator's weights) unless given."""

    def __post_init__(self) -> None:
        self.digest = self.digest or self.translator.model_hash

    @property
    def config(self) -> Config:
        return self.translator.config

    def needs(self) -> ImageKind:
        data = self.config.data
        return ImageKind(channels=data.input_nc, palette=data.input_palette, size=self.input_size)

    def gives(self, received: ImageKind) -> ImageKind:
        data = self.config.data
        return ImageKind(channels=data.output_nc, palette=data.output_palette, size=received.size)

    def describe(self) -> str:
        return f"model {self.source}" if self.source else "model"


@dataclass
class StepsStage:
    """Steps as a stage of their own: ``steps`` are (name, Step) pairs or raw specs as in a pipeline file."""

    name: str
    steps: list[Any]
    parsed: list[tuple[str, Step]] = field(init=False)

    def __post_init__(self) -> None:
        parsed = []
        for i, raw in enumerate(self.steps):
            if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[1], Step):
                parsed.append(raw)
                continue
            try:
                parsed.append(parse_step(raw))
            except PipelineError as err:
                raise PipelineError(f"stage '{self.name}' steps.{i}: {err}") from None
        self.parsed = parsed

    def describe(self) -> str:
        return "steps " + ", ".join(name for name, _ in self.parsed)


Stage = ModelStage | StepsStage


@dataclass
class _Bound:
    """A stage after validation: what it runs on a batch, and what it hands on."""

    stage: Stage
    run: Callable[[list[np.ndarray]], list[np.ndarray]]
    gives: ImageKind


# ---------------------------------------------------------------------------------------------
# The pipeline


class Pipeline:
    def __init__(self, stages: Sequence[Stage], name: str = "pipeline", source: str = "pipeline",
                 base_dir: str | Path = ".") -> None:
        """Chain ``stages``; raises :class:`PipelineError` naming the first stage that does not fit."""
        if not stages:
            raise PipelineError(f"{source}: a pipeline needs at least one stage")
        self.name, self.source, self.stages = name, source, list(stages)
        self._bound = self._validate(Path(base_dir))

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path, **translator_kwargs: Any) -> Pipeline:
        """Load a pipeline file; model paths are relative to it. ``translator_kwargs`` go to every model
        (``device``, ``precision``...)."""
        path = Path(path)
        if not path.is_file():
            raise PipelineError(f"{path}: pipeline file not found")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise PipelineError(f"{path}: not valid YAML ({err.__class__.__name__})") from None
        return cls.from_dict(data, base_dir=path.parent, source=str(path), default_name=path.stem,
                             **translator_kwargs)

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | Path = ".", source: str = "pipeline",
                  default_name: str = "pipeline", **translator_kwargs: Any) -> Pipeline:
        spec = _parse(data, source)
        base = Path(base_dir)
        stages: list[Stage] = []
        for stage in spec.stages:
            if stage.model is not None:
                translator = _load_model(stage.model, base, f"{source}: stage '{stage.name}'", translator_kwargs,
                                         stage.direction)
                size = stage.input_size
                stages.append(ModelStage(stage.name, translator, (size, size) if isinstance(size, int) else size,
                                         source=stage.model))
            else:
                try:
                    stages.append(StepsStage(stage.name, stage.steps or []))
                except PipelineError as err:
                    raise PipelineError(f"{source}: {err}") from None
        return cls(stages, name=spec.name or default_name, source=source, base_dir=base)

    # -- validation -------------------------------------------------------------------------------
    def _validate(self, base_dir: Path) -> list[_Bound]:
        bound: list[_Bound] = []
        kind, previous = INPUT, "the pipeline input"
        for stage in self.stages:
            where = f"{self.source}: stage '{stage.name}'"
            if isinstance(stage, ModelStage):
                _check_fits(where, stage.needs(), kind, previous)
                kind = stage.gives(kind)
                bound.append(_Bound(stage, _model_runner(stage, where), kind))
            else:
                applies: list[Apply] = []
                for i, (step_name, step) in enumerate(stage.parsed):
                    try:
                        apply, kind = step.bind(kind, base_dir)
                    except PipelineError as err:
                        raise PipelineError(f"{where} steps.{i}: {err}") from None
                    applies.append(_named(apply, f"{where} step '{step_name}'"))
                bound.append(_Bound(stage, _steps_runner(applies), kind))
            previous = f"stage '{stage.name}'"
        return bound

    # -- running ----------------------------------------------------------------------------------
    def __call__(self, image: ImageLike) -> ImageLike:
        """The last stage's output for one image, of the same kind (PIL or numpy) as the input."""
        return _like(image, self.run_batch([image])[0][self.stages[-1].name])

    def run(self, image: Image.Image | np.ndarray) -> dict[str, np.ndarray]:
        """Every stage's output for one image, in order, keyed by stage name (HxWxC arrays)."""
        return self.run_batch([image])[0]

    def predict_batch(self, images: Sequence[ImageLike]) -> list[ImageLike]:
        """The last stage's outputs, each of the same kind as its input."""
        last = self.stages[-1].name
        return [_like(im, out[last]) for im, out in zip(images, self.run_batch(images), strict=True)]

    def run_batch(self, images: Sequence[Image.Image | np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Every stage's output for each image; a model stage sees the whole list (equal sizes batched)."""
        current = [_as_array(im) for im in images]
        results: list[dict[str, np.ndarray]] = [{} for _ in current]
        for bound in self._bound:
            current = bound.run(current)
            for result, image in zip(results, current, strict=True):
                result[bound.stage.name] = image
        return results

    # -- facts ------------------------------------------------------------------------------------
    @property
    def model_stages(self) -> list[ModelStage]:
        return [s for s in self.stages if isinstance(s, ModelStage)]

    @property
    def input_config(self) -> Config:
        """The first model's config: which side of a pair the pipeline reads, how many channels."""
        return self._models_or_fail()[0].config

    @property
    def output_config(self) -> Config:
        """The last model's config: which side of a pair the pipeline's output is compared with."""
        return self._models_or_fail()[-1].config

    @property
    def model_hash(self) -> str:
        """One digest for the whole chain: every model's digest and every step's arguments, in order."""
        parts = [{"stage": s.name, "model": s.digest} if isinstance(s, ModelStage)
                 else {"stage": s.name, "steps": [[n, step.model_dump(mode="json")] for n, step in s.parsed]}
                 for s in self.stages]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def describe(self) -> str:
        return " -> ".join(f"{s.name} ({s.describe()})" for s in self.stages)

    def _models_or_fail(self) -> list[ModelStage]:
        models = self.model_stages
        if not models:
            raise PipelineError(f"{self.source}: has no model stage")
        return models


# ---------------------------------------------------------------------------------------------
# Helpers


def _check_fits(where: str, needs: ImageKind, gets: ImageKind, previous: str) -> None:
    """A model stage's input against what the stage before hands on, field by field where it is known
    (of the raw input nothing is, until a step fixes something, e.g. a resize its size)."""
    if gets.channels is not None and needs.channels != gets.channels:
        raise PipelineError(f"{where} input channels: expects {needs.channels}, {previous} gives {gets.channels}")
    if needs.palette is not None and gets.known and gets.palette != needs.palette:
        raise PipelineError(f"{where} input values: expects a label map in palette '{needs.palette}', "
                            f"{previous} gives {gets.values()}")
    if needs.size is not None and (gets.known or gets.size is not None) and gets.size != needs.size:
        hint = "; add a resize step before it" if gets.size is None else ""
        raise PipelineError(f"{where} input size: expects {needs.size_text()}, {previous} gives "
                            f"{gets.size_text()}{hint}")


def _model_runner(stage: ModelStage, where: str) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    def run(images: list[np.ndarray]) -> list[np.ndarray]:
        if stage.input_size is not None:
            for image in images:
                if image.shape[:2] != stage.input_size:
                    raise PipelineError(f"{where} input size: expects {stage.needs().size_text()}, an image is "
                                        f"{image.shape[1]}x{image.shape[0]}; add a resize step before it")
        return [out if out.ndim == 3 else out[:, :, None] for out in stage.translator.predict_batch(images)]

    return run


def _steps_runner(applies: list[Apply]) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    def run(images: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for image in images:
            for apply in applies:
                image = apply(image)
            out.append(image)
        return out

    return run


def _named(apply: Apply, where: str) -> Apply:
    """Errors raised while a step runs name the stage and step they happened in."""

    def run(image: np.ndarray) -> np.ndarray:
        try:
            return apply(image)
        except PipelineError as err:
            raise PipelineError(f"{where}: {err}") from None

    return run


def _load_model(given: str, base: Path, where: str, kwargs: dict[str, Any], direction: str | None = None
                ) -> Translator:
    path = Path(given).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.exists():
        raise PipelineError(f"{where} field 'model': {given} (resolved to {path}) not found; model paths are "
                            f"relative to the pipeline file")
    return load_translator(path, direction, **kwargs)


def _as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("L" if image.mode in ("1", "L", "I;16") else "RGB"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a PIL image or numpy array, got {type(image).__name__}")
    return image[:, :, None] if image.ndim == 2 else image


def _like(original: Any, out: np.ndarray) -> Any:
    if isinstance(original, Image.Image):
        return Image.fromarray(out[:, :, 0] if out.shape[2] == 1 else out)
    return out[:, :, 0] if original.ndim == 2 and out.shape[2] == 1 else out
