"""Inference: ``Translator`` rebuilds a generator from its checkpoint and translates images of any size."""

from pixforge.infer.translator import Translator

__all__ = ["Translator"]
