"""The class-conditional preset end to end: ``pixforge train --config mnist_cgan`` with no flags (timed as a whole
process), a classifier of the same digits (``pixforge judge train --kind classifier``), and the scores
``pixforge eval`` reports: per-class accuracy of 50 samples per class and their diversity beside the real
images'. The grid of samples (rows = seeds, columns = classes) is copied to ``grid`` when given.

Goal (class-conditional issue): training ≤ 10 minutes on a 2-core CPU, mean accuracy ≥ 0.9 with every class
≥ 0.8, diversity ≥ half the real images'.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from pixforge.bench.child import run_timed
from pixforge.bench.report import Row


def bench_cgan(data: Path, grid: Path | None = None, overrides: list[str] | None = None,
               judge_epochs: int = 4) -> list[Row]:
    """Train, judge, score; ``overrides`` (``--set`` values) shrink the run for tests."""
    from pixforge.eval.class_score import ClassifierJudge, score_class_conditional
    from pixforge.infer.sampler import Sampler
    from pixforge.train.metrics_log import read_metrics

    with tempfile.TemporaryDirectory(prefix="pixforge-bench-cgan-") as tmp:
        work = Path(tmp)
        sets = [arg for value in overrides or [] for arg in ("--set", value)]
        ran = run_timed([sys.executable, "-m", "pixforge", "train", "--config", "mnist_cgan", "--data", str(data),
                         "--out", str(work / "run"), *sets], work / "train.log")
        steps = max((r["step"] for r in read_metrics(work / "run" / "metrics.jsonl") if "step" in r), default=0)
        judged = run_timed([sys.executable, "-m", "pixforge", "judge", "train", "--kind", "classifier",
                            "--data", str(data), "--out", str(work / "judge"), "--epochs", str(judge_epochs)],
                           work / "judge.log")
        judge = ClassifierJudge.load(work / "judge")
        sampler = Sampler.from_pretrained(work / "run", precision="fp32")
        scores = score_class_conditional(sampler, judge, data)
        if grid is not None:
            grid.parent.mkdir(parents=True, exist_ok=True)
            sampler.save(sampler.grid(seeds=8), work / "grid.png", overwrite=True)
            shutil.copyfile(work / "grid.png", grid)
    worst = min(scores.per_class.items(), key=lambda kv: kv[1]["accuracy"])
    extra: dict[str, Any] = {
        "steps": steps, "train s": round(ran.wall_s, 1), "mean accuracy": scores.accuracy,
        "worst class": f"{worst[0]}: {worst[1]['accuracy']:.2f}", "diversity ratio": scores.diversity_ratio,
        "judge held-out accuracy": round(float(judge.info["val_accuracy"]), 4), "judge s": round(judged.wall_s, 1),
        "per class": " ".join(f"{k}:{v['accuracy']:.2f}" for k, v in scores.per_class.items()),
    }
    return [Row(bench="cgan", mode="pixforge", detail="pixforge train --config mnist_cgan, no flags",
                value=ran.wall_s / 60, unit="min training", extra=extra)]
