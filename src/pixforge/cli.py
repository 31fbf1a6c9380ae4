"""The ``pixforge`` command: a thin shell over the Python API, nothing else."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Paired image-to-image translation with conditional GANs (pix2pix).")
export_app = typer.Typer(no_args_is_help=True, help="Export a trained generator to other runtimes.")
app.add_typer(export_app, name="export")
bench_app = typer.Typer(no_args_is_help=True, help="Speed and memory benchmarks, each beside its baseline.")
app.add_typer(bench_app, name="bench")
features_app = typer.Typer(no_args_is_help=True, help="pix2pixHD instance features (feature-encoder runs).")
app.add_typer(features_app, name="features")

pipeline_app = typer.Typer(no_args_is_help=True, help="Staged pipelines: translators chained with steps between.")
app.add_typer(pipeline_app, name="pipeline")
judge_app = typer.Typer(no_args_is_help=True, help="The FCN-score judge: a photo -> label map segmenter.")
app.add_typer(judge_app, name="judge")


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    """Errors print one line; --debug shows the traceback instead."""


def _parse_set(pairs: list[str]) -> dict[str, Any]:
    """``train.max_steps=200`` -> {"train": {"max_steps": 200}} (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        parts = key.split(".")
        if not sep or len(parts) < 2 or not all(parts):
            raise ValueError(f"--set '{pair}': expected SECTION.FIELD=VALUE with a section of model, data, loss "
                             f"or train, e.g. train.max_steps=200")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or err.__class__.__name__
            raise ValueError(f"--set '{pair}': the value is not valid YAML ({problem})") from None
        node = out
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"--set '{pair}': conflicts with an earlier --set of "
                                 f"'{'.'.join(parts[:i + 1])}' to a value")
        if isinstance(node.get(parts[-1]), dict):
            raise ValueError(f"--set '{pair}': conflicts with earlier --set options inside '{key}'")
        node[parts[-1]] = value
    return out


def _choice(value: str, choices: tuple[str, ...], option: str) -> str:
    if value not in choices:
        raise ValueError(f"{option}: '{value}' is not one of {', '.join(choices)}")
    return value


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@app.command()
def train(
    config: Annotated[str | None, typer.Option("--config", "-c", help="YAML file or preset name.")] = None,
    data: Annotated[Path | None, typer.Option(help="Dataset folder (overrides data.root).")] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/NAME).")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this run directory exactly.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: train.max_steps=200.")] = None,
) -> None:
    """Train a model; --resume RUN_DIR continues from its latest checkpoint."""
    from pixforge.config import load_config
    from pixforge.train.loop import train as run_training

    overrides = _parse_set(set_ or [])
    if data is not None:
        overrides.setdefault("data", {})["root"] = str(data)
    if resume is not None and config is not None:
        raise ValueError("train: give --config (a new run) or --resume RUN_DIR (its config.yaml), not both")
    if resume is not None:
        if not (resume / "config.yaml").is_file():
            raise ValueError(f"{resume}: not a run directory (no config.yaml to resume from)")
        cfg = load_config(resume / "config.yaml", overrides)
        run_dir = resume
    elif config is None:
        raise ValueError("train: give --config FILE (or a preset name) or --resume RUN_DIR")
    else:
        cfg = load_config(config, overrides)
        run_dir = out or Path("runs") / cfg.name
        if (run_dir / "checkpoints" / "latest.safetensors").exists() or (run_dir / "config.yaml").exists():
            raise ValueError(f"{run_dir}: already holds a run; use --resume {run_dir} or another --out")
        if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
            raise ValueError(f"--out {run_dir}: exists and is not empty; a new run needs a new or empty folder")
    if cfg.data.root is None:
        raise ValueError("data.root: no dataset folder; pass --data DIR or set data.root in the config")
    typer.echo(f"{'resuming' if resume else 'training'} {cfg.name} in {run_dir}")
    result = run_training(cfg, run_dir, resume=resume is not None)
    typer.echo(f"trained {result.step} steps; checkpoint {result.checkpoint}")


@app.command()
def translate(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.")],
    model: Annotated[Path, typer.Option("--model", "-m", help="Run directory, checkpoint or .onnx file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNG outputs.")],
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="auto (bf16 where the hardware has it), fp32, bf16.")] = "auto",
    channels_last: Annotated[bool | None, typer.Option("--channels-last/--no-channels-last",
                                                       help="NHWC layout (default: with bf16).")] = None,
    scale: Annotated[str, typer.Option(help="auto (the trained scale where it matters), trained, native, or "
                                            "reference (as the reference's test.py).")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace existing files in --out.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip unreadable inputs instead of stopping.")] = False,
    paper_test_mode: Annotated[bool, typer.Option(help="Dropout on and per-image statistics, as the paper.")]
    = False,
    style: Annotated[Path | None, typer.Option(help="SPADE models trained with a style encoder "
                                                    "(model.use_vae): every output takes this image's look.")] = None,
) -> None:
    """Translate images to OUT/NAME.png at each input's own size (inputs are never overwritten).

    Every output is checked by the safety filter (a flagged one is not written, and the command exits 1
    after the rest), carries pixforge's invisible watermark and XMP metadata; pixforge verify reads them.
    """
    # Set before torch loads OpenMP: its threads spin between the generator's ops and take the cores that the
    # filter and encoders need (100 facades maps: 10.3 -> 8.4 s of CPU, about 0.6 s less wall time).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from pixforge.runtime.device import PRECISIONS, pick_device
    from pixforge.runtime.scale import SCALE_MODES

    # Every option is checked before the model loads: a typo costs no time.
    _choice(precision, PRECISIONS, "--precision")
    _choice(scale, SCALE_MODES, "--scale")
    pick_device(device, option="--device")

    from pixforge.data.image_io import read_image
    from pixforge.infer.files import translate_files
    from pixforge.infer.translator import Translator

    style_image = read_image(style, 3) if style is not None else None  # decoded first: a bad file costs no time
    load = Translator.from_onnx if model.suffix.lower() == ".onnx" else Translator.from_pretrained
    translator = load(model, device=device, precision=precision, channels_last=channels_last, scale=scale,
                      paper_test_mode=paper_test_mode)
    if style_image is not None:
        translator.set_style(style_image)
    with _progress("translate") as advance:
        report = translate_files(translator, inputs, out, batch_size=batch_size, skip_bad=skip_bad,
                                 overwrite=overwrite, on_done=advance)
    for _, reason in report.failed:
        typer.echo(f"skipped {reason}", err=True)
    for source, reason in report.blocked:
        typer.echo(f"blocked {source}: {reason}", err=True)
    notes = []
    if report.failed:
        notes.append(f"{len(report.failed)} skipped")
    if report.blocked:
        notes.append(f"{len(report.blocked)} blocked by the safety filter")
    typer.echo(f"wrote {_plural(len(report.written), 'image')} to {out}" + (f" ({', '.join(notes)})" if notes else ""))
    if report.blocked:
        raise typer.Exit(1)


@app.command()
def verify(
    images: Annotated[list[Path], typer.Argument(help="Image files (or folders of images) to check.")],
) -> None:
    """Check images for pixforge's marks: watermark, XMP metadata, C2PA manifest; one line per image.

    Exit 0 when every image is marked (watermark found or metadata declaring it generated), 1 when any is
    not, 2 when any cannot be read.
    """
    from pixforge.data.image_io import ImageError, list_images
    from pixforge.provenance import verify_file

    unreadable = unmarked = 0
    for path in [f for p in images for f in (list_images(p) if p.is_dir() else [p])]:
        try:
            report = verify_file(path)
        except ImageError as err:
            typer.echo(f"error: {err}", err=True)
            unreadable += 1
            continue
        typer.echo(report.line())
        unmarked += not report.marked
    raise typer.Exit(2 if unreadable else 1 if unmarked else 0)


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int], None] | None]:
    """A callback advancing a progress bar on a terminal; nothing (and no rich import) otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda n: bar.advance(task, n)


@app.command("import-reference")
def import_reference(
    folder: Annotated[Path, typer.Argument(help="Reference checkpoint folder (latest_net_G.pth + train_opt.txt, "
                                                "or pix2pixHD's latest_net_G.pth + opt.txt).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")],
    epoch: Annotated[str, typer.Option(help="Which checkpoint: latest or an epoch number.")] = "latest",
) -> None:
    """Convert a pytorch-CycleGAN-and-pix2pix or pix2pixHD checkpoint into a pixforge run directory."""
    from pixforge.compat.pix2pixhd import import_hd_run, is_pix2pixhd_folder
    from pixforge.compat.reference import import_reference_run

    convert = import_hd_run if is_pix2pixhd_folder(folder) else import_reference_run
    path = convert(folder, out, epoch)
    typer.echo(f"wrote {path}")


@features_app.command("cluster")
def features_cluster(
    model: Annotated[Path, typer.Option("--model", "-m", help="Run directory of a feature-encoder run.")],
    data: Annotated[Path | None, typer.Option(help="Dataset folder (default: the run's data.root).")] = None,
    clusters: Annotated[int, typer.Option(min=1, help="k-means clusters per class (pix2pixHD: 10).")] = 10,
    split: Annotated[str, typer.Option(help="Which split to encode.")] = "train",
) -> None:
    """Encode the training set's instance features and cluster them per class (pix2pixHD section 3.4); writes
    feature_clusters.json into the run, which translate then uses."""
    from pixforge.infer.features import cluster_features

    path = cluster_features(model, data, clusters, split)
    typer.echo(f"wrote {path}")


@export_app.command("onnx")
def export_onnx_command(
    model: Annotated[Path, typer.Option("--model", "-m", help="Run directory or checkpoint file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .onnx file to write.")],
    opset: Annotated[int, typer.Option(help="ONNX opset version (7 to 20).")] = 17,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Export the generator to ONNX (dynamic batch, height and width) and check it against PyTorch."""
    from pixforge.infer.export import (
        MAX_OPSET,
        MIN_OPSET,
        PARITY_TOLERANCE,
        check_export_target,
        export_onnx,
        max_abs_difference,
    )
    from pixforge.infer.translator import Translator

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"--opset {opset}: the exporter supports opsets {MIN_OPSET} to {MAX_OPSET}")
    check_export_target(out, model, overwrite, suffix=".onnx")
    translator = Translator.from_pretrained(model, device="cpu", precision="fp32")
    path = export_onnx(translator, out, opset=opset)
    diff = max_abs_difference(translator, path)
    if not diff <= PARITY_TOLERANCE:  # also catches NaN
        path.unlink(missing_ok=True)
        raise ValueError(f"{path}: ONNX Runtime output differs from PyTorch by {diff:.2e} "
                         f"(> {PARITY_TOLERANCE:g}); the file was removed")
    typer.echo(f"wrote {path} (max abs difference vs PyTorch {diff:.2e})")


@export_app.command("weights")
def export_weights_command(
    model: Annotated[Path, typer.Argument(help="Run directory or checkpoint file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The .safetensors file to write.")],
    dtype: Annotated[str, typer.Option(help="fp32, bf16 or fp16 weights.")] = "fp32",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """The generator and its config only (no discriminator, no optimiser state): for sharing and serving."""
    from pixforge.infer.export import WEIGHT_DTYPES, check_export_target, export_weights

    _choice(dtype, tuple(WEIGHT_DTYPES), "--dtype")
    check_export_target(out, model, overwrite, suffix=".safetensors")
    path = export_weights(model, out, dtype)
    typer.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB)")


@app.command()
def serve(
    model: Annotated[list[str], typer.Option("--model", "-m", help="NAME=RUN_DIR, NAME=CHECKPOINT or NAME=FILE.onnx "
                                                                  "(repeat for more models).")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes the server to the network.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free port).")] = 8000,
    api_key: Annotated[str | None, typer.Option(envvar="PIXFORGE_API_KEY", show_envvar=True,
                                                help="Require this key on every /v1 route (prefer the variable: "
                                                     "a flag shows in the process list).")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Images per forward pass (Triton's max_batch_size).")] = 8,
    max_wait_ms: Annotated[float, typer.Option(min=0, help="How long a request waits for others to batch with "
                                                           "(Triton's max_queue_delay, TorchServe's max_batch_delay)."
                                               )] = 5.0,
    max_queue: Annotated[int, typer.Option(min=1, help="Images waiting per model before answering 503.")] = 128,
    instances: Annotated[int, typer.Option(min=1, help="Forward passes of one model at once.")] = 1,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body.")] = 16 * 1024 * 1024,
    max_pixels: Annotated[int, typer.Option(min=1, help="Largest image (width x height).")] = 2048 * 2048,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads per forward pass (default: all cores).")]
    = None,
    device: str = "auto",
    precision: Annotated[str, typer.Option(help="PyTorch models: auto (bf16 where the hardware has it), fp32, "
                                                "bf16 or fp16 (CUDA).")] = "auto",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve models over HTTP (API, metrics, docs) with the drawing page at /; Ctrl-C finishes in-flight work."""
    from pixforge.runtime.memory import keep_freed_memory
    from pixforge.serve import ServeSettings, create_app, load_models, run_server
    from pixforge.serve.server import is_loopback

    settings = ServeSettings(max_batch=max_batch, max_wait_ms=max_wait_ms, max_queue=max_queue, instances=instances,
                             max_body_bytes=max_body_bytes, max_pixels=max_pixels, api_key=api_key)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    keep_freed_memory()  # activation buffers are reused from request to request instead of re-faulted
    models = load_models(model, device=device, precision=precision, threads=threads)
    if not is_loopback(host) and api_key is None:
        typer.echo(f"warning: listening on {host} without an API key; anyone who can reach it can use it", err=True)
    run_server(create_app(models, settings), host, port, access_log=access_log,
               on_ready=lambda url: typer.echo(f"serving {', '.join(models)} on {url} (page {url}/, docs {url}/docs)"))


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where data, run and results page go.")] = Path("results"),
    steps: Annotated[int | None, typer.Option(min=1, help="Training steps (default: the demo preset's).")] = None,
) -> None:
    """Train briefly on a procedural dataset made in code (offline) and write OUT/index.html."""
    from pixforge.demo import run_demo

    page = run_demo(out, steps=steps)
    typer.echo(f"results page: {page}")


def _shared() -> Path:
    return Path(__file__).resolve().parents[3] / "shared"  # checkout layout: shared/ beside the repository


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


def _eval_model(path: Path, device: str) -> tuple[Any, list[dict[str, Any]]]:
    """A run directory, checkpoint, weights or .onnx file, or a pipeline .yaml -> (model, its training log)."""
    from pixforge.eval.evaluate import TranslatorModel
    from pixforge.infer.translator import Translator
    from pixforge.train.metrics_log import read_metrics

    if path.suffix.lower() in (".yaml", ".yml"):
        from pixforge.pipeline import Pipeline

        return Pipeline.from_yaml(path, device=device), []
    if path.suffix.lower() == ".onnx":
        onnx = Translator.from_onnx(path)
        return TranslatorModel(onnx, path.stem, onnx.model_hash), []
    translator = Translator.from_pretrained(path, device=device)
    log = path / "metrics.jsonl"
    name = path.name if path.is_dir() else path.stem
    return TranslatorModel(translator, name, translator.model_hash), read_metrics(log) if log.is_file() else []


def _print_metrics(evaluations: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("metric")
    for e in evaluations:
        table.add_column(e.model, justify="right")
    if len(evaluations) == 2:
        table.add_column("difference", justify="right")
    bound = evaluations[0].upper_bound
    if bound:
        table.add_column("real photos (upper bound)", justify="right")
    for key in dict.fromkeys(k for e in evaluations for k in e.means):
        values = [e.means.get(key) for e in evaluations]
        cells = [f"{v:.4f}" if v is not None else "-" for v in values]
        if len(evaluations) == 2:
            a, b = values
            cells.append(f"{b - a:+.4f}" if a is not None and b is not None else "-")
        if bound:
            cells.append(f"{bound[key]:.4f}" if key in bound else "")
        table.add_row(key, *cells)
    Console().print(table)
    for line in dict.fromkeys(s for e in evaluations for s in e.skipped):
        typer.echo(line)


def _run_eval(model_path: Path, data: Path, split: str, judge: Path | None, weights: Path | None,
              learned: bool, max_items: int | None, device: str) -> tuple[Any, list[dict[str, Any]]]:
    from rich.progress import Progress

    from pixforge.eval.evaluate import evaluate
    from pixforge.eval.fcn_score import Judge

    model, log = _eval_model(model_path, device)
    judge_net = Judge.load(judge) if judge is not None else None
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"eval {model.name}", total=None)
        result = evaluate(model, data, split, judge=judge_net, learned_metrics=learned, weights=weights,
                          max_items=max_items, on_done=lambda n: bar.advance(task, n))
    return result, log


_EvalData = Annotated[Path, typer.Option(help="Paired dataset folder (holding the split).")]
_EvalJudge = Annotated[Path | None, typer.Option(help="A judge (pixforge judge train): adds the FCN-scores.")]
_EvalWeights = Annotated[Path | None, typer.Option(help="Folder of LPIPS/FID weight files "
                                                        "(default $PIXFORGE_WEIGHTS or ~/.cache/pixforge/weights).")]
_EvalLearned = Annotated[bool, typer.Option(help="LPIPS and FID/KID where their weights are present.")]


_EvalOverwrite = Annotated[bool, typer.Option(help="Replace an existing report folder and --json file.")]
_EvalMaxItems = Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N pairs.")]


def _refuse_replacing(folder: Path | None, json_file: Path | None, overwrite: bool) -> None:
    """A report folder that holds files, or a --json file that exists, is replaced only with --overwrite."""
    if overwrite:
        return
    if folder is not None and folder.is_dir() and any(folder.iterdir()):
        raise FileExistsError(f"--out {folder}: already holds files; pass --overwrite to replace the report, "
                              f"or choose another --out")
    if json_file is not None and json_file.exists():
        raise FileExistsError(f"--json {json_file}: already exists; pass --overwrite to replace it")


@app.command("eval")
def eval_command(
    model: Annotated[Path, typer.Argument(help="Run directory, checkpoint, .onnx file or pipeline .yaml.")],
    data: _EvalData,
    split: str = "val",
    judge: _EvalJudge = None,
    out: Annotated[Path | None, typer.Option(help="Folder for index.html, metrics.json, per_image.csv "
                                                  "(default results/<model name>).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the means to this JSON file.")] = None,
    weights: _EvalWeights = None,
    learned: _EvalLearned = True,
    max_items: _EvalMaxItems = None,
    device: str = "auto",
    overwrite: _EvalOverwrite = False,
) -> None:
    """Score a model on a dataset split: per-image and mean L1, PSNR, SSIM (+ LPIPS, FID/KID, FCN-scores)."""
    from pixforge.eval.evaluate import save_results, write_json_means
    from pixforge.eval.report import write_eval_page

    _refuse_replacing(out, json_out, overwrite)  # before the evaluation: a refused run costs no time
    result, log = _run_eval(model, data, split, judge, weights, learned, max_items, device)
    folder = out or Path("results") / result.model
    _refuse_replacing(folder, None, overwrite)
    save_results(result, folder)
    page = write_eval_page(folder, [result], [log], f"{result.model} on {Path(data).name}/{split}")
    if json_out is not None:
        write_json_means(result, json_out)
    _print_metrics([result])
    typer.echo(f"{len(result.per_image)} images; report {page}; per image {folder / 'per_image.csv'}")


@app.command("compare")
def compare_command(
    model_a: Annotated[Path, typer.Argument(help="First run (or checkpoint, .onnx, pipeline .yaml).")],
    model_b: Annotated[Path, typer.Argument(help="Second run, compared with the first.")],
    data: _EvalData,
    split: str = "val",
    judge: _EvalJudge = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the report (default results/compare-A-vs-B).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write both means and the difference here.")] = None,
    weights: _EvalWeights = None,
    learned: _EvalLearned = True,
    max_items: _EvalMaxItems = None,
    device: str = "auto",
    overwrite: _EvalOverwrite = False,
) -> None:
    """Two models on the same split: the metrics side by side, with the difference (second − first)."""
    from pixforge.atomic import write_text
    from pixforge.eval.evaluate import save_results, strict_json
    from pixforge.eval.report import write_eval_page

    _refuse_replacing(out, json_out, overwrite)
    a, log_a = _run_eval(model_a, data, split, judge, weights, learned, max_items, device)
    b, log_b = _run_eval(model_b, data, split, judge, weights, learned, max_items, device)
    if a.model == b.model:
        a.model, b.model = f"{a.model} (1)", f"{b.model} (2)"
    folder = out or Path("results") / f"compare-{a.model}-vs-{b.model}".replace(" ", "")
    _refuse_replacing(folder, None, overwrite)
    for e, sub in ((a, "first"), (b, "second")):
        save_results(e, folder / sub)
    page = write_eval_page(folder, [a, b], [log_a, log_b], f"{a.model} vs {b.model} on {Path(data).name}/{split}")
    if json_out is not None:
        diff = {k: b.means[k] - a.means[k] for k in a.means if k in b.means}
        write_text(json_out, strict_json({"first": {"model": a.model, **a.flat_means()},
                                                 "second": {"model": b.model, **b.flat_means()},
                                                 "difference": diff}))
    _print_metrics([a, b])
    typer.echo(f"report {page}")


@pipeline_app.command("run")
def pipeline_run(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.")],
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders of images.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the final PNGs.")],
    keep_intermediates: Annotated[bool, typer.Option(help="Also write each stage's output to OUT/<stage>/.")] = False,
    pair_side: Annotated[str | None, typer.Option(help="Inputs are A|B pair files: take half A or B.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files in --out.")] = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    device: str = "auto",
) -> None:
    """Run images through every stage of a pipeline (checked stage against stage before any image is read)."""
    from pixforge.pipeline import Pipeline
    from pixforge.pipeline.files import run_files

    if pair_side not in (None, "A", "B"):
        raise ValueError(f"--pair-side: expected A or B, got {pair_side!r}")
    pipe = Pipeline.from_yaml(pipeline, device=device)
    with _progress(pipe.name) as advance:
        report = run_files(pipe, inputs, out, keep_intermediates=keep_intermediates,
                           pair_side=pair_side, batch_size=batch_size, overwrite=overwrite,  # type: ignore[arg-type]
                           on_done=advance)
    for source, reason in report.blocked:
        typer.echo(f"blocked {source}: {reason}", err=True)
    kept = "".join(f", {len(paths)} in {out / stage}" for stage, paths in report.intermediates.items())
    typer.echo(f"wrote {_plural(len(report.finals), 'image')} to {out}{kept}" +
               (f" ({len(report.blocked)} blocked by the safety filter)" if report.blocked else ""))
    if report.blocked:
        raise typer.Exit(1)


@judge_app.command("train")
def judge_train(
    data: Annotated[Path, typer.Option(help="Paired dataset with train/ and val/ (photo | label map).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for judge.safetensors and metrics.jsonl.")],
    palette: Annotated[str, typer.Option(help="Palette the label maps are drawn in.")] = "facades",
    label_side: Annotated[str, typer.Option(help="Which half holds the label map: A or B.")] = "B",
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    crop: Annotated[int, typer.Option(min=32, help="Training crop size.")] = 128,
    width: Annotated[int, typer.Option(min=4, help="Channels of the first level.")] = 16,
    seed: int = 0,
    device: str = "auto",
) -> None:
    """Train the judge on the train split; the epoch with the best val class IoU is kept."""
    from pixforge.train.judge import JudgeSettings, train_judge

    if label_side not in ("A", "B"):
        raise ValueError(f"--label-side: expected A or B, got {label_side!r}")
    settings = JudgeSettings(palette=palette, label_side=label_side, epochs=epochs,  # type: ignore[arg-type]
                             batch_size=batch_size, crop=crop, width=width, seed=seed, device=device)
    result = train_judge(data, out, settings)
    s = result.scores
    typer.echo(f"judge {result.path} (epoch {result.epoch}): val pixel acc {s['pixel_acc']:.3f}, "
               f"class acc {s['class_acc']:.3f}, IoU {s['iou']:.3f}")


@app.command()
def presets() -> None:
    """List the presets shipped with pixforge."""
    from pixforge.config import list_presets

    for name in list_presets():
        typer.echo(name)


def main() -> None:
    """Entry point: known errors become one line on stderr and a non-zero exit code."""
    # Standalone mode lets typer report usage errors itself; anything else raised by a command lands here.
    debug = "--debug" in sys.argv[1:]
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as err:
        if debug:
            raise
        text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        message = text.splitlines()[0] if text else err.__class__.__name__
        typer.echo(f"error: {message}", err=True)
        sys.exit(1)


def run() -> None:
    """The ``pixforge`` command (and ``python -m pixforge``): :func:`main`, then the interpreter's last garbage
    collection skipped. That collection walks every object torch made, 0.3-0.6 s a command (5-10% of
    translating 100 images); frozen objects are left to the process's end. Files and threads are closed by then.
    In-process callers (tests) call ``main`` and keep their normal collections."""
    try:
        main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    run()
