"""What a server may accept and how it batches: one frozen object, set from the CLI or in code."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_PIXELS = 2048 * 2048
API_KEY_ENV = "PIXFORGE_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of a ``pixforge serve`` process (all models share them).

    Batching is named as Triton and TorchServe name it: ``max_batch`` is Triton's ``max_batch_size`` and
    TorchServe's ``batch_size``; ``max_wait_ms`` is Triton's ``max_queue_delay_microseconds`` (in ms) and
    TorchServe's ``max_batch_delay``: how long the oldest waiting request may wait for others to join its
    batch. ``instances`` is Triton's ``instance_group.count`` (TorchServe's workers): how many forward
    passes of one model may run at once; on a CPU, where one forward already uses every core, 1 is best.
    """

    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 128
    """Images waiting per model before the server answers 503 (Retry-After) instead of queueing more."""
    instances: int = 1
    max_batch_pixels: int = 8 * 512 * 512
    """Cap on one forward's pixels, so 8 huge images never share a batch (memory); a batch holds at least 1."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body; counted while it streams in, so a huge upload is cut off, not buffered."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest image (width x height), read from the header before any pixel is decoded."""
    api_key: str | None = None
    """When set, every ``/v1`` route wants ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_queue", "instances", "max_batch_pixels", "max_body_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"serve: {name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"serve: max_wait_ms must be 0 or more, got {self.max_wait_ms}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError(f"serve: the API key is empty (--api-key or {API_KEY_ENV})")
