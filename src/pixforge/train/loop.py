"""The training loop: read it top to bottom.

A run directory holds everything about a run::

    config.yaml           the full config it was started with
    metrics.jsonl         losses, learning rate, speed (and val_l1) every few steps
    samples/              preview grids (the recipe says its rows: pix2pix input | output | target)
    checkpoints/          step_XXXXXXXX.safetensors and latest.safetensors -> the newest complete one
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.utils.data import DataLoader

from pixforge.atomic import write_text
from pixforge.config import Config
from pixforge.data.label_dataset import has_split, open_dataset
from pixforge.runtime import checkpoint as ckpt
from pixforge.runtime.device import pick_device, resolve_channels_last, resolve_precision, should_compile
from pixforge.runtime.memory import keep_freed_memory
from pixforge.train.distributed import (
    Dist,
    barrier,
    init_distributed,
    max_over_ranks,
    mean_over_ranks,
    shutdown_distributed,
)
from pixforge.train.metrics_log import MetricsLog
from pixforge.train.recipe import Recipe, create_recipe
from pixforge.train.sampler import EpochBatches
from pixforge.train.samples import write_grid
from pixforge.train.schedule import Schedule


@dataclass
class RunResult:
    run_dir: Path
    step: int
    checkpoint: Path | None


def train(cfg: Config, run_dir: str | Path, resume: bool = False) -> RunResult:
    """Train ``cfg`` in ``run_dir``; with ``resume`` continue from its latest checkpoint exactly."""
    run_dir = Path(run_dir)
    dist = init_distributed()
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _train(cfg, run_dir, resume, dist)
    finally:
        # train.deterministic is this run's setting, not the calling program's from now on
        torch.use_deterministic_algorithms(deterministic)
        shutdown_distributed(dist)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; nothing from that step on was saved."""


def _train(cfg: Config, run_dir: Path, resume: bool, dist: Dist) -> RunResult:
    t = cfg.train
    started = time.perf_counter()  # train.max_seconds counts from here, data loading included
    if t.keep_freed_memory:
        keep_freed_memory()
    device = pick_device(t.device, dist.local_rank)
    if t.deterministic:
        torch.use_deterministic_algorithms(True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not t.deterministic
    saved_state = _resumable_state(run_dir) if resume else None  # before loading data: fail fast

    dataset = open_dataset(cfg.data, cfg.data.train_split, train=True)
    _report_skipped(dataset, dist)
    cfg = _resolved(cfg, device, dataset)  # what "auto" became, and the scale the model will learn
    t = cfg.train
    if _workers(cfg) > 0:
        dataset.preload(progress=dist.is_main and sys.stderr.isatty())  # forked workers inherit the cache
    val_set = _maybe_val_set(cfg)
    torch.manual_seed(t.seed)  # identical initial weights on every rank
    recipe = create_recipe(cfg, device)
    step = 0
    if saved_state is not None:
        step = _restore(recipe, saved_state, dist)
    else:
        if t.init_from is not None:
            _init_from(recipe, t.init_from)
        torch.manual_seed(t.seed + dist.rank)  # dropout noise differs per rank
    if dist.enabled:
        recipe.wrap_distributed(device)
    if should_compile(t.compile, device):
        recipe.compile()

    batches = EpochBatches(len(dataset), t.batch_size, t.seed, dist.rank, dist.world_size)
    schedule = Schedule.from_config(t, batches.steps_per_epoch)
    total = schedule.total_steps
    preview = val_set or dataset
    if dist.is_main:
        _prepare_run_dir(run_dir, cfg, resume)
    log = MetricsLog(run_dir / "metrics.jsonl", dist.is_main, resume_step=step if resume else None,
                     tensorboard=run_dir / "tensorboard" if t.tensorboard else None)
    if dist.is_main and step == 0 and val_set is not None and t.val_every:
        log.write({"step": 0, **recipe.validate(val_set)})

    saved: Path | None = _latest(run_dir) if resume else None
    running: dict[str, torch.Tensor] = {}
    # The first step whose losses were not finite (-1: none), kept on the device: no host sync per step.
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    last_time, last_step = time.perf_counter(), step
    recipe.train()
    with _progress(dist.is_main) as bar:
        task = bar.add_task("train", total=total, completed=step, losses="")
        while step < total:
            epoch, first = divmod(step, batches.steps_per_epoch)
            recipe.start_epoch(epoch)
            if not cfg.data.decay_jitter:  # the decay epochs resize straight to the crop size (CUT's rule)
                dataset.set_jitter(epoch < t.n_epochs)
            for batch in _loader(dataset, batches.batches(epoch, first), cfg, device):
                recipe.set_lr_factor(schedule.factor(step))
                losses = recipe.train_step(batch)
                step += 1
                finite = torch.stack(list(losses.values())).isfinite().all()
                first_bad = torch.where((first_bad < 0) & ~finite, step, first_bad)
                for k, v in losses.items():  # summed on the device: no host sync per step
                    running[k] = running.get(k, 0) + v

                if step % t.log_every == 0 or step == total:
                    _stop_if_diverged(first_bad, running, saved, dist)
                    now = time.perf_counter()
                    if t.max_seconds is not None and _out_of_time(now - started, t.max_seconds, dist, device):
                        total = step  # checkpoint here and stop
                        bar.update(task, total=total)
                    running = mean_over_ranks(running, dist)
                    record = _record(step, epoch, running, step - last_step, now - last_time, recipe)
                    log.write(record)
                    bar.update(task, completed=step, losses=_fmt(record, recipe.loss_names))
                    if dist.is_main and bar.disable:  # no terminal (CI, a log file): plain lines
                        print(f"step {step}/{total}  {_fmt(record, recipe.loss_names)}", flush=True)
                    running, last_time, last_step = {}, now, step
                paused = time.perf_counter()
                if dist.is_main and step % t.sample_every == 0:
                    log.image("samples", _write_preview(recipe, preview, run_dir, step), step)
                if dist.is_main and val_set is not None and t.val_every and step % t.val_every == 0:
                    log.write({"step": step, **recipe.validate(val_set)})
                if step % t.checkpoint_every == 0 or step == total:
                    _stop_if_diverged(first_bad, running, saved, dist)  # never save a diverged state
                    saved = _save(recipe, cfg, run_dir, step, epoch, dist) or saved
                last_time += time.perf_counter() - paused  # it/s measures training, not bookkeeping
                if step >= total:
                    break
    if dist.is_main and step % t.sample_every != 0:
        _write_preview(recipe, preview, run_dir, step)
    log.close()
    return RunResult(run_dir, step, saved)


def _write_preview(recipe: Recipe, dataset: Any, run_dir: Path, step: int) -> Path:
    """The recipe's preview rows as one marked grid, named by the generator the recipe says made it."""
    with recipe.evaluating():
        rows = recipe.preview_rows(dataset, count=4)
    made_by = recipe.networks[recipe.preview_generator]
    return write_grid(run_dir / "samples" / f"step_{step:08d}.png", rows, made_by, recipe.cfg.name)


def _out_of_time(elapsed: float, budget: float, dist: Dist, device: torch.device) -> bool:
    """Every rank stops at the same step: the slowest rank's clock decides (one collective per log step)."""
    late = torch.tensor([float(elapsed >= budget)], device=device)
    if dist.enabled:
        torch.distributed.all_reduce(late, op=torch.distributed.ReduceOp.MAX)
    return bool(late.item())


def _resolved(cfg: Config, device: torch.device, dataset: Any) -> Config:
    """The config with "auto" settings resolved for this device and the training images' size recorded:
    what config.yaml and the checkpoints say, so a resumed run and inference see the same choices."""
    precision = resolve_precision(cfg.train.precision, device)
    channels_last = resolve_channels_last(cfg.train.channels_last, precision, device)
    return cfg.model_copy(update={
        "train": cfg.train.model_copy(update={"precision": precision, "channels_last": channels_last}),
        "data": cfg.data.model_copy(update={"source_size": dataset.source_size(),
                                            "class_names": _class_names(dataset)}),
    })


def _stop_if_diverged(first_bad: torch.Tensor, running: dict[str, torch.Tensor], saved: Path | None,
                      dist: Dist) -> None:
    bad_step = int(max_over_ranks(first_bad, dist))
    if bad_step < 0:
        return
    names = [k for k, v in running.items() if not torch.isfinite(v).all()] or ["a loss"]
    keep = f"the last good checkpoint is {saved}" if saved else "no checkpoint was written"
    raise TrainingDiverged(f"training diverged: {', '.join(names)} became NaN or infinite at step {bad_step}; "
                           f"{keep} (try a lower train.lr, or train.precision fp32)")


def _report_skipped(dataset: Any, dist: Dist) -> None:
    """data.skip_bad: say which files were left out, not only how many."""
    if not dataset.skipped or not dist.is_main:
        return
    print(f"skipped {len(dataset.skipped)} unreadable pair(s) (data.skip_bad):", file=sys.stderr)
    for path, reason in dataset.skipped[:20]:
        print(f"  {path}: {reason}", file=sys.stderr)
    if len(dataset.skipped) > 20:
        print(f"  ... and {len(dataset.skipped) - 20} more", file=sys.stderr)


def _latest(run_dir: Path) -> Path | None:
    try:
        return ckpt.find_checkpoint(run_dir)
    except ckpt.CheckpointError:
        return None


def _maybe_val_set(cfg: Config) -> Any:
    """The validation split as whole images (validation works the way inference does), if there is one."""
    if not has_split(cfg.data, cfg.data.val_split):
        return None
    return open_dataset(cfg.data, cfg.data.val_split, train=False, whole=True)


def _init_from(recipe: Recipe, source: Path) -> None:
    """``train.init_from``: the networks start from another run's weights (pix2pixHD's ``--load_pretrain``)."""
    path = ckpt.find_checkpoint(source)
    _, state = ckpt.load_checkpoint(path)
    recipe.load_pretrained(state, str(path))


def _workers(cfg: Config) -> int:
    if cfg.data.num_workers is not None:
        return cfg.data.num_workers
    # On 2 cores a worker only steals time from the model; cached data is cheap to serve in-process.
    cores = os.cpu_count() or 1
    return 0 if cores <= 2 else min(4, cores // 2)


def _loader(dataset: Any, batches: Any, cfg: Config, device: torch.device) -> DataLoader:
    workers = _workers(cfg)
    # A private generator: otherwise each new loader draws a base seed from the global RNG, and a run
    # resumed mid-epoch would draw it at a different step than an uninterrupted run (breaking exactness).
    return DataLoader(dataset, batch_sampler=list(batches), num_workers=workers,
                      pin_memory=device.type == "cuda", generator=torch.Generator())


def _class_names(dataset: Any) -> tuple[str, ...] | None:
    """The classes of a class-labelled dataset (layout ``classes``), recorded for the model; None for others."""
    names = getattr(dataset, "class_names", None)
    return tuple(names) if names else None


def _record(step: int, epoch: int, running: dict[str, torch.Tensor], steps: int, seconds: float,
            recipe: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"step": step, "epoch": epoch}
    record.update({k: round(float(v) / max(steps, 1), 6) for k, v in running.items()})  # one sync per log
    record["lr"] = recipe.learning_rate()
    record["it_s"] = round(steps / seconds, 3) if seconds > 0 else None
    return record


def _fmt(record: dict[str, Any], loss_names: tuple[str, ...]) -> str:
    parts = [f"{k} {record[k]:.3f}" for k in loss_names if k in record]
    return "  ".join([*parts, f"{record['it_s']} it/s"])


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), TextColumn("{task.fields[losses]}"),
        disable=not (enabled and sys.stderr.isatty()), transient=False,
    )


def _prepare_run_dir(run_dir: Path, cfg: Config, resume: bool) -> None:
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    (run_dir / "samples").mkdir(exist_ok=True)
    if not resume:
        write_text(run_dir / "config.yaml", cfg.to_yaml())


def _per_rank_state(recipe: Recipe, dist: Dist) -> list[dict[str, Any]]:
    """What differs between ranks, gathered on rank 0: RNG states (dropout, gradient-penalty mixing) and
    the recipe's own per-rank state (pix2pix: its image pool)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                             "recipe": recipe.rank_state()}
    if torch.cuda.is_available():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    if not dist.enabled:
        return [state]
    gathered: list[Any] = [None] * dist.world_size
    torch.distributed.all_gather_object(gathered, state)  # between our own processes only
    return gathered


def _save(recipe: Recipe, cfg: Config, run_dir: Path, step: int, epoch: int, dist: Dist) -> Path | None:
    ranks = _per_rank_state(recipe, dist)
    if not dist.is_main:
        barrier(dist)
        return None
    state = recipe.state_dict()
    state["progress"] = {"step": step, "epoch": epoch}
    state["ranks"] = ranks
    folder = run_dir / "checkpoints"
    path = ckpt.save_checkpoint(folder / ckpt.checkpoint_name(step), cfg.to_dict(), state,
                                components=recipe.components)
    ckpt.point_latest(folder, path)
    ckpt.prune_checkpoints(folder, cfg.train.keep_checkpoints)
    barrier(dist)  # no rank races ahead of (or resumes from) a checkpoint still being written
    return path


def _resumable_state(run_dir: Path) -> dict[str, Any]:
    path = ckpt.find_checkpoint(run_dir)
    _, state = ckpt.load_checkpoint(path)
    if "optim" not in state or "ranks" not in state:
        raise ckpt.CheckpointError(f"{path}: holds weights only (imported or exported), so there is no "
                                   f"training state to resume; start a new run instead")
    return state


def _restore(recipe: Recipe, state: dict[str, Any], dist: Dist) -> int:
    recipe.load_state_dict(state)
    ranks = state["ranks"]
    rng = ranks[dist.rank] if dist.rank < len(ranks) else ranks[0]  # more ranks than saved: reuse rank 0's
    recipe.load_rank_state(rng["recipe"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    return int(state["progress"]["step"])
