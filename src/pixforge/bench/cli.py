"""``pixforge bench``: speed and memory benchmarks, each beside its baseline (results appended to BENCHMARKS.md).

Each command parses its options and calls its module in this package; the root ``pixforge`` command line adds
this group as ``bench``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

bench_app = typer.Typer(no_args_is_help=True, help="Speed and memory benchmarks, each beside its baseline.")


def _shared() -> Path:
    return Path(__file__).resolve().parents[4] / "shared"  # checkout layout: shared/ beside the repository


def _facades(data: Path | None) -> Path:
    root = data or _shared() / "datasets" / "facades"
    if not (root / "train").is_dir():
        raise ValueError(f"{root}: facades dataset not found (pass --data DIR with train/ and val/)")
    return root


def _report(title: str, rows: list[Any], out: Path, ratio_label: str = "× baseline") -> None:
    from pixforge.bench.report import append_markdown, print_rows, render_markdown

    print_rows(rows, ratio_label)
    append_markdown(out, render_markdown(title, rows, ratio_label=ratio_label))
    typer.echo(f"appended to {out}")


@bench_app.command("train")
def bench_train(
    data: Annotated[Path | None, typer.Option(help="facades folder (default ../shared/datasets/facades).")] = None,
    steps: Annotated[int, typer.Option(min=20)] = 200,
    baseline: Annotated[bool, typer.Option(help="Also run pixforge the reference's way, for ratios.")] = True,
    reference: Annotated[Path | None, typer.Option(help="A pytorch-CycleGAN-and-pix2pix checkout to run.")] = None,
    reference_python: Annotated[Path | None, typer.Option(help="The Python that runs the reference.")] = None,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """Training end to end, whole processes: pixforge with no flags beside the reference's way."""
    from pixforge.bench.train import bench_train as run

    rows = run(_facades(data), steps=steps, baseline=baseline, reference=reference,
               reference_python=reference_python)
    _report(f"train: facades, unet_256 + PatchGAN, 256², batch 1, {steps} steps, whole process", rows, out,
            "× reference" if reference else "× baseline")


@bench_app.command("cyclegan")
def bench_cyclegan_command(
    data: Annotated[Path | None, typer.Option(help="horse2zebra folder (default ../shared/datasets/horse2zebra).")]
    = None,
    steps: Annotated[str, typer.Option(help="Two iteration counts; s/iteration is their time difference.")] = "4,12",
    reference: Annotated[Path | None, typer.Option(help="A pytorch-CycleGAN-and-pix2pix checkout to run "
                                                        "(benchmarks/setup_reference.sh makes one).")] = None,
    reference_python: Annotated[Path | None, typer.Option(help="The Python that runs the reference (default: "
                                                               "the checkout's venv/bin/python).")] = None,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """CycleGAN training, whole processes: pixforge with no flags beside the reference's train.py; s/iteration
    from two iteration counts, peak memory of the process and of its whole tree."""
    from pixforge.bench.cyclegan import bench_cyclegan, cpu_model, parse_steps

    counts = parse_steps(steps)
    root = data or _shared() / "datasets" / "horse2zebra"
    if not (root / "trainA").is_dir() or not (root / "trainB").is_dir():
        raise ValueError(f"{root}: horse2zebra not found (pass --data DIR with trainA/ and trainB/)")
    rows = bench_cyclegan(root, counts, reference, reference_python)
    _report(f"cyclegan on {cpu_model()}: horse2zebra, resnet_9blocks ngf 64 + PatchGAN, 256², batch 1, "
            f"s/iteration from {counts[0]} and {counts[1]} iterations, whole processes", rows, out,
            "× reference" if reference else "× pixforge")


@bench_app.command("cut")
def bench_cut_command(
    data: Annotated[Path | None, typer.Option(help="horse2zebra folder (default ../shared/datasets/horse2zebra).")]
    = None,
    steps: Annotated[str, typer.Option(help="Two iteration counts; s/iteration is their time difference.")] = "4,12",
    modes: Annotated[str, typer.Option(help="Comma-separated: authors-cut, authors-fastcut, pixforge-cut, "
                                            "pixforge-fastcut, pixforge-cyclegan.")]
    = "authors-cut,authors-fastcut,pixforge-cut,pixforge-fastcut,pixforge-cyclegan",
    reference: Annotated[Path | None, typer.Option(help="A contrastive-unpaired-translation checkout to run "
                                                        "(benchmarks/setup_reference.sh --cut makes one).")] = None,
    reference_python: Annotated[Path | None, typer.Option(help="The Python that runs it (default: the "
                                                               "checkout's venv/bin/python).")] = None,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """CUT and FastCUT training, whole processes: pixforge's presets with no flags beside the authors' train.py
    and pixforge's CycleGAN; s/iteration from two iteration counts, peak memory of the process and its tree."""
    from pixforge.bench.cut import bench_cut
    from pixforge.bench.cyclegan import cpu_model, parse_steps

    counts = parse_steps(steps)
    root = data or _shared() / "datasets" / "horse2zebra"
    if not (root / "trainA").is_dir() or not (root / "trainB").is_dir():
        raise ValueError(f"{root}: horse2zebra not found (pass --data DIR with trainA/ and trainB/)")
    rows = bench_cut(root, counts, reference, reference_python, tuple(m.strip() for m in modes.split(",")))
    _report(f"cut on {cpu_model()}: horse2zebra, anti-aliased resnet_9blocks ngf 64 + PatchGAN, 256², batch 1, "
            f"s/iteration from {counts[0]} and {counts[1]} iterations, whole processes", rows, out, "× vs")


@bench_app.command("cgan")
def bench_cgan_command(
    data: Annotated[Path | None, typer.Option(help="MNIST folder (default ../shared/datasets/mnist).")] = None,
    grid: Annotated[Path | None, typer.Option(help="Also write the grid of samples here (a PNG).")] = None,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """The mnist_cgan preset with no flags: training time, then per-class accuracy (a classifier of the same
    digits reads 50 samples per class) and diversity against the real images'."""
    from pixforge.bench.cgan import bench_cgan

    root = data or _shared() / "datasets" / "mnist"
    if not any(root.glob("*-images-idx3-ubyte*")) and not any(p.is_dir() for p in root.glob("*")):
        raise ValueError(f"{root}: no MNIST IDX files or class folders (pass --data DIR)")
    rows = bench_cgan(root, grid)
    _report("cgan: mnist_cgan preset, 28² digits, whole training process, then 50 samples per class judged",
            rows, out)


@bench_app.command("translate")
def bench_translate(
    data: Annotated[Path | None, typer.Option(help="facades folder (default ../shared/datasets/facades).")] = None,
    count: Annotated[int, typer.Option(min=8)] = 100,
    passes: Annotated[int, typer.Option(min=1)] = 3,
    baseline: Annotated[bool, typer.Option(help="Also run the reference's way without its code.")] = True,
    reference: Annotated[Path | None, typer.Option(help="A pytorch-CycleGAN-and-pix2pix checkout to run.")] = None,
    reference_python: Annotated[Path | None, typer.Option(help="The Python that runs the reference.")] = None,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """Folder translation end to end, whole processes: pixforge translate with no flags vs the reference's way."""
    from pixforge.bench.translate import MODES
    from pixforge.bench.translate import bench_translate as run

    modes = MODES if baseline else tuple(m for m in MODES if m != "baseline")
    rows = run(_facades(data), count, passes, modes, reference, reference_python)
    _report(f"translate: {count} facades val label maps, 256², whole process", rows, out,
            "× reference" if reference else "× baseline")


@bench_app.command("hd")
def bench_hd_command(
    data: Annotated[Path | None, typer.Option(help="facades folder (default ../shared/datasets/facades).")] = None,
    steps: Annotated[int, typer.Option(min=8, help="Training steps per mode (= facades pairs, one epoch).")] = 100,
    modes: Annotated[str, typer.Option(help="Comma-separated: reference, baseline, pixforge, spade.")]
        = "baseline,pixforge,spade",
    vgg: Annotated[bool, typer.Option(help="VGG19 loss on in every mode (random weights: same speed).")] = True,
    reference: Annotated[Path | None, typer.Option(help="A CPU-patched NVIDIA/pix2pixHD checkout.")] = None,
    reference_python: Annotated[Path | None, typer.Option(help="The Python that runs the reference.")] = None,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """pix2pixHD global G and SPADE training at 256², whole processes: s/step and peak memory beside the
    reference pix2pixHD (or pixforge run its way)."""
    from pixforge.bench.hd import bench_hd

    chosen = tuple(m.strip() for m in modes.split(",") if m.strip())
    rows = bench_hd(_facades(data), steps, chosen, vgg, reference, reference_python)
    _report(f"hd: facades labels -> photo, pix2pixHD global G (ngf 64) and SPADE, 256², batch 1, {steps} steps"
            f"{', VGG loss' if vgg else ''}", rows, out, "× reference" if "reference" in chosen else "× baseline")


@bench_app.command("quality")
def bench_quality(
    work: Annotated[Path, typer.Option(help="Folder for the runs and results.jsonl (kept: reruns continue).")],
    data: Annotated[Path | None, typer.Option(help="facades folder (default ../shared/datasets/facades).")] = None,
    modes: Annotated[str, typer.Option(help="Comma-separated: pixforge, baseline, reference, resize-conv.")]
    = "pixforge,baseline",
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 0..N-1 per mode.")] = 3,
    steps: Annotated[int, typer.Option(min=400, help="Training steps (a multiple of 400).")] = 2000,
    reference: Annotated[Path | None, typer.Option(help="A pytorch-CycleGAN-and-pix2pix checkout.")] = None,
    reference_python: Annotated[Path | None, typer.Option(help="The Python that runs the reference.")] = None,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """Checkerboard energy and val L1 after equal steps, over seeds: defaults vs reference-way vs reference."""
    from pixforge.bench.quality import MODES, quality_rows, run_quality

    chosen = [m.strip() for m in modes.split(",") if m.strip()]
    unknown = sorted(set(chosen) - set(MODES))
    if unknown:
        raise ValueError(f"--modes: unknown {', '.join(unknown)}; choose from {', '.join(MODES)}")
    records = run_quality(_facades(data), work, chosen, list(range(seeds)), steps, reference, reference_python)
    _report(f"quality: facades labels → photo, {steps} steps, val split (100 images)",
            quality_rows(records, steps), out)


@bench_app.command("provenance")
def bench_provenance(
    data: Annotated[Path | None, typer.Option(help="facades folder (default ../shared/datasets/facades).")] = None,
    shared: Annotated[Path | None, typer.Option(help="Folder holding fixtures/reference-pix2pix.")] = None,
    count: Annotated[int, typer.Option(min=1, help="Generated outputs (facades val label maps).")] = 100,
    photos: Annotated[int, typer.Option(min=0, help="Real photos marked as stand-ins for textured outputs.")] = 100,
    quality: Annotated[bool, typer.Option(help="Robustness, false positives, PSNR (any machine).")] = True,
    overhead: Annotated[bool, typer.Option(help="ms per image of filter + watermark (quiet machine).")] = True,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """Watermark robustness (JPEG, resize, crop), false positives on real photos, PSNR, filter + mark cost."""
    from pixforge.bench.provenance import bench_provenance as run

    _report(f"provenance: watermark on {count} facades outputs (256²) and real photos",
            run(_facades(data), shared or _shared(), count=count, photos=photos, quality=quality,
                overhead=overhead), out)

@bench_app.command("equal-time")
def bench_equal_time(
    work: Annotated[Path, typer.Option(help="Folder for the runs and results.jsonl (kept: reruns continue).")],
    judge: Annotated[Path, typer.Option(help="The judge (pixforge judge train --out DIR).")],
    data: Annotated[Path | None, typer.Option(help="facades folder (default ../shared/datasets/facades).")] = None,
    minutes: Annotated[float, typer.Option(min=0.1, help="Training wall-clock per mode.")] = 15.0,
    seed: int = 0,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """FCN-scores after equal training time: pixforge's defaults vs the reference-way baseline."""
    from pixforge.bench.equal_time import check_judge, equal_time_rows, run_equal_time

    check_judge(judge)
    records = run_equal_time(_facades(data), work, judge, seconds=minutes * 60, seed=seed)
    _report(f"equal time: facades labels → photo, {minutes:g} min of training per mode, judged on val",
            equal_time_rows(records), out)


@bench_app.command("serve")
def bench_serve(
    requests: Annotated[int, typer.Option(min=1, help="Timed requests per mode and client count.")] = 256,
    clients: Annotated[str, typer.Option(help="Comma-separated concurrent client counts.")] = "1,16,64",
    modes: Annotated[str | None, typer.Option(help="Comma-separated modes (default: all).")] = None,
    rss_requests: Annotated[int, typer.Option(min=0, help="Requests of the memory run (0: skip it).")] = 5000,
    model: Annotated[Path | None, typer.Option(help="Run directory or checkpoint (default: a fresh ngf-64 "
                                                    "unet_256).")] = None,
    out: Path = Path("BENCHMARKS.md"),
) -> None:
    """HTTP serving on loopback: batching vs one forward per request, PyTorch vs ONNX Runtime, memory."""
    from pixforge.bench.serve import MODES
    from pixforge.bench.serve import bench_serve as run

    try:
        counts = tuple(int(c) for c in clients.split(",") if c.strip())
    except ValueError:
        raise ValueError(f"--clients '{clients}': expected comma-separated numbers, e.g. 1,16,64") from None
    chosen = tuple(m.strip() for m in modes.split(",") if m.strip()) if modes else tuple(MODES)
    rows = run(requests, counts, chosen, rss_requests, model)
    served = "unet_256 (ngf 64, random init)" if model is None else str(model)
    _report(f"serve: {served}, 256² PNG label maps over HTTP on 127.0.0.1, {requests} requests per run",
            [r for r in rows if r.bench == "serve"], out)
    memory = [r for r in rows if r.bench == "serve-memory"]
    if memory:
        _report(f"serve memory: {rss_requests} requests to the batched server, 16 clients", memory, out)
