"""Folder translation end to end, whole processes: ``pixforge translate`` with no flags vs the reference's way.

A user compares the time from typing the command to having the images, so each mode is a whole process
(imports, model load, reading, translating, writing PNGs), timed from start to exit, median of several passes:

* ``reference``: the reference's own ``test.py --eval`` on the facades val split (aligned A|B files), with the
  same weights converted to its format; run when a checkout is given.
* ``baseline``: the reference's way without its code: decode, fp32 NCHW forward at batch 1, encode and save,
  one image after another.
* ``pixforge``: ``pixforge translate LABELS --model CHECKPOINT --out DIR``, nothing else.
* ``pixforge-onnx``: the same with ``--model model.onnx`` (an ``export onnx`` file).

The model is an ngf-64 unet_256 with the reference's random initialisation: speed does not depend on training.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

from pixforge.bench.child import reference_env, run_timed
from pixforge.bench.fixtures import random_unet256
from pixforge.bench.report import Row

MODES = ("reference", "baseline", "pixforge", "pixforge-onnx")


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


def _reference_checkpoint(checkpoint: Path, folder: Path) -> Path:
    """The same generator as the reference's ``latest_net_G.pth`` (its nested U-Net key names)."""
    import torch

    from pixforge.compat.reference import unet_key_map
    from pixforge.runtime.generator import load_generator

    generator = load_generator(checkpoint).generator
    mapping = unet_key_map(generator)
    state = {mapping[k]: v for k, v in generator.state_dict().items()}
    (folder / "bench").mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "bench" / "latest_net_G.pth")
    return folder


def _baseline(checkpoint: Path, files: list[Path], out: Path) -> None:
    """Runs in its own process: the reference's per-image loop."""
    import numpy as np
    import torch
    from PIL import Image

    from pixforge.runtime.generator import load_generator

    generator = load_generator(checkpoint).generator.eval()
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        x = torch.from_numpy(image.transpose(2, 0, 1)).unsqueeze(0) / 127.5 - 1
        with torch.no_grad():
            y = generator(x)
        array = ((y[0].clamp(-1, 1).numpy().transpose(1, 2, 0) + 1) * 127.5).astype(np.uint8)
        Image.fromarray(array).save(out / f"{path.stem}.png")


def bench_translate(facades: Path, count: int = 100, passes: int = 3, modes: tuple[str, ...] = MODES,
                    reference: Path | None = None, reference_python: Path | None = None) -> list[Row]:
    if "reference" in modes and reference is None:
        modes = tuple(m for m in modes if m != "reference")
    with tempfile.TemporaryDirectory(prefix="pixforge-bench-translate-") as tmp:
        work = Path(tmp)
        files = write_inputs(facades, work / "inputs", count)
        checkpoint = random_unet256(work, discriminator=True)
        commands: dict[str, tuple[list[str], dict[str, Any]]] = {}
        cli = [sys.executable, "-m", "pixforge", "translate", str(work / "inputs")]
        if "reference" in modes:
            if reference_python is None:
                raise ValueError("--reference needs --reference-python (the Python that runs the reference)")
            ckpts = _reference_checkpoint(checkpoint, work / "ref_checkpoints")
            commands["reference"] = (
                [str(reference_python), "test.py", "--dataroot", str(facades), "--name", "bench", "--model",
                 "pix2pix", "--direction", "BtoA", "--checkpoints_dir", str(ckpts), "--phase", "val", "--eval",
                 "--num_test", str(count), "--results_dir"],
                {"cwd": reference, "env": reference_env(work)})
        if "baseline" in modes:
            commands["baseline"] = ([sys.executable, "-m", "pixforge.bench.translate", str(checkpoint),
                                     json.dumps([str(f) for f in files])], {})
        if "pixforge" in modes:
            commands["pixforge"] = ([*cli, "--model", str(checkpoint), "--out"], {})
        if "pixforge-onnx" in modes:
            from pixforge.infer.export import export_onnx

            onnx = export_onnx(checkpoint, work / "model.onnx")
            commands["pixforge-onnx"] = ([*cli, "--model", str(onnx), "--out"], {})
        seconds: dict[str, float] = {}
        for mode, (cmd, kwargs) in commands.items():
            times = []
            for i in range(passes):
                out = work / f"out-{mode}-{i}"
                out.mkdir()
                times.append(run_timed([*cmd, str(out)], work / f"{mode}.log", **kwargs).wall_s)
                # the reference also saves real_A and real_B beside each fake_B
                written = len(list(out.rglob("*_fake_B.png" if mode == "reference" else "*.png")))
                if written != count:  # every mode must do the same work for its time to compare
                    raise RuntimeError(f"{mode} wrote {written} images for {count} inputs; see {work / mode}.log")
            seconds[mode] = median(times)
    base_name = next((m for m in ("reference", "baseline") if m in seconds), None)
    base = seconds[base_name] if base_name else None
    details = {"reference": "its test.py --eval (fp32, batch 1)",
               "baseline": "fp32, NCHW, batch 1, sequential decode/forward/encode",
               "pixforge": "pixforge translate DIR --model CKPT --out OUT, no flags",
               "pixforge-onnx": "the same with --model model.onnx"}
    return [Row(bench="translate", mode=mode, detail=details[mode], value=s, unit="s whole process",
                ratio=base / s if base else None,
                extra={"ms/image incl. start-up": round(1000 * s / count, 1),
                       "× baseline": f"{seconds['baseline'] / s:.2f}×" if "baseline" in seconds else ""})
            for mode, s in seconds.items()]


if __name__ == "__main__":
    checkpoint, files_json, out = sys.argv[1:4]
    _baseline(Path(checkpoint), [Path(f) for f in json.loads(files_json)], Path(out))
