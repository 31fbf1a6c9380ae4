"""Serving: an HTTP API with dynamic batching, Prometheus metrics and the drawing page (``pixforge serve``).

    from pixforge.serve import ServeSettings, create_app, load_models, run_server

    app = create_app(load_models(["facades=runs/facades"]), ServeSettings(max_batch=8, max_wait_ms=5))
    run_server(app, "127.0.0.1", 8000)

Needs the ``serve`` extra: ``pip install 'pixforge[serve]'`` (and ``[onnx]`` for ONNX Runtime models).
"""

from pixforge.serve.app import create_app
from pixforge.serve.models import ServedModel, load_model, load_models
from pixforge.serve.server import run_server
from pixforge.serve.settings import ServeSettings

__all__ = ["ServeSettings", "ServedModel", "create_app", "load_model", "load_models", "run_server"]
