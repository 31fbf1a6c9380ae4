"""The ``pixforge serve`` process: one-line start-up errors, and a graceful stop that drops nothing."""

from __future__ import annotations

import io
import signal
import socket
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from pixforge.cli import main


def serve(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``pixforge serve ARGS`` in this process, through the CLI's own error handling; (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["pixforge", "serve", *args])
    with pytest.raises(SystemExit) as stop:
        main()
    return stop.value.code, capsys.readouterr().err


def test_start_up_errors_are_one_line_naming_the_problem(tiny_models, tmp_path, monkeypatch, capsys):
    cases = [
        (["--model", "labels"], "error: --model 'labels': expected NAME=RUN_DIR, NAME=CHECKPOINT or NAME=FILE.onnx"),
        (["--model", "a b=x"], "error: --model 'a b=x': name 'a b' must be 1-64 letters, digits"),
        (["--model", f"a={tiny_models['photo']}", "--model", f"a={tiny_models['labels']}"],
         "error: --model 'a=" + str(tiny_models["labels"]) + "': the name 'a' is already used by"),
        (["--model", f"a={tmp_path / 'missing'}"], f"error: {tmp_path / 'missing'}"),
        (["--model", f"a={tiny_models['photo']}", "--precision", "fp17"],
         "error: --precision: 'fp17' is not one of auto, fp32, bf16, fp16"),
    ]
    for args, message in cases:
        code, err = serve(monkeypatch, capsys, *args)
        assert code == 1, err
        assert err.startswith(message), err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_taken_port_is_a_one_line_error(tiny_models, monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = serve(monkeypatch, capsys, "--model", f"p={tiny_models['photo']}", "--port", str(port))
    assert code == 1
    assert err.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.slow
def test_sigterm_lets_the_request_in_flight_finish_then_stops(launch, tiny_models):
    # A long batching window keeps the request waiting inside the server while the signal arrives.
    server = launch("--model", f"photo={tiny_models['photo']}", "--max-wait-ms", "1500")
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 80, 3), np.uint8)).save(buffer, format="PNG")
    answer: dict[str, httpx.Response] = {}
    sender = threading.Thread(target=lambda: answer.update(
        r=httpx.post(f"{server.url}/v1/translate/photo", content=buffer.getvalue(), timeout=30)))
    sender.start()
    deadline = time.monotonic() + 10
    while httpx.get(f"{server.url}/healthz").json()["queue_depth"]["photo"] == 0:
        assert time.monotonic() < deadline, "the request never reached the queue"
        time.sleep(0.02)
    server.process.send_signal(signal.SIGTERM)
    sender.join(30)
    response = answer["r"]
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (80, 64)
    assert server.process.wait(30) == -signal.SIGTERM
    assert any("Application shutdown complete" in line for line in server.output)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/healthz")
