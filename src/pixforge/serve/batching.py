"""Dynamic micro-batching: concurrent requests for one model share a forward pass.

Requests wait in a bounded queue, grouped by image size (only equal sizes can be stacked). When a model
instance is free, the group whose oldest request arrived first is taken: at once if it holds ``max_batch``
images, otherwise after its oldest request has waited ``max_wait_ms`` for company. The forward runs on a
worker thread, never on the event loop, and each request gets its own slice of the output. Under load the
queue fills while a forward runs, so the next batch is full without waiting at all.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import torch


class QueueFullError(RuntimeError):
    """The model's queue holds ``max_queue`` images already; the caller should retry later (503)."""


@dataclass
class _Waiting:
    image: torch.Tensor
    future: asyncio.Future[torch.Tensor]
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Group (C, H, W) tensors into (B, C, H, W) forwards of ``forward``; ``submit`` returns one output.

    ``on_batch(size, seconds)`` is told about every forward (metrics). ``close`` finishes everything queued.
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], *, max_batch: int = 8,
                 max_wait_ms: float = 5.0, max_queue: int = 128, instances: int = 1,
                 max_batch_pixels: int | None = None, name: str = "model",
                 on_batch: Callable[[int, float], None] | None = None) -> None:
        self.forward = forward
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.max_batch_pixels = max_batch_pixels
        self.on_batch = on_batch
        self._groups: dict[tuple[int, ...], deque[_Waiting]] = {}
        self._depth = 0
        self._wakeup = asyncio.Event()
        self._instances = asyncio.Semaphore(instances)
        self._running: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(instances, thread_name_prefix=f"forward-{name}")
        self._closing = False
        self._worker: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Images waiting for a forward (not counting those in one)."""
        return self._depth

    def start(self) -> None:
        """Start taking batches (needs a running event loop)."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._take_batches())

    async def submit(self, image: torch.Tensor) -> torch.Tensor:
        """Queue one (C, H, W) image and wait for its output; raises QueueFullError when the queue is full."""
        if self._closing:
            raise QueueFullError("the server is shutting down")
        if self._depth >= self.max_queue:
            raise QueueFullError(f"{self._depth} images are already waiting (max_queue {self.max_queue})")
        waiting = _Waiting(image, asyncio.get_running_loop().create_future())
        self._groups.setdefault(tuple(image.shape), deque()).append(waiting)
        self._depth += 1
        self._wakeup.set()
        return await waiting.future

    async def close(self) -> None:
        """Stop accepting, run what is queued without waiting for company, then stop the threads."""
        self._closing = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        self._executor.shutdown(wait=True)

    # -- the worker ---------------------------------------------------------------------------------
    async def _take_batches(self) -> None:
        while True:
            await self._instances.acquire()
            batch = await self._next_batch()
            if batch is None:
                self._instances.release()
                return
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _limit(self, shape: tuple[int, ...]) -> int:
        if self.max_batch_pixels is None:
            return self.max_batch
        return max(1, min(self.max_batch, self.max_batch_pixels // (shape[-1] * shape[-2])))

    async def _next_batch(self) -> list[_Waiting] | None:
        while True:
            while not self._groups:
                if self._closing:
                    return None
                self._wakeup.clear()
                await self._wakeup.wait()
            shape, group = min(self._groups.items(), key=lambda item: item[1][0].arrived)
            limit = self._limit(shape)
            deadline = group[0].arrived + self.max_wait
            while len(group) < limit and not self._closing and (left := deadline - time.monotonic()) > 0:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), left)
                except TimeoutError:
                    break
            taken = [group.popleft() for _ in range(min(limit, len(group)))]
            if not group:
                del self._groups[shape]
            self._depth -= len(taken)
            # A request whose client went away has a cancelled future: no forward for it.
            batch = [w for w in taken if not w.future.done()]
            if batch:
                return batch

    async def _run(self, batch: list[_Waiting]) -> None:
        start = time.perf_counter()
        try:
            images = [w.image for w in batch]
            outputs = await asyncio.get_running_loop().run_in_executor(self._executor, self._forward, images)
        except Exception as err:  # the forward failed: every request in the batch learns why
            for w in batch:
                if not w.future.done():
                    w.future.set_exception(err)
        else:
            if self.on_batch is not None:
                self.on_batch(len(batch), time.perf_counter() - start)
            for w, out in zip(batch, outputs, strict=True):
                if not w.future.done():
                    w.future.set_result(out)
        finally:
            self._instances.release()

    def _forward(self, images: list[torch.Tensor]) -> torch.Tensor:
        return self.forward(torch.stack(images))  # stacking copies: done here, off the event loop
