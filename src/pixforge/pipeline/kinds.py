"""What flows between pipeline stages, as far as it is known before any image is processed.

Validation walks the stages with an :class:`ImageKind`: each stage or step says what it needs and what it
gives, and a mismatch is reported before the first image is read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


class PipelineError(ValueError):
    """A pipeline file or stage is wrong; the one-line message names the file, the stage and the field."""


@dataclass(frozen=True)
class ImageKind:
    channels: int | None = None
    """1 or 3; None where it is not known before running (the pipeline's own input)."""
    palette: str | None = None
    """The image is a label map drawn in this palette (a model's ``data.output_palette``, or snapped)."""
    exact: bool = False
    """Every pixel is exactly a palette colour (after a snap): a generator's label map is only close to it."""
    size: tuple[int, int] | None = None
    """(height, width) where a resize fixed it; None: whatever size the pipeline's input has."""
    known: bool = True
    """False for the pipeline's input, about which nothing is known until images arrive."""

    def with_(self, **changes: object) -> ImageKind:
        return replace(self, **changes)  # type: ignore[arg-type]

    def values(self) -> str:
        """How the pixel values are meant, for messages."""
        if not self.known:
            return "whatever the input holds"
        return f"a label map in palette '{self.palette}'" if self.palette else "image values (not a label map)"

    def size_text(self) -> str:
        return f"{self.size[1]}x{self.size[0]}" if self.size else "the input's size (any)"


INPUT = ImageKind(known=False)
"""The pipeline's input: channels, palette and size are learnt only from the images themselves."""
