"""Where a pixforge CycleGAN training step's time goes at the defaults: torch.profiler over a few steps in
one process, ops by self CPU time as shares of the whole.

    .venv/bin/python benchmarks/profile_cyclegan.py [--data DIR] [--steps 3] [--warmup 1] [--top 25]
        [--shapes] [--trace trace.json] [--set model.ngf=4 ...]

The preset ``horse2zebra`` with no flags (resnet_9blocks ngf 64, 256², batch 1, ``precision: auto``: bf16
autocast on a CPU with AVX512-BF16, channels_last, fused Adam), data as ``pixforge train`` reads it on 2 cores
(in-process, no loader workers; these first-epoch images are decoded, later epochs come from the cache).
The first ``--warmup`` steps (oneDNN primitive creation, first allocations) are left out. Shares are
meaningful on a busy machine, where the seconds are not: this is no timing comparison (``pixforge bench
cyclegan`` is). ``--shapes`` splits each op by input shapes and layouts, to find which calls cost.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.data import DataLoader

from pixforge.config import load_config, parse_overrides
from pixforge.data.label_dataset import open_dataset
from pixforge.runtime.device import pick_device
from pixforge.runtime.memory import keep_freed_memory
from pixforge.train.recipe import create_recipe
from pixforge.train.run_dir import with_data_root

SHARED = Path(__file__).resolve().parents[2] / "shared"  # checkout layout: shared/ beside the repository


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "datasets" / "horse2zebra")
    parser.add_argument("--steps", type=int, default=3, help="profiled training steps")
    parser.add_argument("--warmup", type=int, default=1, help="steps run first, not profiled")
    parser.add_argument("--top", type=int, default=25, help="ops listed")
    parser.add_argument("--shapes", action="store_true", help="list ops per input shapes")
    parser.add_argument("--trace", type=Path, help="also write a Chrome trace here")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="a config override, as train's")
    args = parser.parse_args()

    cfg = load_config("horse2zebra", with_data_root(parse_overrides(args.sets), args.data))
    if cfg.train.keep_freed_memory:
        keep_freed_memory()
    device = pick_device(cfg.train.device)
    dataset = open_dataset(cfg.data, cfg.data.train_split, train=True)
    torch.manual_seed(cfg.train.seed)
    recipe = create_recipe(cfg, device)
    recipe.train()
    batches = iter(DataLoader(dataset, batch_size=cfg.train.batch_size, shuffle=True, num_workers=0))
    for _ in range(args.warmup):
        recipe.train_step(next(batches))

    with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
        for _ in range(args.steps):
            with record_function("## data"):
                batch = next(batches)
            with record_function("## train_step"):
                recipe.train_step(batch)
    if args.trace:
        prof.export_chrome_trace(str(args.trace))

    events = prof.key_averages(group_by_input_shape=args.shapes)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"horse2zebra defaults, {cfg.model.generator} ngf {cfg.model.ngf}, {cfg.data.crop_size}², precision "
          f"{recipe.precision}, {'channels_last' if recipe.memory_format == torch.channels_last else 'NCHW'}, "
          f"{torch.get_num_threads()} threads; {args.steps} steps after {args.warmup} warm-up; shares of "
          f"{total / 1e6:.1f} s self CPU time")
    for name in ("## data", "## train_step"):
        part = next((e for e in events if e.key == name), None)
        if part is not None:
            print(f"  {name[3:]:<12} {100 * part.cpu_time_total / total:5.1f}% (inclusive)")
    print(f"\n{'self CPU %':>10}  {'calls/step':>10}  op" + ("  [input shapes]" if args.shapes else ""))
    ranked = sorted((e for e in events if not e.key.startswith("## ")), key=lambda e: -e.self_cpu_time_total)
    for e in ranked[:args.top]:
        shapes = f"  {e.input_shapes}" if args.shapes else ""
        print(f"{100 * e.self_cpu_time_total / total:9.1f}%  {e.count / args.steps:10.1f}  {e.key}{shapes}")
    rest = sum(e.self_cpu_time_total for e in ranked[args.top:])
    print(f"{100 * rest / total:9.1f}%  {'':>10}  (the other {max(len(ranked) - args.top, 0)} ops)")
    outside = sum(e.self_cpu_time_total for e in events if e.key.startswith("## "))
    print(f"{100 * outside / total:9.1f}%  {'':>10}  (outside any op: Python between them)")


if __name__ == "__main__":
    main()
