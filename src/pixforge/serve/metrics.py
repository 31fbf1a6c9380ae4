"""Prometheus metrics of one app (its own registry, so two apps in one process never share counters)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("pixforge_requests", "HTTP requests answered, by route, model and status code",
                                ["route", "model", "status"], registry=self.registry)
        self.latency = Histogram("pixforge_request_duration_seconds",
                                 "Time from the request's arrival to the end of its response, by route and model",
                                 ["route", "model"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("pixforge_batch_size", "Images per forward pass, by model", ["model"],
                                    buckets=_BATCH_BUCKETS, registry=self.registry)
        self.forward_seconds = Histogram("pixforge_forward_seconds", "Time of one forward pass, by model",
                                         ["model"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("pixforge_queue_depth", "Images waiting for a forward pass, by model", ["model"],
                                 registry=self.registry)

    def watch_queue(self, model: str, depth: Callable[[], float]) -> None:
        self.queue_depth.labels(model).set_function(depth)  # read when scraped: never stale

    def batch_observer(self, model: str) -> Callable[[int, float], None]:
        size, seconds = self.batch_size.labels(model), self.forward_seconds.labels(model)

        def observe(images: int, elapsed: float) -> None:
            size.observe(images)
            seconds.observe(elapsed)

        return observe

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count every HTTP request by its route template (``/v1/translate/{model}``, never the raw path) and
    time it. ``models`` bounds the model label to served names, so no client can invent label values."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics, models: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.models = models

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # if the app raises before answering, the server's error handler answers 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            model = scope.get("path_params", {}).get("model", "")
            model = model if model in self.models else ""
            self.metrics.requests.labels(route, model, str(status)).inc()
            self.metrics.latency.labels(route, model).observe(time.perf_counter() - start)
