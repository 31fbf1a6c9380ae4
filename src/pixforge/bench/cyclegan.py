"""CycleGAN training speed and memory: ``pixforge train --config horse2zebra`` beside the reference's
``train.py --model cycle_gan``, whole processes, horse2zebra at the defaults (resnet_9blocks, ngf 64, 256²,
batch 1).

Each mode runs twice, for n1 and n2 iterations; s/iteration = (T(n2) − T(n1)) / (n2 − n1), so start-up
(imports, scanning 2,400 files, building the networks, pixforge's final checkpoint) cancels out. CPU
s/iteration is the same difference of user + system time (the process and the loader workers it reaped): the
figure to trust when other work shares the machine. Every run is checked to have trained exactly N iterations
(the reference's ``loss_log.txt``, pixforge's ``metrics.jsonl``).

Memory, two ways, each the larger of the two runs:

* ``peak RSS MB``: the ``ru_maxrss`` that ``wait4`` reports for the process. Linux folds the descendants it
  reaped into it as a maximum, so this is the largest resident set of any *single* process of the tree (here
  always the training process), not the sum: the reference's 4 loader workers are not added.
* ``peak tree MB``: the whole tree, polled every 0.5 s from ``/proc/PID/smaps_rollup`` (a spike shorter than
  that can be missed): the training process's resident set plus each descendant's private pages (USS). Pages a
  loader worker shares with the training process (forked copy-on-write, the same libraries) count once, and a
  worker's own pages (its copies, the images it decodes) are added. Not PSS: that would also share out pages
  that processes outside the tree map (pixforge's torch libraries with this harness and anything else run
  from the same venv), in pixforge's favour.

Modes:

* ``reference``: its own ``train.py`` with its defaults (fp32, 4 loader processes) and ``--print_freq 1`` (a
  loss line per iteration, to count them). ``--max_dataset_size N`` keeps the first N images of each domain and
  an unaligned epoch is max(|A|, |B|) iterations, so ``--n_epochs 1 --n_epochs_decay 0`` is N iterations
  (``data/unaligned_dataset.py``, ``data/__init__.py`` at 2a7afba). It saves no checkpoint (its
  ``--save_epoch_freq`` is 5).
* ``pixforge``: ``pixforge train --config horse2zebra --data DIR --set train.max_steps=N``, nothing else.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixforge.bench.child import ProcessRun, reference_env, run_timed
from pixforge.bench.report import Row

MODES = ("reference", "pixforge")
_REFERENCE_ITERS = re.compile(r"\(epoch: \d+, iters: (\d+),")


def parse_steps(text: str) -> tuple[int, int]:
    """``"4,12"`` -> (4, 12): two iteration counts, the second larger."""
    try:
        n1, n2 = (int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--steps '{text}': expected two iteration counts, e.g. 4,12") from None
    if not 0 < n1 < n2:
        raise ValueError(f"--steps '{text}': expected 0 < first < second, e.g. 4,12")
    return n1, n2


def cpu_model() -> str:
    """The processor's name as /proc/cpuinfo gives it (``model name``), for report titles."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def _parents() -> dict[int, list[int]]:
    """Every process's children, from /proc/PID/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ")"
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _descendants(root: int) -> tuple[list[int], list[int]]:
    """(``root``'s children, their descendants)."""
    children = _parents()
    first = children.get(root, [])
    later, todo = [], [c for pid in first for c in children.get(pid, [])]
    while todo:
        pid = todo.pop()
        later.append(pid)
        todo.extend(children.get(pid, []))
    return first, later


def _memory_kb(pid: int) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` as {field: kB}; empty if the process is gone meanwhile."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if rest.strip().endswith("kB"):
                    fields[name] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return fields


def tree_memory_mb(root: int) -> float:
    """Resident memory of the processes ``root`` started: each child's RSS plus its descendants' private
    pages (they were forked from it, so what they share they share with it)."""
    children, later = _descendants(root)
    rss = sum(_memory_kb(pid).get("Rss", 0) for pid in children)
    private = sum(m.get("Private_Clean", 0) + m.get("Private_Dirty", 0) for m in map(_memory_kb, later))
    return (rss + private) / 1024


class TreeMemory:
    """While open: the peak of :func:`tree_memory_mb` of this process over polls every ``interval`` s (what a
    benchmark started as a child, with all it forked)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval, self.peak_mb = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, tree_memory_mb(me))

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True)
class Measured:
    process: ProcessRun
    tree_mb: float


def _measured(cmd: list[str], log: Path, **kwargs: Any) -> Measured:
    with TreeMemory() as tree:
        process = run_timed(cmd, log, **kwargs)
    return Measured(process, tree.peak_mb)


def _sets(overrides: dict[str, Any]) -> list[str]:
    return [arg for section, fields in overrides.items() for key, value in fields.items()
            for arg in ("--set", f"{section}.{key}={json.dumps(value)}")]


def run_pixforge(data: Path, steps: int, work: Path, overrides: dict[str, Any], preset: str = "horse2zebra"
                 ) -> tuple[Measured, str]:
    """``pixforge train --config PRESET --data DATA --set train.max_steps=N`` (plus ``overrides``), measured;
    returns it and the precision and layout its ``auto`` settings resolved to."""
    from pixforge.config import deep_merge, load_config
    from pixforge.train.metrics_log import read_metrics

    run = work / f"pixforge_{preset}_{steps}"
    sets = _sets(deep_merge({"train": {"max_steps": steps}}, overrides))
    log = work / f"pixforge_{preset}_{steps}.log"
    ran = _measured([sys.executable, "-m", "pixforge", "train", "--config", preset, "--data", str(data),
                     "--out", str(run), *sets], log)
    done = max((r["step"] for r in read_metrics(run / "metrics.jsonl") if "step" in r), default=0)
    if done != steps:
        raise RuntimeError(f"pixforge train ran {done} steps, not {steps}; see {log}")
    written = load_config(run / "config.yaml").train
    return ran, f"precision {written.precision}, channels_last {written.channels_last}"


def run_reference(data: Path, steps: int, work: Path, checkout: Path, python: Path, extra: list[str],
                  model: tuple[str, ...] = ("--model", "cycle_gan"), tag: str = "reference") -> Measured:
    """The reference's (or the CUT authors') ``train.py`` for N iterations, measured; both write the same
    ``loss_log.txt`` lines, one per iteration with ``--print_freq 1``."""
    name = f"{tag}{steps}"
    cmd = [str(python), "train.py", "--dataroot", str(data), "--name", name, *model,
           "--checkpoints_dir", str(work / "reference"), "--max_dataset_size", str(steps), "--n_epochs", "1",
           "--n_epochs_decay", "0", "--no_html", "--display_freq", "100000", "--print_freq", "1", *extra]
    ran = _measured(cmd, work / f"{tag}_{steps}.log", cwd=checkout, env=reference_env(work))
    losses = work / "reference" / name / "loss_log.txt"
    done = max((int(i) for i in _REFERENCE_ITERS.findall(losses.read_text())), default=0)
    if done != steps:
        raise ValueError(f"{data}: the reference trained {done} iterations, not {steps}: its epoch is "
                         f"max(min(N, |trainA|), min(N, |trainB|)) iterations, so one domain needs {steps} images")
    return ran


def reference_python(checkout: Path, python: Path | None, what: str = "a pytorch-CycleGAN-and-pix2pix checkout "
                     "(benchmarks/setup_reference.sh makes one)") -> Path:
    if not (checkout / "train.py").is_file():
        raise ValueError(f"{checkout}: no train.py; expected {what}")
    if python is None:
        python = checkout / "venv" / "bin" / "python"  # where setup_reference.sh puts it
        if not python.exists():
            raise ValueError("--reference needs --reference-python (the Python that runs the reference)")
    return python


reference_python_of = reference_python


def bench_cyclegan(data: Path, steps: tuple[int, int] = (4, 12), reference: Path | None = None,
                   reference_python: Path | None = None, overrides: dict[str, Any] | None = None,
                   reference_args: list[str] | None = None) -> list[Row]:
    """Reference (if given), then pixforge with no flags, each at both iteration counts.

    ``reference_python`` defaults to the checkout's ``venv/bin/python``. ``overrides`` (pixforge config
    sections) and ``reference_args`` (its options) shrink the models for tests."""
    n1, n2 = steps
    if not 0 < n1 < n2:
        raise ValueError(f"steps {steps}: expected two iteration counts, 0 < first < second")
    if reference is not None:
        reference_python = reference_python_of(reference, reference_python)
    runs: dict[str, tuple[Measured, Measured]] = {}
    with tempfile.TemporaryDirectory(prefix="pixforge-bench-cyclegan-") as tmp:
        work = Path(tmp)
        if reference is not None and reference_python is not None:
            runs["reference"] = (run_reference(data, n1, work, reference, reference_python, reference_args or []),
                                 run_reference(data, n2, work, reference, reference_python, reference_args or []))
        first, settings = run_pixforge(data, n1, work, overrides or {})
        second, _ = run_pixforge(data, n2, work, overrides or {})
        runs["pixforge"] = (first, second)
    details = {"pixforge": f"pixforge train --config horse2zebra, no flags (resolved: {settings})",
               "reference": "train.py --model cycle_gan, its defaults (fp32, 4 loader processes)"}
    return [iteration_row("cyclegan", mode, details[mode], runs[mode], steps,
                          runs.get("reference")) for mode in runs]


def per_iteration(pair: tuple[Measured, Measured], steps: tuple[int, int]) -> float:
    (a, b), (n1, n2) = pair, steps
    return (b.process.wall_s - a.process.wall_s) / (n2 - n1)


def iteration_row(bench: str, mode: str, detail: str, pair: tuple[Measured, Measured], steps: tuple[int, int],
                  baseline: tuple[Measured, Measured] | None = None, **extra: Any) -> Row:
    """One mode's row: s/iteration from the two runs, CPU s/iteration, peak memories, both wall times; the
    ratio is ``baseline``'s s/iteration over this one's."""
    (a, b), (n1, n2) = pair, steps
    value = per_iteration(pair, steps)
    base = per_iteration(baseline, steps) if baseline is not None else None
    return Row(bench=bench, mode=mode, detail=detail, value=value, unit="s/iteration",
               ratio=base / value if base is not None and base > 0 and value > 0 else None,
               extra={**extra, "CPU s/iteration": round((b.process.cpu_s - a.process.cpu_s) / (n2 - n1), 3),
                      "peak RSS MB": round(max(a.process.peak_rss_mb, b.process.peak_rss_mb)),
                      "peak tree MB": round(max(a.tree_mb, b.tree_mb)),
                      f"wall s ({n1} / {n2} it)": f"{a.process.wall_s:.1f} / {b.process.wall_s:.1f}"})
