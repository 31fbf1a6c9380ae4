"""MicroBatcher on its own: who shares a forward pass, how long a lone request waits, what a full queue does."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch

from pixforge.serve.batching import MicroBatcher, QueueFullError


class RecordingForward:
    """Doubles its input and remembers each batch's shape (and on which thread it ran)."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.threads: set[str] = set()
        self.delay, self.gate = delay, gate

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(batch.shape))
        self.threads.add(threading.current_thread().name)
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        return batch * 2


def image(value: float, h: int = 4, w: int = 4) -> torch.Tensor:
    return torch.full((3, h, w), value)


async def run(batcher: MicroBatcher, images: list[torch.Tensor]) -> list[torch.Tensor]:
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(x) for x in images))
    finally:
        await batcher.close()


def test_equal_sizes_share_forwards_of_at_most_max_batch_and_each_gets_its_own_output():
    forward = RecordingForward()
    images = [image(i) for i in range(10)]
    outputs = asyncio.run(run(MicroBatcher(forward, max_batch=4, max_wait_ms=50), images))
    assert [s[0] for s in forward.shapes] == [4, 4, 2]
    for i, out in enumerate(outputs):
        assert torch.equal(out, image(2 * i))
    assert all(name.startswith("forward-") for name in forward.threads), "forwards run off the event loop"


def test_different_sizes_never_share_a_forward():
    forward = RecordingForward()
    images = [image(0, 4, 4), image(1, 8, 4), image(2, 4, 4), image(3, 8, 4), image(4, 4, 8)]
    outputs = asyncio.run(run(MicroBatcher(forward, max_batch=8, max_wait_ms=50), images))
    assert sorted(forward.shapes) == [(1, 3, 4, 8), (2, 3, 4, 4), (2, 3, 8, 4)]
    assert [tuple(o.shape) for o in outputs] == [tuple(x.shape) for x in images]
    assert [float(o[0, 0, 0]) for o in outputs] == [0, 2, 4, 6, 8]


def test_a_lone_request_waits_max_wait_ms_for_company_and_no_longer():
    async def timed(wait_ms: float) -> float:
        batcher = MicroBatcher(RecordingForward(), max_batch=8, max_wait_ms=wait_ms)
        batcher.start()
        start = time.perf_counter()
        await batcher.submit(image(1))
        elapsed = time.perf_counter() - start
        await batcher.close()
        return elapsed

    assert 0.6 <= asyncio.run(timed(600)) < 2.0
    assert asyncio.run(timed(0)) < 0.4


def test_a_full_batch_goes_at_once_without_waiting_for_the_window():
    async def scenario() -> float:
        batcher = MicroBatcher(RecordingForward(), max_batch=2, max_wait_ms=5000)
        batcher.start()
        start = time.perf_counter()
        await asyncio.gather(batcher.submit(image(1)), batcher.submit(image(2)))
        elapsed = time.perf_counter() - start
        await batcher.close()
        return elapsed

    assert asyncio.run(scenario()) < 1.0


def test_a_full_queue_refuses_instead_of_growing():
    async def scenario() -> tuple[int, list[float]]:
        gate = threading.Event()
        forward = RecordingForward(gate=gate)
        batcher = MicroBatcher(forward, max_batch=1, max_wait_ms=0, max_queue=2)
        batcher.start()
        first = asyncio.create_task(batcher.submit(image(1)))
        while not forward.shapes:  # the first request is inside the (blocked) forward
            await asyncio.sleep(0.01)
        queued = [asyncio.create_task(batcher.submit(image(v))) for v in (2, 3)]
        await asyncio.sleep(0.05)
        depth = batcher.depth
        with pytest.raises(QueueFullError, match="2 images are already waiting"):
            await batcher.submit(image(4))
        gate.set()
        outputs = await asyncio.gather(first, *queued)
        await batcher.close()
        return depth, [float(o[0, 0, 0]) for o in outputs]

    depth, values = asyncio.run(scenario())
    assert depth == 2 and values == [2, 4, 6]


def test_close_finishes_what_is_queued_without_waiting_for_company():
    async def scenario() -> tuple[list[float], float]:
        batcher = MicroBatcher(RecordingForward(), max_batch=8, max_wait_ms=10_000)
        batcher.start()
        pending = [asyncio.create_task(batcher.submit(image(v))) for v in (1, 2)]
        await asyncio.sleep(0.05)
        start = time.perf_counter()
        await batcher.close()
        with pytest.raises(QueueFullError, match="shutting down"):
            await batcher.submit(image(3))
        return [float((await p)[0, 0, 0]) for p in pending], time.perf_counter() - start

    values, closing = asyncio.run(scenario())
    assert values == [2, 4] and closing < 2.0


def test_a_failing_forward_fails_every_request_of_its_batch_and_the_batcher_goes_on():
    calls = []

    def forward(batch: torch.Tensor) -> torch.Tensor:
        calls.append(batch.shape[0])
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return batch

    async def scenario() -> None:
        batcher = MicroBatcher(forward, max_batch=2, max_wait_ms=50)
        batcher.start()
        results = await asyncio.gather(batcher.submit(image(1)), batcher.submit(image(2)), return_exceptions=True)
        assert [str(r) for r in results] == ["out of memory", "out of memory"]
        assert float((await batcher.submit(image(3)))[0, 0, 0]) == 3
        await batcher.close()

    asyncio.run(scenario())


def test_requests_whose_client_left_get_no_forward():
    async def scenario(forward: RecordingForward) -> None:
        batcher = MicroBatcher(forward, max_batch=4, max_wait_ms=100)
        batcher.start()
        gone = asyncio.create_task(batcher.submit(image(1)))
        kept = asyncio.create_task(batcher.submit(image(2)))
        await asyncio.sleep(0.01)
        gone.cancel()
        assert float((await kept)[0, 0, 0]) == 4
        await batcher.close()

    forward = RecordingForward()
    asyncio.run(scenario(forward))
    assert forward.shapes == [(1, 3, 4, 4)]


def test_max_batch_pixels_keeps_large_images_in_small_batches():
    forward = RecordingForward()
    images = [image(i, 32, 32) for i in range(4)]  # 1024 pixels each
    asyncio.run(run(MicroBatcher(forward, max_batch=8, max_wait_ms=50, max_batch_pixels=2048), images))
    assert [s[0] for s in forward.shapes] == [2, 2]


def test_instances_run_forwards_side_by_side():
    async def scenario() -> float:
        forward = RecordingForward(delay=0.3)
        batcher = MicroBatcher(forward, max_batch=1, max_wait_ms=0, instances=3)
        start = time.perf_counter()
        await run(batcher, [image(i) for i in range(3)])
        return time.perf_counter() - start

    assert asyncio.run(scenario()) < 0.8  # three 0.3 s forwards at once, not one after another
