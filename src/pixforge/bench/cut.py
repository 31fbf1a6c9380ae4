"""CUT and FastCUT training speed and memory: pixforge's presets beside the authors' ``train.py --model cut``
(taesungp/contrastive-unpaired-translation, b3ac297) and beside pixforge's CycleGAN, whole processes,
horse2zebra at the defaults (anti-aliased resnet_9blocks, ngf 64, 256², batch 1).

Timing and memory as ``bench/cyclegan.py``: each mode twice, for n1 and n2 iterations, s/iteration their
difference over n2 − n1 (start-up, and the authors' extra first-iteration pass that builds their heads,
cancel out); every run is checked to have trained exactly N iterations.

Modes:

* ``authors-cut``, ``authors-fastcut``: their ``train.py --model cut [--CUT_mode FastCUT] --gpu_ids -1`` with
  their defaults otherwise (fp32, 4 loader processes), ``--max_dataset_size N --n_epochs 1 --n_epochs_decay 0``,
  ``--display_id 0`` (no visdom server: their default draws a random display id and connects to one).
* ``pixforge-cut``, ``pixforge-fastcut``: ``pixforge train --config horse2zebra_cut|horse2zebra_fastcut --data DIR
  --set train.max_steps=N``, nothing else.
* ``pixforge-cyclegan``: ``pixforge train --config horse2zebra`` the same way (FastCUT's goal is to be faster).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from pixforge.bench.cyclegan import Measured, iteration_row, reference_python, run_pixforge, run_reference
from pixforge.bench.report import Row

MODES = ("authors-cut", "authors-fastcut", "pixforge-cut", "pixforge-fastcut", "pixforge-cyclegan")
_PRESETS = {"pixforge-cut": "horse2zebra_cut", "pixforge-fastcut": "horse2zebra_fastcut",
            "pixforge-cyclegan": "horse2zebra"}
_AUTHORS = {"authors-cut": ("--model", "cut", "--CUT_mode", "CUT"),
            "authors-fastcut": ("--model", "cut", "--CUT_mode", "FastCUT")}
_BASELINE = {"pixforge-cut": "authors-cut", "pixforge-fastcut": "authors-fastcut",
             "pixforge-cyclegan": "pixforge-fastcut"}
"""Each row's ratio: the baseline's s/iteration over its own (CycleGAN's: FastCUT's, so < 1 means slower)."""


def bench_cut(data: Path, steps: tuple[int, int] = (4, 12), reference: Path | None = None,
              python: Path | None = None, modes: tuple[str, ...] = MODES,
              overrides: dict[str, Any] | None = None, reference_args: list[str] | None = None) -> list[Row]:
    """The ``modes`` in order (the authors' only with ``reference``, their checkout), each at both counts.
    ``overrides`` (pixforge config sections) and ``reference_args`` (their options) shrink models for tests."""
    n1, n2 = steps
    if not 0 < n1 < n2:
        raise ValueError(f"steps {steps}: expected two iteration counts, 0 < first < second")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"--modes: {', '.join(unknown)} unknown (expected some of {', '.join(MODES)})")
    if reference is not None:
        python = reference_python(reference, python, "a contrastive-unpaired-translation checkout "
                                  "(benchmarks/setup_reference.sh --cut makes one)")
    else:
        modes = tuple(m for m in modes if m not in _AUTHORS)
    runs: dict[str, tuple[Measured, Measured]] = {}
    details: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="pixforge-bench-cut-") as tmp:
        work = Path(tmp)
        for mode in modes:
            if mode in _AUTHORS:
                assert reference is not None and python is not None
                args = [*(reference_args or []), "--gpu_ids", "-1", "--display_id", "0"]  # CPU, no visdom server
                first, second = (run_reference(data, n, work, reference, python, args, _AUTHORS[mode],
                                               tag=mode.replace("-", "_")) for n in steps)
                runs[mode] = (first, second)
                details[mode] = f"train.py {' '.join(_AUTHORS[mode])}, its defaults (fp32, 4 loader processes)"
            else:
                first, settings = run_pixforge(data, n1, work, overrides or {}, _PRESETS[mode])
                second, _ = run_pixforge(data, n2, work, overrides or {}, _PRESETS[mode])
                runs[mode] = (first, second)
                details[mode] = f"pixforge train --config {_PRESETS[mode]}, no flags (resolved: {settings})"
    return [iteration_row("cut", mode, details[mode], runs[mode], steps, runs.get(_BASELINE.get(mode, "")),
                          vs=_BASELINE.get(mode, "") if _BASELINE.get(mode) in runs else "")
            for mode in runs]
