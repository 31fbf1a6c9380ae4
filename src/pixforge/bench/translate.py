"""Folder translation end to end (read, translate, write PNG): the reference's way against pixforge's.

The baseline does what the reference's ``test.py`` does per image: decode, fp32 NCHW forward at batch 1,
encode and save, one after another. pixforge batches equal sizes, runs bf16 + channels_last (where the
hardware has bf16) or ONNX Runtime, and decodes/encodes on threads beside the model. Each mode runs in
its own process on the same files with the same weights; the figure is the median of several passes.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from pixforge.bench.child import peak_rss_mb, run_child
from pixforge.bench.report import Row

MODES = ("baseline", "pixforge-torch-b1", "pixforge-torch", "pixforge-onnx")
"""``-b1``: one image per forward (latency-bound use); the others batch 8 equal-size images."""


def write_inputs(facades: Path, folder: Path, count: int = 100) -> list[Path]:
    """The label-map halves of facades val as JPEG files: a user's folder of inputs."""
    from PIL import Image

    from pixforge.data.image_io import list_images

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for source in list_images(facades / "val")[:count]:
        with Image.open(source) as im:
            label = im.crop((im.width // 2, 0, im.width, im.height))
            path = folder / f"{source.stem}.jpg"
            label.save(path, quality=95)
            paths.append(path)
    return paths


def _checkpoint(folder: Path) -> Path:
    """unet_256 (ngf 64) with the reference's random init: speed does not depend on training."""
    import torch

    from pixforge.config import Config
    from pixforge.nn.build import build_generator
    from pixforge.runtime.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = Config()
    return save_checkpoint(folder / "bench.safetensors", cfg.to_dict(), {"G": build_generator(cfg).state_dict()})


def _baseline_pass(generator: Any, files: list[Path], out: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image

    for path in files:  # the reference: one image at a time, all on the main thread
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        x = torch.from_numpy(image.transpose(2, 0, 1)).unsqueeze(0) / 127.5 - 1
        with torch.no_grad():
            y = generator(x)
        array = ((y[0].clamp(-1, 1).numpy().transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
        Image.fromarray(array).save(out / f"{path.stem}.png")


def _child(mode: str, checkpoint: Path, files: list[Path], passes: int, report_path: Path) -> None:
    import torch

    from pixforge.infer.files import translate_files
    from pixforge.infer.translator import Translator
    from pixforge.runtime.device import cpu_has_native_bf16
    from pixforge.runtime.memory import keep_freed_memory

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if mode == "baseline":
            generator = Translator.from_pretrained(checkpoint, device="cpu").generator.eval()
            run = lambda fs: _baseline_pass(generator, fs, out)  # noqa: E731
            settings = "fp32, NCHW, batch 1, sequential decode/forward/encode"
        else:
            keep_freed_memory()
            batch = 1 if mode.endswith("-b1") else 8
            if mode == "pixforge-onnx":
                from pixforge.infer.export import export_onnx

                onnx_path = export_onnx(checkpoint, out / "model.onnx")
                translator = Translator.from_onnx(onnx_path)
                settings = f"ONNX Runtime fp32, batch {batch}, threaded decode/encode"
            else:
                bf16 = torch.cuda.is_available() or cpu_has_native_bf16()
                translator = Translator.from_pretrained(checkpoint, precision="bf16" if bf16 else "fp32",
                                                        channels_last=True)
                settings = f"{'bf16' if bf16 else 'fp32'}, channels_last, batch {batch}, threaded decode/encode"
            run = lambda fs: translate_files(translator, fs, out, batch_size=batch)  # noqa: E731
        run(files[:8])  # warm-up: first-call allocations and kernel selection
        times = []
        for _ in range(passes):
            start = time.perf_counter()
            run(files)
            times.append(time.perf_counter() - start)
    report = {"images_s": len(files) / median(times), "settings": settings,
              "peak_rss_mb": peak_rss_mb()}
    report_path.write_text(json.dumps(report))


def bench_translate(facades: Path, count: int = 100, passes: int = 3, modes: tuple[str, ...] = MODES) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="pixforge-bench-translate-") as tmp:
        files = write_inputs(facades, Path(tmp) / "inputs", count)
        checkpoint = _checkpoint(Path(tmp))
        reports: dict[str, dict[str, Any]] = {}
        for mode in modes:
            args = [mode, str(checkpoint), json.dumps([str(f) for f in files]), str(passes)]
            reports[mode] = run_child("pixforge.bench.translate", args, Path(tmp) / f"{mode}.json")
    base = reports.get("baseline", {}).get("images_s")
    return [Row(bench="translate", mode=mode, detail=r["settings"], value=r["images_s"], unit="images/s",
                ratio=r["images_s"] / base if base else None,
                extra={"ms/image": round(1000 / r["images_s"], 1), "peak RSS MB": round(r["peak_rss_mb"])})
            for mode, r in reports.items()]


if __name__ == "__main__":
    mode, checkpoint, files_json, passes, report_path = sys.argv[1:6]
    _child(mode, Path(checkpoint), [Path(f) for f in json.loads(files_json)], int(passes), Path(report_path))
