"""The HTTP API against real ``pixforge serve`` processes on 127.0.0.1 (not an in-process test client)."""

from __future__ import annotations

import base64
import io
import signal
import struct
import threading
import zlib

import httpx
import numpy as np
import png
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from pixforge.infer.translator import Translator
from pixforge.provenance import verify_file, watermark

KEY = "s3cret-test-key"


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def label_map(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    """Blocks of facades palette colours: what the drawing page sends."""
    from pixforge.data.palette import get_palette

    colours = get_palette("facades").colours
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, len(colours), (height // 8 + 1, width // 8 + 1))
    return colours[np.kron(classes, np.ones((8, 8), np.int64))[:height, :width]]


# -- bad input: each answered with the status and message the README documents ----------------------------

def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces width x height pixels, with almost no data behind it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def png16() -> bytes:
    buffer = io.BytesIO()
    rows = np.random.default_rng(0).integers(0, 65536, (32, 32 * 3)).astype(np.uint16)
    png.Writer(32, 32, greyscale=False, bitdepth=16).write(buffer, rows)
    return buffer.getvalue()


def gray_png() -> bytes:
    return png_bytes(noise(64, 64)[..., 0])


def animated_gif() -> bytes:
    frames = [Image.fromarray(noise(32, 32, seed)).convert("P") for seed in range(2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def cmyk_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("CMYK", (32, 32), (10, 200, 30, 0)).save(buffer, format="JPEG")
    return buffer.getvalue()


BAD_INPUTS = [
    ("empty body", lambda: b"", 400, "empty request body"),
    ("text", lambda: b"hello, this is not an image\n", 415,
     "request body is not an image in an accepted format (PNG, JPEG, WebP, BMP or GIF); it looks like text"),
    ("truncated PNG", lambda: png_bytes(noise(64, 64))[:3000], 400, "request body: truncated or corrupt image file"),
    ("30000x30000 PNG header", lambda: png_header_only(30000, 30000), 413,
     "request body: 900000000 pixels exceeds max_pixels 1000000 (possible decompression bomb)"),
    ("16-bit PNG", png16, 415, "request body: 16-bit PNG; the server translates 8-bit images"),
    ("grayscale for a label-map model", gray_png, 415,
     "request body: a grayscale image, but this model translates colour label maps drawn in the 'facades' palette"),
    ("animated GIF", animated_gif, 415,
     "request body: holds 2 pages or frames; pixforge reads single images (save the one you want as its own file)"),
    ("CMYK JPEG", cmyk_jpeg, 415, "request body: CMYK JPEG needs a colour profile to become RGB"),
    ("a thin strip that padding would blow up", lambda: png_bytes(noise(1, 20000)), 413,
     "request body: 20000x1 runs as 20032x64 = 1282048 pixels in this model (its trained scale, padded to its "
     "size multiple), over max_pixels 1000000"),
    ("body over the limit", lambda: png_header_only(64, 64) + bytes(400_000), 413,
     "request body of 400"),  # its declared length is refused before a byte of it is read
]


@pytest.mark.parametrize(("body", "status", "message"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused_with_its_documented_status_and_message(client, body, status, message):
    response = client.post("/v1/translate/labels", content=body())
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert message in response.json()["detail"]


def test_a_body_streamed_past_the_limit_is_cut_off_while_it_arrives(client):
    sent = []

    def chunks():  # no Content-Length: the server can only count as the bytes come
        for _ in range(40):
            sent.append(1)
            yield bytes(16_384)

    response = client.post("/v1/translate/labels", content=chunks())
    assert response.status_code == 413
    assert response.json()["detail"] == "request body exceeds the limit of 300000 bytes"


def test_the_content_decides_the_format_not_the_declared_type(client):
    body = png_bytes(label_map())
    response = client.post("/v1/translate/labels", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200
    response = client.post("/v1/translate/labels", content=b"GIF89a but not really",
                           headers={"Content-Type": "image/gif"})
    assert response.status_code == 400
    assert response.json()["detail"] == "request body: starts like GIF but is not a readable GIF (truncated or corrupt)"


def test_client_mistakes_in_the_url_and_headers_are_4xx_json(client):
    image = png_bytes(label_map())
    cases = [
        (client.post("/v1/translate/nope", content=image), 404, "no model 'nope'; this server has: labels, photo"),
        (client.post("/v1/translate/labels?format=tiff", content=image), 400, "format 'tiff' is not one of png"),
        (client.post("/v1/translate/labels", content=image, headers={"Accept": "application/json"}), 406,
         "allows none of image/png"),
        (client.get("/v1/translate/labels"), 405, "Method Not Allowed"),
        (client.get("/v1/nothing-here"), 404, "Not Found"),
    ]
    for response, status, message in cases:
        assert response.status_code == status, response.text
        assert message in response.json()["detail"]


# -- translation --------------------------------------------------------------------------------------------

def test_models_lists_name_task_channels_trained_size_and_palette(client):
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    assert list(models) == ["labels", "photo", "labels-onnx", "digits"]
    labels = models["labels"]
    assert (labels["task"], labels["backend"], labels["input_channels"], labels["output_channels"],
            labels["trained_size"]) == ("labels-to-image", "pytorch", 3, 3, 64)
    assert labels["palette"]["name"] == "facades" and len(labels["palette"]["colours"]) == 12
    assert labels["palette"]["classes"][:3] == ["background", "facade", "window"]
    assert models["photo"]["task"] == "image-to-image" and models["photo"]["palette"] is None
    assert models["labels-onnx"]["backend"] == "onnxruntime"


def test_a_class_conditional_model_says_its_task_and_classes_and_generates_by_label_and_seed(client, tmp_path):
    digits = {m["name"]: m for m in client.get("/v1/models").json()["models"]}["digits"]
    assert (digits["task"], digits["class_names"], digits["z_dim"]) == ("class-to-image", ["zero", "one", "two"], 8)
    one = client.post("/v1/generate/digits", json={"label": "one", "seed": 3})
    assert one.status_code == 200 and one.headers["content-type"] == "image/png"
    image = decode(one.content)
    assert image.shape[:2] == (280, 280)  # 28 px, enlarged x10 for the invisible mark
    written = tmp_path / "one.png"
    written.write_bytes(one.content)
    assert verify_file(written).marked
    again = client.post("/v1/generate/digits", json={"label": 1, "seed": 3})
    assert np.array_equal(decode(again.content), image), "a label by index, the same seed: the same image"
    several = client.post("/v1/generate/digits", json={"label": "two", "count": 3, "seed": 3})
    body = several.json()
    assert several.status_code == 200 and body["seeds"] == [3, 4, 5] and len(body["images"]) == 3
    first = base64.b64decode(body["images"][0].split(",", 1)[1])
    assert body["images"][0].startswith("data:image/png;base64,") and decode(first).shape[:2] == (280, 280)
    bad = client.post("/v1/generate/digits", json={"label": "banana"})
    assert bad.status_code == 400 and "label 'banana'" in bad.json()["detail"]
    assert "zero, one, two" in bad.json()["detail"]
    assert client.post("/v1/generate/digits", json={"label": 0, "count": 99}).status_code == 400
    assert client.post("/v1/translate/digits", content=png_bytes(label_map(28, 28))).status_code == 400
    assert client.post("/v1/generate/photo", json={"label": 0}).status_code == 400
    assert client.post("/v1/generate/nope", json={"label": 0}).status_code == 404


def test_translate_answers_a_png_at_the_input_size_for_raw_and_multipart_bodies(client):
    image = label_map(48, 100)
    raw = client.post("/v1/translate/labels", content=png_bytes(image))
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/png"
    assert decode(raw.content).shape == (48, 100, 3)
    form = client.post("/v1/translate/labels", files={"image": ("drawing.png", png_bytes(image), "image/png")})
    assert form.status_code == 200
    assert np.array_equal(decode(form.content), decode(raw.content))


def test_jpeg_and_webp_are_chosen_by_accept_or_the_format_parameter(client):
    body = png_bytes(label_map())
    for kwargs, media, magic in [
        ({"headers": {"Accept": "image/jpeg"}}, "image/jpeg", b"\xff\xd8\xff"),
        ({"headers": {"Accept": "image/webp,image/png;q=0.5"}}, "image/webp", b"RIFF"),
        ({"params": {"format": "jpeg"}, "headers": {"Accept": "image/png"}}, "image/jpeg", b"\xff\xd8\xff"),
        ({"headers": {"Accept": "text/html,*/*;q=0.8"}}, "image/png", b"\x89PNG"),
    ]:
        response = client.post("/v1/translate/labels", content=body, **kwargs)
        assert response.headers["content-type"] == media and response.content.startswith(magic)
        assert decode(response.content).shape == (64, 64, 3)


def test_image_models_take_gray_jpeg_and_webp_inputs(client):
    gray = Image.fromarray(noise(64, 80)[..., 0])
    for fmt in ("PNG", "JPEG", "WEBP", "BMP"):
        buffer = io.BytesIO()
        gray.save(buffer, format=fmt)
        response = client.post("/v1/translate/photo", content=buffer.getvalue())
        assert response.status_code == 200, (fmt, response.text)
        assert decode(response.content).shape == (64, 80, 3)


def test_the_server_answers_what_the_translator_computes(client, tiny_models):
    image = label_map(64, 128, seed=3)
    served = decode(client.post("/v1/translate/labels", content=png_bytes(image)).content)
    translator = Translator.from_pretrained(tiny_models["labels"], device="cpu", precision="fp32")
    local = watermark.embed(translator.predict(image), translator.model_hash)  # what every output carries
    assert np.abs(served.astype(int) - local.astype(int)).max() <= 1  # rounding at the uint8 boundary
    assert served.std() > 5, "the tiny model's output should depend on its input"


def test_onnx_backend_answers_the_same_image_as_pytorch(client):
    for seed in range(3):
        body = png_bytes(label_map(64, 64 * (seed + 1), seed=seed))
        torch_out = decode(client.post("/v1/translate/labels", content=body).content).astype(int)
        onnx_out = decode(client.post("/v1/translate/labels-onnx", content=body).content).astype(int)
        # The export matches PyTorch to 1e-4 (export's PARITY_TOLERANCE) in [-1, 1]: at most one uint8 step.
        assert np.abs(torch_out - onnx_out).max() <= 1
        assert (torch_out != onnx_out).mean() < 0.01


def test_health_and_metrics_count_requests_by_status_and_observe_batches(client):
    assert client.get("/healthz").json()["status"] == "ok"
    client.post("/v1/translate/photo", content=png_bytes(noise(64, 64)))
    client.post("/v1/translate/photo", content=b"not an image")
    text = client.get("/metrics").text
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    route = "/v1/translate/{model}"
    assert value("pixforge_requests_total", route=route, model="photo", status="200") >= 1
    assert value("pixforge_requests_total", route=route, model="photo", status="415") >= 1
    assert value("pixforge_request_duration_seconds_count", route=route, model="photo") >= 2
    assert value("pixforge_batch_size_count", model="photo") >= 1
    assert value("pixforge_batch_size_sum", model="photo") >= 1
    assert ("pixforge_queue_depth", (("model", "photo"),)) in samples
    # A made-up model name is not a label value: clients cannot grow the metrics without bound.
    client.post("/v1/translate/invented-name", content=b"x")
    assert "invented-name" not in client.get("/metrics").text


def test_docs_and_the_page_are_served_without_anything_from_elsewhere(client):
    docs = client.get("/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert "/v1/translate/{model}" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("app.js", "board.js", "backend.js", "examples.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200
        assert "http" not in client.get(f"/static/{asset}").text.replace("http.", "")


# -- API key and batching: a second server, with the key given through the environment -------------------

@pytest.fixture(scope="module")
def keyed(launch, tiny_models):
    srv = launch("--model", f"photo={tiny_models['photo']}", "--max-wait-ms", "400", "--max-batch", "4",
                 env={"PIXFORGE_API_KEY": KEY})
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        yield c
    assert srv.stop() == -signal.SIGTERM, "".join(srv.output)


def test_api_key_guards_every_v1_route_and_nothing_else(keyed):
    body = png_bytes(noise(64, 64))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"}, {"Authorization": KEY}):
        for response in (keyed.get("/v1/models", headers=headers),
                         keyed.post("/v1/translate/photo", content=body, headers=headers),
                         keyed.post("/v1/translate/unknown", content=body, headers=headers)):
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "missing or wrong API key" in response.json()["detail"]
    assert keyed.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert keyed.post("/v1/translate/photo", content=body, headers={"X-API-Key": KEY}).status_code == 200
    assert keyed.get("/healthz").status_code == 200 and keyed.get("/metrics").status_code == 200
    assert keyed.get("/").status_code == 200  # the page asks for the key itself


def test_concurrent_requests_share_forward_passes_and_get_their_own_outputs(keyed):
    headers = {"X-API-Key": KEY}
    images = [noise(64, 64, seed) for seed in range(4)] + [noise(64, 128, seed) for seed in range(4, 6)]
    alone = [decode(keyed.post("/v1/translate/photo", content=png_bytes(im), headers=headers).content)
             for im in images]
    before = _batch_counts(keyed)
    results: list[np.ndarray | None] = [None] * len(images)

    def send(i: int) -> None:
        with httpx.Client(base_url=str(keyed.base_url), timeout=30) as c:
            results[i] = decode(c.post("/v1/translate/photo", content=png_bytes(images[i]), headers=headers).content)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    forwards, batched_images = (a - b for a, b in zip(_batch_counts(keyed), before, strict=True))
    assert batched_images == len(images)
    assert forwards <= 4, "6 requests of 2 sizes within the 400 ms window should need few forwards"
    for got, expected in zip(results, alone, strict=True):
        assert got.shape == expected.shape
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 3  # bf16: batch size may change rounding


def _batch_counts(c: httpx.Client) -> tuple[float, float]:
    families = {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}
    samples = {s.name: s.value for s in families["pixforge_batch_size"].samples if s.labels.get("model") == "photo"}
    return samples["pixforge_batch_size_count"], samples["pixforge_batch_size_sum"]
