"""Staged pipelines: translators chained one after another, with steps (resize, palette snapping, relabelling,
grayscale, your own Python) between them, checked stage against stage before any image is processed."""

from pixforge.pipeline.core import ModelStage, Pipeline, StepsStage
from pixforge.pipeline.kinds import ImageKind, PipelineError
from pixforge.pipeline.steps import list_steps, register_step

__all__ = ["ImageKind", "ModelStage", "Pipeline", "PipelineError", "StepsStage", "list_steps", "register_step"]
