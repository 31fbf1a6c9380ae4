"""Shared fixtures: the ``../shared`` folder beside the checkout and small datasets made in code."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (the project's shared data folder sits beside the checkout)")
    return SHARED


@pytest.fixture(scope="session")
def facades(shared: Path) -> Path:
    root = shared / "datasets" / "facades"
    if not (root / "train").is_dir():
        pytest.skip(f"{root} not present")
    return root


@pytest.fixture(scope="session")
def reference_dir(shared: Path) -> Path:
    root = shared / "fixtures" / "reference-pix2pix" / "p2p_unet256_ngf16"
    if not (root / "latest_net_G.pth").is_file():
        pytest.skip(f"{root} not present")
    return root


@pytest.fixture(scope="session")
def pixforge() -> Callable[..., subprocess.CompletedProcess]:
    """Runs the ``pixforge`` command line as a user does: a new process, output captured as text."""
    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pixforge", *args], capture_output=True, text=True, cwd=cwd,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=300)
    return run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, reference_dir: Path) -> Path:
    """The reference fixture imported as a pixforge run directory (one per test module: tests may add files)."""
    from pixforge.compat.reference import import_reference_run

    run = tmp_path_factory.mktemp("imported")
    import_reference_run(reference_dir, run)
    return run


@pytest.fixture(scope="session")
def stripes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny aligned A|B dataset (no ../shared needed): B is A's colours inverted and blurred."""
    from PIL import Image

    root = tmp_path_factory.mktemp("stripes")
    rng = np.random.default_rng(0)
    for split, count in (("train", 12), ("val", 4)):
        (root / split).mkdir()
        for i in range(count):
            a = np.zeros((32, 32, 3), np.uint8)
            for _ in range(4):
                y, x = rng.integers(0, 24, 2)
                a[y:y + 8, x:x + 8] = rng.integers(0, 256, 3)
            b = 255 - a
            Image.fromarray(np.concatenate([a, b], 1)).save(root / split / f"{i}.png")
    return root


# -- the command line in-process, and a loopback file server for downloads ----------------------------------

@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``run_cli(*args)``: the ``pixforge`` command line run in this process -> (exit code, stdout, stderr)."""
    from pixforge import cli

    def run(*args: str) -> tuple[int, str, str]:
        argv = sys.argv
        sys.argv = ["pixforge", *args]
        try:
            cli.main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.argv = argv
        out, err = capsys.readouterr()
        return code, out, err

    return run


class FileServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1. ``cut_after``: the next response stops after that
    many body bytes and the connection closes; ``ignore_range``: every answer is a 200 with the whole file."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_after: int | None = None
        self.ignore_range = False
        self.url = ""


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            wanted = self.headers.get("Range")
            state.requests.append((self.path, wanted))
            data = state.files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
            start = int(match.group(1)) if match and not state.ignore_range else 0
            if start >= len(data) > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.cut_after is not None:
                body, state.cut_after = body[:state.cut_after], None
                self.close_connection = True
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def file_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    """A loopback HTTP server of files the test puts in ``file_server.files`` (downloads are tested offline)."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    from pixforge.data.download import BASE_URL_ENV

    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    state = FileServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture(scope="session")
def unpaired_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny unpaired dataset (no ../shared needed): trainA holds 6 images of coloured squares, trainB 4 images
    of horizontal stripes (one stored greyscale, as some of horse2zebra's are); testA/testB 2 each."""
    from PIL import Image

    root = tmp_path_factory.mktemp("unpaired")
    rng = np.random.default_rng(2)
    for split, (n_a, n_b) in (("train", (6, 4)), ("test", (2, 2))):
        (root / f"{split}A").mkdir()
        (root / f"{split}B").mkdir()
        for i in range(n_a):
            a = np.full((40, 40, 3), 30, np.uint8)
            for _ in range(3):
                y, x = rng.integers(0, 30, 2)
                a[y:y + 10, x:x + 10] = rng.integers(0, 256, 3)
            Image.fromarray(a).save(root / f"{split}A" / f"a{i}.png")
        for i in range(n_b):
            b = np.zeros((40, 40, 3), np.uint8)
            b[(np.arange(40) // 4) % 2 == 1] = rng.integers(100, 256, 3)
            image = Image.fromarray(b)
            (image.convert("L") if split == "train" and i == 0 else image).save(root / f"{split}B" / f"b{i}.png")
    return root


@pytest.fixture(scope="session")
def cyclegan_run(tmp_path_factory: pytest.TempPathFactory, unpaired_dataset: Path) -> Path:
    """A CycleGAN run trained for a few steps on ``unpaired_dataset`` (resnet_6blocks, ngf/ndf 4, 32²)."""
    from pixforge.config import config_from_dict
    from pixforge.train.loop import train

    run = tmp_path_factory.mktemp("cyclegan") / "run"
    cfg = config_from_dict({
        "name": "tiny_cyclegan", "model": {"kind": "cyclegan", "generator": "resnet_6blocks", "ngf": 4, "ndf": 4},
        "data": {"root": str(unpaired_dataset), "load_size": 36, "crop_size": 32},
        "train": {"max_steps": 4, "log_every": 2, "sample_every": 4, "checkpoint_every": 4}})
    train(cfg, run)
    return run


@pytest.fixture(scope="session")
def palette_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny aligned photo | label-map dataset in the facades palette (no ../shared needed).

    B is a blocky class map drawn in the palette's colours; A, the "photo", paints each class in its own
    colour (not the palette's) with noise, so a judge can learn photo -> classes in seconds."""
    from PIL import Image

    from pixforge.data.palette import get_palette

    palette = get_palette("facades")
    root = tmp_path_factory.mktemp("palette_pairs")
    rng = np.random.default_rng(1)
    paint = rng.integers(0, 256, (len(palette), 3))
    for split, count in (("train", 16), ("val", 4)):
        (root / split).mkdir()
        for i in range(count):
            classes = np.full((64, 64), palette.index("facade"), np.uint8)
            for _ in range(6):
                y, x = rng.integers(0, 48, 2)
                h, w = rng.integers(8, 24, 2)
                classes[y:y + h, x:x + w] = rng.integers(0, len(palette))
            photo = np.clip(paint[classes] + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(np.concatenate([photo, palette.render(classes)], 1)).save(root / split / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def generator_run():
    """``generator_run(path, seed=0, model={...}, data={...})``: a run directory holding a randomly initialised
    generator checkpoint (weights only) for that config, made in milliseconds."""
    return _save_generator


def _save_generator(path: Path, seed: int = 0, **sections: dict) -> Path:
    import torch

    from pixforge.config import config_from_dict
    from pixforge.nn.build import build_generator
    from pixforge.runtime.checkpoint import save_checkpoint

    cfg = config_from_dict({"name": path.name, **sections})
    torch.manual_seed(seed)
    generator = build_generator(cfg)
    save_checkpoint(path / "checkpoints" / "step_00000001.safetensors", cfg.to_dict(), {"G": generator.state_dict()})
    return path


# -- headless Chromium (Debian's package, driven by Playwright; never a downloaded browser) ---------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium_options() -> dict:
    """Playwright launch options for Debian's chromium. Missing: a skip here, a failure in CI (which installs it)."""
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} not installed (make test installs Debian's chromium when run as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pytest.importorskip("playwright.sync_api")
    return {"executable_path": str(CHROMIUM), "args": CHROMIUM_FLAGS}


@pytest.fixture
def chromium(chromium_options):
    """A headless Chromium browser (Playwright launches it with a fresh temporary profile). Per test: a live
    sync_playwright keeps an asyncio loop running on the main thread, which would break later asyncio.run calls."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(**chromium_options)
        yield browser
        browser.close()


@pytest.fixture
def open_in_browser(chromium):
    """``open_in_browser(url, screenshot=path)`` -> (page, problems): console errors, uncaught page errors and
    failed requests seen while the page loaded, and a full-page screenshot written to ``screenshot``."""
    pages = []

    def open_(url: str, screenshot: Path | None = None, width: int = 1200):
        page = chromium.new_page(viewport={"width": width, "height": 900})
        pages.append(page)
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
        page.goto(url, wait_until="load")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
        return page, problems

    yield open_
    for page in pages:
        page.close()


@pytest.fixture(scope="session")
def tiny_judge(tmp_path_factory: pytest.TempPathFactory, palette_dataset: Path) -> Path:
    """A judge trained for seconds on ``palette_dataset`` (the folder holding judge.safetensors)."""
    from pixforge.train.judge import JudgeSettings, train_judge

    out = tmp_path_factory.mktemp("tiny_judge")
    train_judge(palette_dataset, out, JudgeSettings(epochs=30, batch_size=4, crop=32, width=8, depth=2, lr=5e-3,
                                                    precision="fp32"))
    return out


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three classes of 28×28 grey shapes (bar, ring, square), 8 images each, one folder per class: data for
    class-conditional models (layout ``classes``)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    for name in ("bar", "ring", "square"):
        (root / name).mkdir()
        for i in range(8):
            cy, cx = rng.integers(10, 18, 2)
            if name == "bar":
                img = (np.abs(xx - cx) < 3) & (np.abs(yy - 14) < 11)
            elif name == "ring":
                r = np.hypot(yy - cy, xx - cx)
                img = (r > 5) & (r < 9)
            else:
                img = (np.abs(xx - cx) < 7) & (np.abs(yy - cy) < 7)
            Image.fromarray((img * 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root
