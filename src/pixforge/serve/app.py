"""The HTTP API and the drawing page, as a FastAPI app over loaded models.

    app = create_app(load_models(["facades=runs/facades"]), ServeSettings(max_batch=8))

Routes: ``POST /v1/translate/{model}``, ``POST /v1/generate/{model}`` (class-conditional models: a label and
a seed in, images out), ``GET /v1/models`` (both behind the API key when one is set),
``GET /healthz``, ``GET /metrics`` (Prometheus), ``GET /docs`` (OpenAPI, served without a CDN) and the page
at ``/`` with its files under ``/static``. Errors are JSON ``{"detail": "..."}``: 4xx for a client's mistake
(README, "Serving"), 422 when the safety filter refuses an output, 503 with Retry-After when a queue is full.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pixforge.data.image_io import to_tensor
from pixforge.infer.sampler import LabelError
from pixforge.infer.translator import Translator
from pixforge.provenance import DEFAULT_SAFETY_FILTER
from pixforge.serve.batching import MicroBatcher, QueueFullError
from pixforge.serve.encode import FORMATS, UnsafeOutputError, choose_format, encode_output
from pixforge.serve.intake import decode_image, image_bytes, read_body
from pixforge.serve.metrics import MetricsMiddleware, ServeMetrics
from pixforge.serve.models import ServedModel
from pixforge.serve.settings import ServeSettings
from pixforge.version import __version__

STATIC = Path(__file__).parent / "static"
Encoder = Callable[[np.ndarray, str, ServedModel], bytes]

# The page loads nothing from elsewhere and runs no inline script.
PAGE_POLICY = ("default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
               "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"example": {"detail": "what was wrong"}}}}
    for status, text in [
        (400, "Empty body, truncated or corrupt image, malformed form, bad parameter"),
        (401, "Missing or wrong API key"),
        (404, "No model of that name"),
        (406, "Accept allows none of the output formats"),
        (413, "Body over max_body_bytes, or image over max_pixels"),
        (415, "Not an image, or a format/mode the model cannot use"),
        (422, "The safety filter refused the output"),
        (503, "The model's queue is full (Retry-After says when to retry)"),
    ]
}


def _forward_to_pixels(translator: Translator) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's forward, answering (B, H, W, C) uint8 pixels: one conversion per batch on the forward's
    thread, instead of one per request beside it (float32 is exact for 8 bits: the error is ~1e-5 of a step)."""
    def forward(batch: torch.Tensor) -> torch.Tensor:
        out = translator.forward(batch)
        # Out of place first: the output may share memory with ONNX Runtime's read-only result.
        pixels = out.clamp(-1, 1).add_(1).mul_(127.5).round_()
        return pixels.to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    return forward


class GenerateRequest(BaseModel):
    """``POST /v1/generate/{model}``'s JSON body."""

    model_config = ConfigDict(extra="forbid")
    label: int | str
    """A class name (``"7"``, ``"banana"``) or index."""
    count: int = Field(1, ge=1)
    seed: int = Field(0, ge=0, le=2**62)


def create_app(models: dict[str, ServedModel], settings: ServeSettings | None = None, *,
               encode: Encoder = encode_output) -> FastAPI:
    """An app serving ``models``; ``encode`` turns an output array into the response bytes (provenance)."""
    settings = settings or ServeSettings()
    metrics = ServeMetrics()
    batchers: dict[str, MicroBatcher] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Batchers live as long as one run of the app (their threads and queue belong to its event loop).
        for name, model in models.items():
            if model.translator is None:  # class-conditional: /v1/generate runs its sampler directly
                continue
            batchers[name] = MicroBatcher(
                _forward_to_pixels(model.translator), max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms,
                max_queue=settings.max_queue, instances=settings.instances,
                max_batch_pixels=settings.max_batch_pixels, name=name, on_batch=metrics.batch_observer(name))
            metrics.watch_queue(name, lambda b=batchers[name]: b.depth)
            batchers[name].start()
        # Load the safety filter's detector now, not on the first request (its session takes ~0.5 s to build).
        await asyncio.to_thread(DEFAULT_SAFETY_FILTER.findings, np.zeros((32, 32, 3), np.uint8))
        yield
        # The server stops taking connections and lets in-flight requests finish before this point.
        for batcher in batchers.values():
            await batcher.close()

    app = FastAPIOffline(title="pixforge", version=__version__, lifespan=lifespan,
                         static_url="/docs-assets", redoc_url=None,
                         description="Paired image-to-image translation (pix2pix) over HTTP.")
    app.add_middleware(MetricsMiddleware, metrics=metrics, models=frozenset(models))
    app.state.settings, app.state.batchers = settings, batchers

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, err: RequestValidationError) -> JSONResponse:
        # FastAPI's default is 422, which this API keeps for the safety filter alone.
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        return JSONResponse({"detail": f"{where or 'request'}: {first.get('msg', 'invalid')}"}, status_code=400)

    @app.exception_handler(Exception)
    async def server_fault(_: Request, err: Exception) -> JSONResponse:
        # Still JSON for the client; the traceback goes to the server's log (Starlette re-raises after this).
        return JSONResponse({"detail": f"internal server error ({type(err).__name__}); see the server log"},
                            status_code=500)

    def served_model(name: str) -> ServedModel:
        if name not in models:
            raise HTTPException(404, f"no model '{name}'; this server has: {', '.join(models)}")
        return models[name]

    def require_key(request: Request) -> None:
        if settings.api_key is None:
            return
        given = request.headers.get("x-api-key")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if given is None and scheme.lower() == "bearer":
            given = token.strip()
        if given is None or not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                                headers={"WWW-Authenticate": "Bearer"})

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses={401: _ERROR_RESPONSES[401]})

    @v1.get("/models", summary="The models this server translates with")
    async def list_models() -> dict[str, list[dict[str, Any]]]:
        return {"models": [m.info(settings.max_batch) for m in models.values()]}

    @v1.post(
        "/translate/{model}",
        summary="Translate one image",
        response_class=Response,
        responses={200: {"content": {f.media_type: {} for f in FORMATS.values()},
                         "description": "The translated image, at the input's size"},
                   **{s: r for s, r in _ERROR_RESPONSES.items() if s != 401}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "image": {"type": "string", "format": "binary"}}}},
        }}},
    )
    async def translate(
        model: str,
        request: Request,
        output_format: Annotated[str | None, Query(alias="format", description="png, jpeg or webp; overrides "
                                                                               "Accept")] = None,
    ) -> Response:
        """The image is the raw body (any Content-Type: the content is sniffed) or the file of a multipart
        form. PNG, JPEG, WebP, BMP and still GIF are read; the answer is PNG unless ``Accept`` or ``format``
        asks for JPEG or WebP."""
        served = served_model(model)
        translator = served.translator
        if translator is None:
            raise HTTPException(400, f"model '{model}' draws images from class labels, it translates none: "
                                     f"POST /v1/generate/{model}")
        fmt = choose_format(request.headers.get("accept"), output_format)
        data = await image_bytes(request, await read_body(request, settings.max_body_bytes))
        array = await run_in_threadpool(decode_image, data, translator.input_nc, settings.max_pixels,
                                        served.palette_name, served.network_size)
        try:
            output = await batchers[model].submit(to_tensor(array))
        except QueueFullError as err:
            raise HTTPException(503, f"model '{model}' is busy: {err}; retry shortly",
                                headers={"Retry-After": "1"}) from None
        try:
            payload = await run_in_threadpool(encode, output.numpy(), fmt, served)
        except UnsafeOutputError as err:
            raise HTTPException(422, f"the output was withheld: {err}") from None
        return Response(payload, media_type=FORMATS[fmt].media_type,
                        headers={"Cache-Control": "no-store", "X-Pixforge-Model": model})

    @v1.post(
        "/generate/{model}",
        summary="Draw images of a class (class-conditional models)",
        response_class=Response,
        responses={200: {"content": {**{f.media_type: {} for f in FORMATS.values()}, "application/json": {}},
                         "description": "One image (count 1), or JSON {images: [data URLs], seeds: [...]}"},
                   **{s: r for s, r in _ERROR_RESPONSES.items() if s in (400, 404, 406, 422)}},
    )
    async def generate(model: str, request: GenerateRequest,
                       output_format: Annotated[str | None, Query(alias="format", description="png, jpeg or "
                                                                  "webp; overrides Accept")] = None,
                       accept: Annotated[str | None, Header()] = None) -> Response:
        """``label`` by class name or index, ``count`` images from seeds ``seed``..``seed + count − 1`` (the same
        seed gives the same image). One image comes back as a file; several, or ``Accept: application/json``,
        as JSON with data URLs. Every image is filtered and marked like the translations."""
        served = served_model(model)
        sampler = served.sampler
        if sampler is None:
            raise HTTPException(400, f"model '{model}' translates images, it takes no class label: "
                                     f"POST /v1/translate/{model}")
        if request.count > settings.max_batch:
            raise HTTPException(400, f"count {request.count}: at most {settings.max_batch} (the server's max_batch)")
        wants_json = request.count > 1 or "application/json" in (accept or "")
        fmt = choose_format(None if wants_json else accept, output_format)
        try:
            index = sampler.label_index(request.label)
        except LabelError as err:
            raise HTTPException(400, str(err).replace(f" of {sampler.source}", f" of model '{model}'")) from None
        images = await run_in_threadpool(sampler.sample, [index] * request.count, request.seed)
        try:
            encoded = [await run_in_threadpool(encode, sampler.pixels(image), fmt, served) for image in images]
        except UnsafeOutputError as err:
            raise HTTPException(422, f"the output was withheld: {err}") from None
        headers = {"Cache-Control": "no-store", "X-Pixforge-Model": model}
        if not wants_json:
            return Response(encoded[0], media_type=FORMATS[fmt].media_type, headers=headers)
        media = FORMATS[fmt].media_type
        body = {"model": model, "label": sampler.class_names[index], "seeds": list(range(request.seed,
                request.seed + request.count)),
                "images": [f"data:{media};base64,{base64.b64encode(b).decode()}" for b in encoded]}
        return JSONResponse(body, headers=headers)

    app.include_router(v1)

    @app.get("/healthz", summary="Liveness: the server runs and its models are loaded")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": list(models),
                "queue_depth": {name: b.depth for name, b in batchers.items()}}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
