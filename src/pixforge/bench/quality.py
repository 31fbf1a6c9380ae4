"""Output quality at equal steps: pixforge's defaults, the reference-way mode and the reference code itself.

facades labels -> photo for 2,000 steps (5 epochs of 400 pairs at the constant learning rate: the reference's
``--n_epochs 5 --n_epochs_decay 0``), several seeds per mode. Each trained model then translates the 100 val
label maps and is scored against the real photos: val L1 and checkerboard energy (``eval.metrics``).

Every run is a whole process, timed from start to exit. Results are appended to ``WORK/results.jsonl`` one
line per run, so a benchmark that is stopped continues where it left off; the report summarises mean and
spread over seeds per mode. The reference's own ``train.py``/``test.py`` run from a checkout given by the
caller (``../shared/FINDINGS.md`` says how to set one up); pixforge never imports it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import mean, stdev
from typing import Any

import numpy as np

from pixforge.bench.child import reference_env, run_timed
from pixforge.bench.report import Row
from pixforge.bench.train import BASELINE

MODES = ("pixforge", "baseline", "reference", "resize-conv")
"""resize-conv: pixforge's defaults with the opt-in ``model.upsample: resize_conv`` decoder."""


def _sets(overrides: dict[str, Any]) -> list[str]:
    args = []
    for section, fields in overrides.items():
        for key, value in fields.items():
            args += ["--set", f"{section}.{key}={json.dumps(value)}"]
    return args


def write_val_inputs(facades: Path, folder: Path) -> list[Path]:
    """The val label maps (right halves) as lossless PNGs: the exact pixels the reference's test.py feeds."""
    from PIL import Image

    from pixforge.data.image_io import list_images

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for source in list_images(facades / "val"):
        path = folder / f"{source.stem}.png"
        if not path.exists():
            with Image.open(source) as im:
                im.convert("RGB").crop((im.width // 2, 0, im.width, im.height)).save(path)
        paths.append(path)
    return paths


def _pixforge_run(mode: str, seed: int, facades: Path, labels: Path, run: Path, epochs: int) -> dict[str, Any]:
    cli = [sys.executable, "-m", "pixforge"]
    overrides: dict[str, Any] = {"train": {"seed": seed, "n_epochs": epochs, "n_epochs_decay": 0}}
    translate_flags: list[str] = []
    if mode == "resize-conv":
        overrides["model"] = {"upsample": "resize_conv"}
    if mode == "baseline":
        overrides["train"].update(BASELINE["train"])
        overrides["data"] = dict(BASELINE["data"])
        translate_flags = ["--precision", "fp32"]
    train_s = run_timed([*cli, "train", "--config", "facades", "--data", str(facades), "--out", str(run / "run"),
                      *_sets(overrides)], run / "train.log")
    out = run / "val_out"
    translate_s = run_timed([*cli, "translate", str(labels), "--model", str(run / "run"), "--out", str(out),
                          *translate_flags], run / "translate.log")
    return {"train": train_s, "translate": translate_s, "outputs": {p.stem: p for p in out.glob("*.png")}}


def _reference_run(seed: int, facades: Path, run: Path, epochs: int, checkout: Path,
                   python: Path) -> dict[str, Any]:
    """The reference's own scripts, with its defaults. It has no seed option: each run is a fresh draw."""
    del seed
    env = reference_env(run)
    common = ["--dataroot", str(facades), "--name", "ref", "--model", "pix2pix", "--direction", "BtoA",
              "--checkpoints_dir", str(run / "checkpoints")]
    train_s = run_timed([str(python), "train.py", *common, "--n_epochs", str(epochs), "--n_epochs_decay", "0",
                      "--no_html", "--display_freq", "100000"], run / "train.log", cwd=checkout, env=env)
    translate_s = run_timed([str(python), "test.py", *common, "--results_dir", str(run / "results"), "--phase", "val",
                          "--eval", "--num_test", "100"], run / "translate.log", cwd=checkout, env=env)
    images = run / "results" / "ref" / "val_latest" / "images"
    outputs = {p.name.removesuffix("_fake_B.png"): p for p in images.glob("*_fake_B.png")}
    return {"train": train_s, "translate": translate_s, "outputs": outputs}


def score(outputs: dict[str, Path], facades: Path) -> dict[str, float]:
    """Val L1 and checkerboard energy of each output against its real photo (the left half), averaged."""
    from PIL import Image

    from pixforge.eval.metrics import checkerboard_energy, mean_abs_error

    l1, energy = [], []
    for stem, path in sorted(outputs.items()):
        with Image.open(facades / "val" / f"{stem}.jpg") as im:
            photo = np.asarray(im.convert("RGB").crop((0, 0, im.width // 2, im.height)))
        with Image.open(path) as im:
            fake = np.asarray(im.convert("RGB"))
        l1.append(mean_abs_error(fake, photo))
        energy.append(checkerboard_energy(fake))
    if not l1:
        raise RuntimeError("the run wrote no val outputs to score")
    return {"val_l1": mean(l1), "checkerboard": mean(energy), "images": len(l1)}


def run_quality(facades: Path, work: Path, modes: list[str], seeds: list[int], steps: int = 2000,
                reference: Path | None = None, reference_python: Path | None = None) -> list[dict[str, Any]]:
    """Run every (mode, seed) not yet in ``work/results.jsonl``; return all records there."""
    work.mkdir(parents=True, exist_ok=True)
    epochs, rest = divmod(steps, 400)
    if rest or epochs == 0:
        raise ValueError(f"--steps {steps}: must be a multiple of 400 (one facades epoch at batch 1)")
    if "reference" in modes and (reference is None or reference_python is None):
        raise ValueError("mode 'reference' needs --reference CHECKOUT and --reference-python PYTHON")
    labels = work / "val_labels"
    write_val_inputs(facades, labels)
    results = work / "results.jsonl"
    done = {(r["mode"], r["seed"], r["steps"]) for r in read_results(results)}
    for seed in seeds:  # modes interleaved per seed, so a drift in machine speed touches all of them alike
        for mode in modes:
            if (mode, seed, steps) in done:
                continue
            run = work / f"{mode}-seed{seed}-{steps}"
            run.mkdir(parents=True, exist_ok=True)
            if mode == "reference":
                assert reference is not None and reference_python is not None
                result = _reference_run(seed, facades, run, epochs, reference, reference_python)
            else:
                result = _pixforge_run(mode, seed, facades, labels, run, epochs)
            trained, translated = result["train"], result["translate"]
            record = {"mode": mode, "seed": seed, "steps": steps, "train_s": round(trained.wall_s, 1),
                      "train_cpu_s": round(trained.cpu_s, 1), "translate_s": round(translated.wall_s, 1),
                      **score(result["outputs"], facades)}
            with results.open("a") as f:
                f.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
    return read_results(results)


def read_results(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _spread(values: list[float], digits: int) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    return f"{mean(values):.{digits}f} ± {stdev(values):.{digits}f}"


def quality_rows(records: list[dict[str, Any]], steps: int) -> list[Row]:
    """One row per mode: mean ± sample standard deviation over its seeds, and each seed's value."""
    rows = []
    for mode in MODES:
        runs = sorted((r for r in records if r["mode"] == mode and r["steps"] == steps), key=lambda r: r["seed"])
        if not runs:
            continue
        energy = [r["checkerboard"] for r in runs]
        rows.append(Row(
            bench="quality", mode=mode, value=mean(energy), unit="checkerboard ×10⁴",
            detail=f"{steps} steps, seeds {', '.join(str(r['seed']) for r in runs)}",
            extra={"checkerboard (mean ± sd)": _spread(energy, 1),
                   "per seed": ", ".join(f"{e:.1f}" for e in energy),
                   "val L1 (mean ± sd)": _spread([r["val_l1"] for r in runs], 4),
                   "train CPU s (whole process)": _spread([r["train_cpu_s"] for r in runs if "train_cpu_s" in r]
                                                          or [float("nan")], 0),
                   "train wall s": _spread([r["train_s"] for r in runs], 0)},
        ))
    return rows
