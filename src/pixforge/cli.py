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

from pixforge.bench.cli import bench_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Image-to-image translation with conditional GANs: paired (pix2pix, pix2pixHD, SPADE) and "
                       "unpaired (CycleGAN).")
export_app = typer.Typer(no_args_is_help=True, help="Export a trained generator to other runtimes.")
app.add_typer(export_app, name="export")
app.add_typer(bench_app, name="bench")
features_app = typer.Typer(no_args_is_help=True, help="pix2pixHD instance features (feature-encoder runs).")
app.add_typer(features_app, name="features")

pipeline_app = typer.Typer(no_args_is_help=True, help="Staged pipelines: translators chained with steps between.")
app.add_typer(pipeline_app, name="pipeline")
judge_app = typer.Typer(no_args_is_help=True, help="The FCN-score judge: a photo -> label map segmenter.")
app.add_typer(judge_app, name="judge")
download_app = typer.Typer(no_args_is_help=True, help="The reference's pretrained models and datasets, by name.")
app.add_typer(download_app, name="download")


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    """Errors print one line; --debug shows the traceback instead."""


DirectionOption = Annotated[str | None, typer.Option(
    help="AtoB or BtoA: which generator of a model that translates both ways (CycleGAN; default AtoB).")]


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
    from pixforge.config import parse_overrides
    from pixforge.train.loop import train as run_training
    from pixforge.train.run_dir import new_run, resumed_run, with_data_root

    overrides = with_data_root(parse_overrides(set_ or []), data)
    if resume is not None and config is not None:
        raise ValueError("train: give --config (a new run) or --resume RUN_DIR (its config.yaml), not both")
    if resume is not None:
        cfg, run_dir = resumed_run(resume, overrides), resume
    elif config is None:
        raise ValueError("train: give --config FILE (or a preset name) or --resume RUN_DIR")
    else:
        cfg, run_dir = new_run(config, overrides, out)
    typer.echo(f"{'resuming' if resume else 'training'} {cfg.name} in {run_dir}")
    result = run_training(cfg, run_dir, resume=resume is not None)
    typer.echo(f"trained {result.step} steps; checkpoint {result.checkpoint}")


@app.command()
def sample(
    model: Annotated[Path, typer.Option("--model", "-m", help="Run directory or checkpoint of a cgan model.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PNG samples.")],
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="A class by name or index; repeat "
                                                     "for several (default: every class).")] = None,
    count: Annotated[int, typer.Option(min=1, help="Samples per label (seeds SEED..SEED+COUNT-1); with --grid "
                                                    "the grid's rows.")] = 8,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    grid: Annotated[bool, typer.Option(help="One grid image instead: rows = seeds, columns = labels.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="auto (bf16 where the hardware has it), fp32, bf16.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace existing files in --out.")] = False,
) -> None:
    """Draw images of the asked classes from a class-conditional model: OUT/CLASS_SEED.png (or OUT/grid.png).

    Sample SEED+i of every label shares one noise vector, so the same seed gives the same image of each
    class. Written enlarged with nearest neighbour to at least 256 pixels a side (for the invisible mark),
    filtered and marked like every output.
    """
    from pixforge.infer.sampler import Sampler
    from pixforge.runtime.device import PRECISIONS, pick_device

    _choice(precision, PRECISIONS, "--precision")
    pick_device(device, option="--device")
    sampler = Sampler.from_pretrained(model, device=device, precision=precision)
    labels = label or sampler.class_names
    indices = [sampler.label_index(x) for x in labels]  # every label checked before anything is written
    names = [sampler.class_names[i] for i in indices]
    if grid:
        targets = [out / "grid.png"]
    else:
        targets = [out / f"{_safe_name(name)}_{seed + i}.png" for name in names for i in range(count)]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]}: already exists ({len(existing)} of the {len(targets)} files); "
                              f"pass --overwrite to replace them")
    out.mkdir(parents=True, exist_ok=True)
    if grid:
        sampler.save(sampler.grid(indices, seeds=count, seed=seed), targets[0], overwrite=True)
    else:
        for n, index in enumerate(indices):
            images = sampler.sample([index] * count, seed=seed)
            for i, image in enumerate(images):
                sampler.save(image, targets[n * count + i], overwrite=True)
    typer.echo(f"wrote {len(targets)} image{'s' if len(targets) != 1 else ''} to {out}")


def _safe_name(name: str) -> str:
    """A class name as a file-name part (class folders may hold spaces or other characters)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "class"


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
    direction: DirectionOption = None,
) -> None:
    """Translate images to OUT/NAME.png at each input's own size (inputs are never overwritten).

    Every output is checked by the safety filter (a flagged one is not written, and the command exits 1
    after the rest), carries pixforge's invisible watermark and XMP metadata; pixforge verify reads them.
    """
    # Set before torch loads OpenMP: its threads spin between the generator's ops and take the cores that the
    # filter and encoders need (100 facades maps: 10.3 -> 8.4 s of CPU, about 0.6 s less wall time).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from pixforge.runtime.components import DIRECTIONS
    from pixforge.runtime.device import PRECISIONS, pick_device
    from pixforge.runtime.scale import SCALE_MODES

    # Every option is checked before the model loads: a typo costs no time.
    _choice(precision, PRECISIONS, "--precision")
    _choice(scale, SCALE_MODES, "--scale")
    if direction is not None:
        _choice(direction, DIRECTIONS, "--direction")
    pick_device(device, option="--device")

    from pixforge.data.image_io import read_image
    from pixforge.infer.files import translate_files
    from pixforge.infer.load import load_translator

    style_image = read_image(style, 3) if style is not None else None  # decoded first: a bad file costs no time
    translator = load_translator(model, direction, device=device, precision=precision, channels_last=channels_last,
                                 scale=scale, paper_test_mode=paper_test_mode)
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
    model: Annotated[Path | None, typer.Option("--model", "-m", help="A run or checkpoint: also say which of its "
                                                                     "generators made each image.")] = None,
) -> None:
    """Check images for pixforge's marks: watermark, XMP metadata, C2PA manifest; one line per image.

    Exit 0 when every image is marked (watermark found or metadata declaring it generated), 1 when any is
    not, 2 when any cannot be read.
    """
    from pixforge.data.image_io import ImageError, list_images
    from pixforge.provenance import verify_file
    from pixforge.provenance.verify import made_by

    hashes: dict[str, str] = {}
    if model is not None:
        from pixforge.runtime.checkpoint import find_checkpoint, read_components

        hashes = {n: c.sha256 for n, c in read_components(find_checkpoint(model)).items()
                  if c.role == "generator" and c.sha256}
    unreadable = unmarked = 0
    for path in [f for p in images for f in (list_images(p) if p.is_dir() else [p])]:
        try:
            report = verify_file(path)
        except ImageError as err:
            typer.echo(f"error: {err}", err=True)
            unreadable += 1
            continue
        origin = ""
        if model is not None:
            names = made_by(report, hashes)
            origin = f" | made by {' or '.join(names)} of {model}" if names else f" | not made by {model}"
        typer.echo(report.line() + origin)
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
    folder: Annotated[Path, typer.Argument(help="Reference checkpoint folder: pix2pix (latest_net_G.pth + "
                                                "train_opt.txt), CycleGAN (latest_net_G_A.pth, G_B, D_A, D_B + "
                                                "train_opt.txt), pix2pixHD (latest_net_G.pth + opt.txt), or a "
                                                "pretrained download (latest_net_G.pth alone).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write (new or empty).")],
    epoch: Annotated[str, typer.Option(help="Which checkpoint: latest or an epoch number.")] = "latest",
) -> None:
    """Convert a pytorch-CycleGAN-and-pix2pix (pix2pix, CycleGAN, bare pretrained generator) or pix2pixHD
    checkpoint into a pixforge run directory."""
    from pixforge.compat.importers import import_run

    path = import_run(folder, out, epoch)
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
    direction: DirectionOption = None,
) -> None:
    """Export a generator to ONNX (dynamic batch, height and width) and check it against PyTorch."""
    from pixforge.infer.export import (
        MAX_OPSET,
        MIN_OPSET,
        PARITY_TOLERANCE,
        check_export_target,
        export_onnx,
        is_class_conditional,
        max_abs_difference,
        sampler_max_abs_difference,
    )
    from pixforge.infer.translator import Translator

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"--opset {opset}: the exporter supports opsets {MIN_OPSET} to {MAX_OPSET}")
    check_export_target(out, model, overwrite, suffix=".onnx")
    if is_class_conditional(model):  # inputs label + z instead of an image
        path = export_onnx(model, out, opset=opset)
        diff = sampler_max_abs_difference(model, path)
    else:
        translator = Translator.from_pretrained(model, direction, device="cpu", precision="fp32")
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
    direction: Annotated[str | None, typer.Option(help="AtoB or BtoA: that generator alone (default: every "
                                                       "generator of the model).")] = None,
) -> None:
    """The generators and the config only (no discriminator, no optimiser state): for sharing and serving."""
    from pixforge.infer.export import WEIGHT_DTYPES, check_export_target, export_weights

    _choice(dtype, tuple(WEIGHT_DTYPES), "--dtype")
    check_export_target(out, model, overwrite, suffix=".safetensors")
    path = export_weights(model, out, dtype, direction)
    typer.echo(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MB)")


@app.command()
def serve(
    model: Annotated[list[str], typer.Option("--model", "-m", help="NAME=RUN_DIR, NAME=CHECKPOINT or NAME=FILE.onnx, "
                                                                  "with :AtoB or :BtoA after the path to pick one way "
                                                                  "of a two-way model (repeat for more models).")],
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


def _eval_model(path: Path, device: str, direction: str | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """A run directory, checkpoint, weights or .onnx file, or a pipeline .yaml -> (model, its training log)."""
    from pixforge.eval.evaluate import TranslatorModel
    from pixforge.infer.load import is_onnx, load_translator
    from pixforge.train.metrics_log import read_metrics

    if path.suffix.lower() in (".yaml", ".yml"):
        from pixforge.pipeline import Pipeline

        return Pipeline.from_yaml(path, device=device), []
    translator = load_translator(path, direction) if is_onnx(path) else \
        load_translator(path, direction, device=device)
    log = path / "metrics.jsonl"
    name = path.name if path.is_dir() else path.stem
    if translator.direction == "BtoA" and not is_onnx(path):
        name += "-BtoA"
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
              learned: bool, max_items: int | None, device: str, layout: str | None = None
              ) -> tuple[Any, list[dict[str, Any]]]:
    from rich.progress import Progress

    from pixforge.eval.evaluate import evaluate
    from pixforge.eval.fcn_score import Judge
    from pixforge.infer.load import split_direction

    path, direction = split_direction(str(model_path))
    model, log = _eval_model(Path(path), device, direction)
    judge_net = Judge.load(judge) if judge is not None else None
    with Progress(transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(f"eval {model.name}", total=None)
        result = evaluate(model, data, split, judge=judge_net, learned_metrics=learned, weights=weights,
                          max_items=max_items, on_done=lambda n: bar.advance(task, n), layout=layout)
    return result, log


_EvalData = Annotated[Path, typer.Option(help="Paired dataset folder (holding the split).")]
_EvalJudge = Annotated[Path | None, typer.Option(help="A judge (pixforge judge train): adds the FCN-scores.")]
_EvalWeights = Annotated[Path | None, typer.Option(help="Folder of LPIPS/FID weight files "
                                                        "(default $PIXFORGE_WEIGHTS or ~/.cache/pixforge/weights).")]
_EvalLearned = Annotated[bool, typer.Option(help="LPIPS and FID/KID where their weights are present.")]
_EvalLayout = Annotated[str | None, typer.Option(help="How the pairs are stored: aligned (A|B files), folders (A/, "
                                                      "B/) or pix2pixhd (default: as the model was trained; "
                                                      "aligned for a model trained on unpaired data).")]


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
    model: Annotated[Path, typer.Argument(help="Run directory, checkpoint, .onnx file or pipeline .yaml (a two-way "
                                               "model's other direction: RUN:BtoA).")],
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
    layout: _EvalLayout = None,
) -> None:
    """Score a model on a dataset split: per-image and mean L1, PSNR, SSIM (+ LPIPS, FID/KID, FCN-scores)."""
    from pixforge.eval.evaluate import save_results, write_json_means
    from pixforge.eval.report import write_eval_page

    _refuse_replacing(out, json_out, overwrite)  # before the evaluation: a refused run costs no time
    from pixforge.infer.export import is_class_conditional

    if model.suffix not in (".onnx", ".yaml", ".yml") and ":" not in model.name and model.exists() \
            and is_class_conditional(model):
        _eval_class_conditional(model, data, judge, out, json_out, device, weights, learned)
        return
    result, log = _run_eval(model, data, split, judge, weights, learned, max_items, device, layout)
    folder = out or Path("results") / result.model
    _refuse_replacing(folder, None, overwrite)
    save_results(result, folder)
    page = write_eval_page(folder, [result], [log], f"{result.model} on {Path(data).name}/{split}")
    if json_out is not None:
        write_json_means(result, json_out)
    _print_metrics([result])
    typer.echo(f"{len(result.per_image)} images; report {page}; per image {folder / 'per_image.csv'}")


def _eval_class_conditional(model: Path, data: Path, judge: Path | None, out: Path | None, json_out: Path | None,
                            device: str, weights: Path | None, learned: bool) -> None:
    """``eval`` of a class-conditional model: per-class accuracy (read by the classifier judge) and diversity."""
    import json

    from pixforge.atomic import write_text
    from pixforge.eval.class_score import ClassifierJudge, score_class_conditional
    from pixforge.infer.sampler import Sampler

    if judge is None:
        raise ValueError("--judge: a class-conditional model is scored by a classifier of its data; make one with "
                         "pixforge judge train --kind classifier --data DATA --out JUDGE")
    sampler = Sampler.from_pretrained(model, device=device)
    scores = score_class_conditional(sampler, ClassifierJudge.load(judge), data, weights=weights, learned=learned)
    folder = out or Path("results") / sampler.config.name
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(scores.to_dict(), indent=2) + "\n"
    write_text(folder / "metrics.json", text)
    if json_out is not None:
        write_text(json_out, text)
    typer.echo(f"{'class':<12} {'accuracy':>9} {'diversity':>10} {'real':>8} {'ratio':>6}")
    for name, row in scores.per_class.items():
        typer.echo(f"{name:<12} {row['accuracy']:>9.3f} {row['diversity']:>10.3f} "
                   f"{row.get('real_diversity', float('nan')):>8.3f} {row.get('diversity_ratio', float('nan')):>6.2f}")
    learned_text = "".join(f", {k.upper()} {v:.4g}" for k, v in scores.learned.items())
    typer.echo(f"mean accuracy {scores.accuracy:.3f}, diversity ratio {scores.diversity_ratio:.2f}{learned_text} "
               f"({scores.samples_per_class} samples per class); {folder / 'metrics.json'}")
    for line in scores.skipped:
        typer.echo(line)


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
    layout: _EvalLayout = None,
) -> None:
    """Two models on the same split: the metrics side by side, with the difference (second − first)."""
    from pixforge.atomic import write_text
    from pixforge.eval.evaluate import save_results, strict_json
    from pixforge.eval.report import write_eval_page

    _refuse_replacing(out, json_out, overwrite)
    a, log_a = _run_eval(model_a, data, split, judge, weights, learned, max_items, device, layout)
    b, log_b = _run_eval(model_b, data, split, judge, weights, learned, max_items, device, layout)
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
    data: Annotated[Path, typer.Option(help="fcn: a paired dataset with train/ and val/ (photo | label map); "
                                            "classifier: labelled images (class folders or MNIST IDX files).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for judge.safetensors and metrics.jsonl.")],
    kind: Annotated[str, typer.Option(help="fcn (photo -> label map, for FCN-scores) or classifier (image -> "
                                           "class, for class-conditional models).")] = "fcn",
    palette: Annotated[str, typer.Option(help="fcn: palette the label maps are drawn in.")] = "facades",
    label_side: Annotated[str, typer.Option(help="fcn: which half holds the label map: A or B.")] = "B",
    epochs: Annotated[int | None, typer.Option(min=1, help="Default: 30 (fcn), 4 (classifier).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Default: 8 (fcn), 64 (classifier).")] = None,
    crop: Annotated[int, typer.Option(min=32, help="fcn: training crop size.")] = 128,
    size: Annotated[int, typer.Option(min=8, help="classifier: image side it reads.")] = 28,
    channels: Annotated[int, typer.Option(min=1, max=3, help="classifier: image channels.")] = 1,
    width: Annotated[int | None, typer.Option(min=4, help="Channels of the first level (16 fcn, 32 "
                                                          "classifier).")] = None,
    seed: int = 0,
    device: str = "auto",
) -> None:
    """Train a judge: the FCN judge keeps the epoch with the best val class IoU, the classifier the one with the
    best accuracy on a held-out tenth of every class."""
    _choice(kind, ("fcn", "classifier"), "--kind")
    if kind == "classifier":
        from pixforge.train.classifier_judge import ClassifierSettings, train_classifier

        settings_c = ClassifierSettings(image_size=size, channels=channels, epochs=epochs or 4,
                                        batch_size=batch_size or 64, width=width or 32, seed=seed, device=device)
        found = train_classifier(data, out, settings_c)
        typer.echo(f"judge {found.path} (epoch {found.epoch}): held-out accuracy {found.accuracy:.3f}")
        return
    from pixforge.train.judge import JudgeSettings, train_judge

    epochs, batch_size, width = epochs or 30, batch_size or 8, width or 16
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


_BASE_URL_HELP = "Replaces the reference's host http://efrosgans.eecs.berkeley.edu (env PIXFORGE_DOWNLOAD_BASE_URL)."


@download_app.command("model")
def download_model_command(
    name: Annotated[str, typer.Argument(help="A model of the reference's download scripts, e.g. horse2zebra, "
                                             "or of the CUT authors', e.g. horse2zebra_cut.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory (default runs/NAME).")] = None,
    base_url: Annotated[str | None, typer.Option(help=_BASE_URL_HELP)] = None,
    sha256: Annotated[str | None, typer.Option(help="Refuse the .pth (CUT: the archive) unless its SHA-256 is "
                                                    "this.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out.")] = False,
) -> None:
    """Download a pretrained reference generator and import it as a run directory (resumes a cut transfer)."""
    from pixforge.compat.download_model import download_model

    run_dir = download_model(name, out or Path("runs") / name, base_url=base_url, sha256=sha256, overwrite=overwrite)
    typer.echo(f"wrote {run_dir}")


@download_app.command("dataset")
def download_dataset_command(
    name: Annotated[str, typer.Argument(help="A dataset of the reference's download scripts, e.g. facades.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Dataset folder (default datasets/NAME).")] = None,
    base_url: Annotated[str | None, typer.Option(help=_BASE_URL_HELP)] = None,
    sha256: Annotated[str | None, typer.Option(help="Refuse the archive unless its SHA-256 is this.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out.")] = False,
) -> None:
    """Download and extract a reference dataset (resumes a cut transfer; refuses unsafe archives)."""
    from pixforge.data.download import download_dataset

    folder = download_dataset(name, base_url=base_url, sha256=sha256, overwrite=overwrite, dest=out)
    typer.echo(f"wrote {folder}")

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
