"""HTTP serving under load: dynamic batching against one forward per request, PyTorch against ONNX Runtime.

Each mode is a real ``pixforge serve`` process on 127.0.0.1 with one unet_256 model; closed-loop clients
(1, 16, 64 of them, each on its own keep-alive connection, sending its next request when the last is answered)
post 256² label maps as PNG. Per mode and client count: throughput, p50/p99 latency and errors over a bounded
number of requests, after a warm-up. The load generator is a few lines of asyncio on raw sockets, so the
client's own CPU use stays small beside the server's (both share the machine).

The baseline is ``torch-per-request``: one forward per request, run as requests arrive (``max_batch 1`` with as
many model instances as clients: what a plain web handler calling the model does). The other unbatched modes
(serialised forwards; two single-threaded instances; ONNX Runtime both ways) are candidates for the best
unbatched setting, and each batched row says how it compares with the best of them. A last run
sends 5,000 requests to the batched server and samples its resident memory, which should stay flat.
"""

from __future__ import annotations

import asyncio
import io
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import quantiles
from typing import Any

from pixforge.bench.fixtures import random_unet256
from pixforge.bench.report import Row

MODES: dict[str, list[str]] = {
    "torch-batched": ["--max-batch", "8", "--max-wait-ms", "5"],
    "torch-per-request": ["--max-batch", "1", "--instances", "64"],
    "torch-serial": ["--max-batch", "1", "--instances", "1"],
    "torch-2x1thread": ["--max-batch", "1", "--instances", "2", "--threads", "1"],
    "onnx-batched": ["--max-batch", "8", "--max-wait-ms", "5"],
    "onnx-serial": ["--max-batch", "1", "--instances", "1"],
    "onnx-2x1thread": ["--max-batch", "1", "--instances", "2", "--threads", "1"],
}
"""Server flags per mode; ``onnx-*`` modes serve the ONNX export of the same weights."""
BASELINE = "torch-per-request"
CLIENTS = (1, 16, 64)
MODEL = "bench"


# -- a server process ------------------------------------------------------------------------------------

@dataclass
class ServerProcess:
    """A ``pixforge serve`` child process and everything it printed."""

    url: str
    process: subprocess.Popen
    output: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def rss_mb(self) -> float:
        """The server's resident memory now (Linux /proc)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no VmRSS for process {self.process.pid}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal and wait; after a graceful stop uvicorn re-raises SIGTERM, so the code is -SIGTERM."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def start_server(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> ServerProcess:
    """``python -m pixforge serve ARGS --port 0`` on 127.0.0.1; returns once it prints its URL and accepts."""
    command = [sys.executable, "-m", "pixforge", "serve", *args, "--host", "127.0.0.1", "--port", "0",
               "--no-access-log"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    server = ServerProcess("", process)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # keeps reading, so a chatty server never blocks on a full pipe
        for line in process.stdout:  # type: ignore[union-attr]
            server.output.append(line)
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        if line.startswith("serving "):
            server.url = line.split(" on ", 1)[1].split()[0]
            return server
    process.kill()
    raise RuntimeError(f"pixforge serve did not start: {' '.join(command)}\n{''.join(server.output)}")


# -- the load ----------------------------------------------------------------------------------------------

@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]
    errors: list[str]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile_ms(self, p: int) -> float:
        if len(self.latencies) < 2:
            return 1000 * (self.latencies[0] if self.latencies else float("nan"))
        return 1000 * quantiles(self.latencies, n=100, method="inclusive")[p - 1]


def http_request(path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def _closed_loop(port: int, payloads: list[bytes], clients: int, total: int,
                       on_done: Callable[[int], None] | None = None) -> LoadResult:
    issued = 0
    latencies: list[float] = []
    errors: list[str] = []

    async def client() -> None:
        nonlocal issued
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while issued < total:
                i = issued
                issued += 1
                start = time.perf_counter()
                writer.write(payloads[i % len(payloads)])
                await writer.drain()
                status, _ = await _read_response(reader)
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    errors.append(f"HTTP {status}")
                if on_done is not None:
                    on_done(len(latencies))
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            errors.append(f"{type(err).__name__}: {err}")
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return LoadResult(len(latencies), time.perf_counter() - start, latencies, errors)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                  if k.strip().lower() == "content-length")
    return status, await reader.readexactly(length)


def run_load(port: int, payloads: list[bytes], clients: int, total: int,
             on_done: Callable[[int], None] | None = None) -> LoadResult:
    """``total`` requests from ``clients`` concurrent keep-alive connections, each waiting for its answer."""
    return asyncio.run(_closed_loop(port, payloads, clients, total, on_done))


# -- the benchmark -----------------------------------------------------------------------------------------

def label_maps(count: int = 8, size: int = 256) -> list[bytes]:
    """Distinct procedural label maps as PNG bytes (what the drawing page sends)."""
    import numpy as np
    from PIL import Image

    from pixforge.data.procedural import make_pair

    out = []
    for seed in range(count):
        label, _ = make_pair(np.random.default_rng(seed), size)
        buffer = io.BytesIO()
        Image.fromarray(label).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def _measure_mode(mode: str, model: Path, payloads: list[bytes], clients: tuple[int, ...],
                  requests: int) -> dict[int, dict[str, Any]]:
    server = start_server("--model", f"{MODEL}={model}", *MODES[mode])
    try:
        results = {}
        for n in clients:
            run_load(server.port, payloads, n, max(8, n))  # warm-up: allocations, kernel choice
            result = run_load(server.port, payloads, n, requests)
            results[n] = {"throughput": result.throughput, "p50_ms": result.percentile_ms(50),
                          "p99_ms": result.percentile_ms(99), "errors": len(result.errors),
                          "first_error": result.errors[0] if result.errors else "", "rss_mb": server.rss_mb()}
        return results
    finally:
        server.stop()


def _measure_rss(model: Path, payloads: list[bytes], total: int, clients: int = 16) -> dict[str, Any]:
    """Resident memory of the batched server over ``total`` requests, sampled every 10%, after a warm-up."""
    server = start_server("--model", f"{MODEL}={model}", *MODES["torch-batched"])
    samples: list[float] = []
    step = max(1, total // 10)

    def sample(done: int) -> None:
        if done % step == 0:
            samples.append(server.rss_mb())

    try:
        run_load(server.port, payloads, clients, max(32, total // 10))  # warm-up before the first sample
        first = server.rss_mb()
        result = run_load(server.port, payloads, clients, total, sample)
        last = server.rss_mb()
    finally:
        server.stop()
    drift = 100 * (max([*samples, last], key=lambda v: abs(v - first)) - first) / first
    return {"requests": result.requests, "errors": len(result.errors), "first_mb": first, "last_mb": last,
            "max_mb": max([*samples, last]), "drift_pct": drift, "throughput": result.throughput}


def bench_serve(requests: int = 256, clients: tuple[int, ...] = CLIENTS, modes: tuple[str, ...] = tuple(MODES),
                rss_requests: int = 5000, model: Path | None = None, size: int = 256) -> list[Row]:
    """Rows per (mode, clients) with ratios to the baseline at the same client count, plus the memory row."""
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"bench serve: unknown modes {', '.join(unknown)}; choose from {', '.join(MODES)}")
    payloads = [http_request(f"/v1/translate/{MODEL}", png) for png in label_maps(size=size)]
    with tempfile.TemporaryDirectory(prefix="pixforge-bench-serve-") as tmp:
        checkpoint = model or random_unet256(Path(tmp))
        onnx_path = None
        if any(m.startswith("onnx") for m in modes):
            from pixforge.infer.export import export_onnx

            onnx_path = export_onnx(checkpoint, Path(tmp) / "bench.onnx")
        measured = {m: _measure_mode(m, onnx_path if m.startswith("onnx") else checkpoint, payloads, clients,
                                     requests) for m in modes}
        memory = _measure_rss(checkpoint, payloads, rss_requests) if rss_requests else None
    rows = []
    for n in clients:
        base = measured.get(BASELINE, {}).get(n, {}).get("throughput")
        unbatched = [measured[m][n]["throughput"] for m in measured if "batched" not in m]
        best_unbatched = max(unbatched) if unbatched else None
        for mode, results in measured.items():
            r = results[n]
            extra = {"clients": n, "p50 ms": round(r["p50_ms"], 1), "p99 ms": round(r["p99_ms"], 1),
                     "errors": r["errors"], "server RSS MB": round(r["rss_mb"])}
            if "batched" in mode and best_unbatched:
                extra["× best unbatched"] = f"{r['throughput'] / best_unbatched:.2f}×"
            if r["first_error"]:
                extra["first error"] = r["first_error"]
            rows.append(Row(bench="serve", mode=mode, detail=" ".join(MODES[mode]), value=r["throughput"],
                            unit="requests/s", ratio=r["throughput"] / base if base else None, extra=extra))
    if memory is not None:
        rows.append(Row(bench="serve-memory", mode="torch-batched", detail=f"{memory['requests']} requests, 16 clients",
                        value=memory["drift_pct"], unit="% RSS drift",
                        extra={"errors": memory["errors"], "RSS after warm-up MB": round(memory["first_mb"]),
                               "RSS at end MB": round(memory["last_mb"]), "max RSS MB": round(memory["max_mb"])}))
    return rows
