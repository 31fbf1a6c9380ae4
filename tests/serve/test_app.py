"""Paths a real client cannot provoke on demand, in process: the safety filter's 422 and a full queue's 503."""

from __future__ import annotations

import io
import threading
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from pixforge.provenance import DEFAULT_SAFETY_FILTER, Finding
from pixforge.serve import ServeSettings, create_app, load_model
from pixforge.serve.encode import choose_format, encode_output
from pixforge.serve.intake import sniff_format

with warnings.catch_warnings():  # Starlette now prefers httpx2 for its test client; httpx still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def photo(tiny_models):
    return load_model("photo", tiny_models["photo"], device="cpu")


def png(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_output_the_safety_filter_flags_is_answered_422_and_never_sent(photo, monkeypatch):
    seen = []

    def detector(image):  # an injected detector result: no explicit image anywhere
        seen.append(image.shape)
        return [Finding("FEMALE_BREAST_EXPOSED", 0.91, (0, 0, 8, 8))]

    with TestClient(create_app({"photo": photo})) as client:
        monkeypatch.setattr(DEFAULT_SAFETY_FILTER, "detector", detector)
        response = client.post("/v1/translate/photo?format=webp", content=png())
    assert response.status_code == 422 and response.headers["content-type"] == "application/json"
    detail = response.json()["detail"]
    assert detail == "the output was withheld: the safety filter flagged explicit content (female_breast_exposed, " \
                     "score 0.91)"
    assert seen == [(64, 64, 3)]


def test_every_returned_image_goes_through_the_one_encoder(photo):
    calls = []

    def encoder(image, fmt, model):
        calls.append(fmt)
        return encode_output(image, fmt, model)

    with TestClient(create_app({"photo": photo}, encode=encoder)) as client:
        for fmt in ("png", "jpeg", "webp"):
            assert client.post(f"/v1/translate/photo?format={fmt}", content=png()).status_code == 200
    assert calls == ["png", "jpeg", "webp"]


def test_a_failing_model_is_a_500_in_json_and_counted(photo, monkeypatch):
    def broken(batch):
        raise RuntimeError("kernel exploded")

    monkeypatch.setattr(photo.translator, "forward", broken)
    with TestClient(create_app({"photo": photo}), raise_server_exceptions=False) as client:
        response = client.post("/v1/translate/photo", content=png())
        metrics = client.get("/metrics").text
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error (RuntimeError); see the server log"}
    assert 'pixforge_requests_total{model="photo",route="/v1/translate/{model}",status="500"} 1.0' in metrics


def test_a_full_queue_answers_503_with_retry_after(photo, monkeypatch):
    gate, entered = threading.Event(), threading.Event()
    forward = photo.translator.forward

    def blocked_forward(batch):
        entered.set()
        gate.wait(20)
        return forward(batch)

    monkeypatch.setattr(photo.translator, "forward", blocked_forward)
    app = create_app({"photo": photo}, ServeSettings(max_batch=1, max_wait_ms=0, max_queue=1))
    statuses: list[int] = []
    with TestClient(app) as client:
        def send(seed: int) -> None:
            statuses.append(client.post("/v1/translate/photo", content=png(seed)).status_code)

        running = threading.Thread(target=send, args=(0,))
        running.start()
        assert entered.wait(20)  # request 1 is inside the forward
        waiting = threading.Thread(target=send, args=(1,))
        waiting.start()
        deadline = time.monotonic() + 20
        while app.state.batchers["photo"].depth < 1 and time.monotonic() < deadline:
            time.sleep(0.01)  # request 2 fills the queue of one
        refused = client.post("/v1/translate/photo", content=png(2))
        gate.set()
        running.join(20)
        waiting.join(20)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "model 'photo' is busy: 1 images are already waiting (max_queue 1)" in refused.json()["detail"]
    assert sorted(statuses) == [200, 200], "the queued requests are still answered"


@pytest.mark.parametrize(("accept", "query", "chosen"), [
    (None, None, "png"),
    ("*/*", None, "png"),
    ("image/*", None, "png"),
    ("image/webp", None, "webp"),
    ("image/jpg", None, "jpeg"),
    ("image/png;q=0.4, image/jpeg;q=0.9", None, "jpeg"),
    ("image/jpeg, */*;q=0.1", None, "jpeg"),
    ("*/*, image/webp", None, "webp"),  # a named type beats a wildcard of the same weight
    ("image/webp;q=0, image/png", None, "png"),
    ("application/json", "JPG", "jpeg"),
])
def test_output_format_negotiation(accept, query, chosen):
    assert choose_format(accept, query) == chosen


@pytest.mark.parametrize(("data", "fmt"), [
    (b"\x89PNG\r\n\x1a\nrest", "PNG"), (b"\xff\xd8\xff\xe0", "JPEG"), (b"GIF89a", "GIF"), (b"GIF87a", "GIF"),
    (b"BM\x00\x00", "BMP"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"), (b"II*\x00", None), (b"<svg", None),
    (b"", None),
])
def test_formats_are_sniffed_from_the_content(data, fmt):
    assert sniff_format(data) == fmt


def test_the_page_files_ship_in_the_wheel():
    import glob
    import tomllib
    from pathlib import Path

    import pixforge

    package = Path(pixforge.__file__).parent
    patterns = tomllib.loads((package.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["pixforge"]
    shipped = {f for pattern in patterns for f in glob.glob(pattern, root_dir=package)}
    static = {str(f.relative_to(package)) for f in (package / "serve" / "static").rglob("*") if f.is_file()}
    assert {"serve/static/index.html", "serve/static/app.js"} <= static
    assert static <= shipped, f"not in [tool.setuptools.package-data]: {sorted(static - shipped)}"


def test_multipart_mistakes_are_400_naming_the_problem(photo):
    image = png()
    boundary = "xyz"

    def form(*parts: tuple[str, str | None, bytes]) -> bytes:
        out = b""
        for name, filename, data in parts:
            disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
            out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
        return out + f"--{boundary}--\r\n".encode()

    typed = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    cases = [
        ({"Content-Type": "multipart/form-data"}, form(("image", "a.png", image)), "malformed multipart form"),
        (typed, form(("note", None, b"hello")), "the multipart form holds no file"),
        (typed, form(("image", "a.png", b"")), "the multipart file 'a.png' is empty"),
        (typed, form(("a", "a.png", image), ("b", "b.png", image)), "malformed multipart form"),
    ]
    with TestClient(create_app({"photo": photo})) as client:
        for headers, body, message in cases:
            response = client.post("/v1/translate/photo", content=body, headers=headers)
            assert response.status_code == 400, (message, response.text)
            assert message in response.json()["detail"]
        ok = client.post("/v1/translate/photo", content=form(("note", None, b"x"), ("upload", "a.png", image)),
                         headers=typed)
        assert ok.status_code == 200
