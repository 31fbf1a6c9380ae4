"""A self-contained HTML results page: sample triples (input | output | target), loss curves, notes.

Self-contained so that it can be opened from a run folder, mailed or archived and still work offline:
no JavaScript, no web fonts, charts drawn as inline SVG, images as PNG files next to the page.

The generated outputs are written through pixforge.provenance (watermark + metadata; no nudity filter: the
page shows a run's own diagnostics). Small images are shown enlarged and pixelated; the output files are
stored at that enlarged size, so the mark has room and what is on disk is what the page shows.
"""

from __future__ import annotations

import html
import math
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pixforge.data.image_io import write_image
from pixforge.provenance import MIN_MARKED_SIDE, Provenance, enlarge, enlargement, save_generated

SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
"""Colour of the i-th series in a chart (matplotlib's tab10, which stays readable for colour-blind)."""

_MIN_DISPLAY_SIDE = MIN_MARKED_SIDE
"""Small images are scaled up by an integer factor to at least this size, pixelated, not smoothed: the
size at which a generated output's watermark can be read back."""

_MAX_POINTS = 2000
"""Longer series are thinned to about this many points: enough for the eye, small enough to load."""

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; background: #fafafa; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
table { border-collapse: collapse; }
th, td { padding: 4px 8px; text-align: left; vertical-align: top; }
table.notes td:first-child { font-weight: 600; color: #555; }
table.notes tr:nth-child(even), table.samples tr:nth-child(even) { background: #f0f0f0; }
table.samples th { text-align: center; }
table.samples td.num { text-align: right; font-variant-numeric: tabular-nums; color: #555; }
img { display: block; max-width: 320px; height: auto; }
img.pixelated { image-rendering: pixelated; }
figure { display: inline-block; margin: 0 1.5em 1em 0; }
figcaption { font-size: 0.9em; color: #555; }
p.empty { color: #777; font-style: italic; }
"""


# ---------------------------------------------------------------------------------------------
# Charts


def _series(metrics: Sequence[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(step, value) points of ``key``, skipping records without it and non-finite values (a NaN loss)."""
    points = []
    for record in metrics:
        step, value = record.get("step"), record.get(key)
        if _is_number(step) and _is_number(value) and math.isfinite(step) and math.isfinite(value):
            points.append((float(step), float(value)))
    points.sort(key=lambda p: p[0])
    if len(points) > _MAX_POINTS:
        stride = math.ceil(len(points) / _MAX_POINTS)
        points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    return points


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """About ``target`` round tick values (1, 2, 2.5, 5 x 10^k apart) inside [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [i * step for i in range(first, last + 1)]


def _fmt(x: float) -> str:
    """Short tick label: 20000 -> 20k, 0.00020 -> 0.0002, 12.0 -> 12."""
    if x == 0:
        return "0"
    if abs(x) >= 10_000:
        return f"{x / 1000:g}k"
    if abs(x) < 1e-3:
        return f"{x:.0e}"
    return f"{x:.4g}"


_BOOKKEEPING = {"step", "epoch", "lr", "it_s"}
_ADVERSARIAL_G = {"G_GAN", "G_A", "G_B"}


def loss_charts(metrics: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Every loss a run logged, grouped into charts of comparable scale: the adversarial terms (D's and G's),
    the weighted terms (L1, cycle, identity, VGG, feature matching...: weighted by lambdas of 10-100, they
    would flatten the others) and validation metrics. Whatever the recipe, nothing logged is left out."""
    seen: dict[str, None] = {}
    for record in metrics:
        for key, value in record.items():
            if key not in _BOOKKEEPING and isinstance(value, int | float) and not isinstance(value, bool):
                seen.setdefault(key, None)
    groups: dict[str, list[str]] = {"Adversarial losses": [], "Weighted losses": [], "Validation": []}
    for key in seen:
        group = "Validation" if key.startswith("val_") else "Adversarial losses" \
            if key.startswith("D_") or key in _ADVERSARIAL_G else "Weighted losses"
        groups[group].append(key)
    return [(caption, keys) for caption, keys in groups.items() if any(_series(metrics, k) for k in keys)]


def loss_curve_svg(metrics: Sequence[dict[str, Any]], keys: Sequence[str], width: int = 640,
                   height: int = 260) -> str:
    """An inline ``<svg>`` chart of ``keys`` against ``step``: one polyline per present key, legend, ticks.

    Keys absent from every record are left out of the chart and legend; with no data at all the chart
    says so instead of failing, so a page can be written for a run that logged nothing yet.
    """
    left, right, top, bottom = 56, 16, 12, 34
    series = [(key, pts) for key in keys if (pts := _series(metrics, key))]
    title = html.escape(", ".join(keys) + " against step")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{title}" '
           'font-family="system-ui, sans-serif" font-size="11">',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" stroke="#ddd"/>']
    if not series:
        out.append(f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" text-anchor="middle" fill="#777">'
                   f'no data for {html.escape(", ".join(keys))}</text></svg>')
        return "\n".join(out)

    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    if x_hi == x_lo:  # a single logged step: widen so the point sits mid-chart
        x_lo, x_hi = x_lo - 1, x_hi + 1
    pad = (y_hi - y_lo) * 0.05 or abs(y_hi) * 0.1 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return top + (1 - (y - y_lo) / (y_hi - y_lo)) * plot_h

    # Grid and tick labels.
    for ty in _nice_ticks(y_lo, y_hi):
        out.append(f'<line x1="{left}" y1="{py(ty):.1f}" x2="{left + plot_w}" y2="{py(ty):.1f}" '
                   'stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{py(ty) + 4:.1f}" text-anchor="end" fill="#555">'
                   f'{html.escape(_fmt(ty))}</text>')
    for tx in _nice_ticks(x_lo, x_hi, target=6):
        out.append(f'<line x1="{px(tx):.1f}" y1="{top + plot_h}" x2="{px(tx):.1f}" y2="{top + plot_h + 4}" '
                   'stroke="#555"/>')
        out.append(f'<text x="{px(tx):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#555">'
                   f'{html.escape(_fmt(tx))}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" fill="#333">'
               'step</text>')

    # Series, then the legend on top of them (top-right, on a translucent card).
    for i, (key, pts) in enumerate(series):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline data-key="{html.escape(key)}" points="{coords}" fill="none" '
                   f'stroke="{colour}" stroke-width="1.5" stroke-linejoin="round"/>')
        if len(pts) == 1:  # a lone point draws no line: mark it
            out.append(f'<circle cx="{px(pts[0][0]):.1f}" cy="{py(pts[0][1]):.1f}" r="3" fill="{colour}"/>')
    legend_w = 14 + 7 * max(len(key) for key, _ in series) + 26
    lx, ly = left + plot_w - legend_w - 6, top + 6
    out.append(f'<rect x="{lx}" y="{ly}" width="{legend_w}" height="{8 + 15 * len(series)}" '
               'fill="#fff" fill-opacity="0.85" stroke="#ccc"/>')
    for i, (key, _) in enumerate(series):
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        y = ly + 12 + 15 * i
        out.append(f'<line x1="{lx + 6}" y1="{y - 4}" x2="{lx + 24}" y2="{y - 4}" stroke="{colour}" '
                   'stroke-width="2"/>')
        out.append(f'<text x="{lx + 30}" y="{y}" fill="#222">{html.escape(key)}</text>')
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The page


def _img_tag(rel: str, image: np.ndarray, alt: str) -> str:
    h, w = image.shape[:2]
    scale = enlargement(h, w, _MIN_DISPLAY_SIDE)
    if scale > 1:
        return (f'<img class="pixelated" src="{html.escape(rel)}" width="{w * scale}" '
                f'height="{h * scale}" alt="{html.escape(alt)}">')
    return f'<img src="{html.escape(rel)}" width="{w}" height="{h}" alt="{html.escape(alt)}">'


def _mean_l1(output: np.ndarray, target: np.ndarray) -> float | None:
    """Mean |output - target| in the generators' [-1, 1] range, as pix2pix's L1; None if not comparable."""
    if output.shape != target.shape or output.dtype != target.dtype or output.dtype.kind != "u":
        return None
    full = float(np.iinfo(output.dtype).max)
    return float(np.abs(output.astype(np.float64) - target.astype(np.float64)).mean() * 2.0 / full)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_results_page(out_dir: Path, rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                       metrics: list[dict], title: str, notes: dict[str, str] | None = None, *,
                       provenance: Provenance) -> Path:
    """Write ``out_dir/index.html`` (+ ``out_dir/images/NNNN_{input,output,target}.png``); return its path.

    ``provenance`` names the model that made the outputs; their files carry its mark.

    ``rows`` are (input, output, target) HxWxC uint8 arrays; ``metrics`` the records of a run's
    ``metrics.jsonl``. The page shows notes, curves of every loss the run logged (``loss_charts``) and
    the samples, each with its L1 distance to the target.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    parts = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f'<title>{esc(title)}</title>', f'<style>{_CSS}</style>', '</head>', '<body>',
             f'<h1>{esc(title)}</h1>']

    if notes:
        parts.append('<h2>Run</h2>\n<table class="notes">')
        parts += [f'<tr><td>{esc(str(k))}</td><td>{esc(str(v))}</td></tr>' for k, v in notes.items()]
        parts.append('</table>')

    parts.append('<h2>Losses</h2>')
    drawn = 0
    for caption, keys in loss_charts(metrics):
        w, h = (400, 200) if caption == "Validation" else (520, 240)
        parts.append(f'<figure>{loss_curve_svg(metrics, keys, w, h)}'
                     f'<figcaption>{esc(caption)}</figcaption></figure>')
        drawn += 1
    if not drawn:
        parts.append('<p class="empty">No training losses were logged.</p>')

    parts.append('<h2>Samples</h2>')
    if rows:
        parts.append('<table class="samples">\n<tr><th>#</th><th>input</th><th>output</th><th>target</th>'
                     '<th title="mean |output - target| in [-1, 1] units">L1</th></tr>')
        for i, (inp, output, target) in enumerate(rows, start=1):
            cells = []
            for role, image in (("input", inp), ("output", output), ("target", target)):
                image = np.asarray(image)
                rel = f"images/{i:04d}_{role}.png"
                if role == "output":  # generated: marked, stored at the size shown
                    scale = enlargement(image.shape[0], image.shape[1], _MIN_DISPLAY_SIDE)
                    save_generated(enlarge(image, scale), out_dir / rel, provenance, safety=None)
                else:  # the dataset's own images: not generated, so not labelled as such
                    write_image(image, out_dir / rel)
                cells.append(f'<td>{_img_tag(rel, image, f"sample {i} {role}")}</td>')
            l1 = _mean_l1(np.asarray(output), np.asarray(target))
            l1_text = "" if l1 is None else f"{l1:.3f}"
            parts.append(f'<tr><td class="num">{i}</td>{"".join(cells)}<td class="num">{l1_text}</td></tr>')
        parts.append('</table>')
    else:
        parts.append('<p class="empty">No samples.</p>')

    parts += ['</body>', '</html>', '']
    index = out_dir / "index.html"
    _write_text_atomic(index, "\n".join(parts))
    return index


# ---------------------------------------------------------------------------------------------
# The evaluation page (pixforge eval / pixforge compare)

_METRIC_LABELS = {
    "l1": ("L1", "mean |output - target| in [-1, 1] units"),
    "psnr": ("PSNR (dB)", "peak signal-to-noise ratio"),
    "ssim": ("SSIM", "structural similarity, 11x11 Gaussian window"),
    "lpips": ("LPIPS", "learned perceptual distance (AlexNet, v0.1)"),
    "fid": ("FID", "Fréchet Inception distance over the split (biased upwards for small splits)"),
    "kid": ("KID", "kernel Inception distance over the split"),
    "fcn_pixel_acc": ("FCN per-pixel acc.", "judge's labels of the output vs the true label map"),
    "fcn_class_acc": ("FCN per-class acc.", "mean over classes"),
    "fcn_iou": ("FCN class IoU", "mean over classes"),
}
_EXAMPLES = 4
"""Best and worst images by L1 shown on the page."""
_GRID_IMAGES = 16


def _metric_rows(evaluations: Sequence[Any]) -> list[str]:
    keys = [k for k in _METRIC_LABELS if any(k in e.means for e in evaluations)]
    esc = html.escape
    names = [e.model for e in evaluations]
    head = "".join(f"<th>{esc(n)}</th>" for n in names)
    if len(evaluations) == 2:
        head += "<th>difference (second − first)</th>"
    if any(e.upper_bound for e in evaluations):
        head += "<th>real photos (upper bound)</th>"
    rows = [f'<table class="metrics">\n<tr><th>metric</th>{head}</tr>']
    for key in keys:
        label, why = _METRIC_LABELS[key]
        values = [e.means.get(key) for e in evaluations]
        cells = "".join(f'<td class="num">{_num(v)}</td>' for v in values)
        if len(evaluations) == 2:
            a, b = values
            diff = "" if a is None or b is None else _num(b - a, signed=True)
            better = "" if not diff or a == b else (" better" if (b > a) == _higher_is_better(key) else " worse")
            cells += f'<td class="num{better}">{diff}</td>'
        if any(e.upper_bound for e in evaluations):
            cells += f'<td class="num">{_num(evaluations[0].upper_bound.get(key))}</td>'
        rows.append(f'<tr><td title="{esc(why)}">{esc(label)}</td>{cells}</tr>')
    rows.append("</table>")
    return rows


def _higher_is_better(key: str) -> bool:
    return key in ("psnr", "ssim") or key.startswith("fcn_")


def _num(value: float | None, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–" if value is None else str(value)
    digits = 2 if abs(value) >= 10 else 4
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _write_example(out_dir: Path, rel: str, image: np.ndarray, generated: bool, model_hash: str,
                   model_name: str) -> None:
    if generated:  # a run's own diagnostics: marked, not filtered (as sample grids)
        save_generated(image, out_dir / rel, Provenance(model_hash, model_name=model_name), safety=None)
    else:
        write_image(image, out_dir / rel)


def _example_table(out_dir: Path, evaluation: Any, examples: Sequence[Any], tag: str) -> list[str]:
    esc = html.escape
    by_name = {r["image"]: r for r in evaluation.per_image}
    cols = [k for k in ("l1", "psnr", "ssim", "lpips", "fcn_pixel_acc") if k in evaluation.per_image[0]]
    parts = ['<table class="samples">\n<tr><th>image</th><th>input</th><th>output</th><th>target</th>' +
             "".join(f"<th>{esc(_METRIC_LABELS[k][0])}</th>" for k in cols) + "</tr>"]
    for i, ex in enumerate(examples, start=1):
        cells = []
        for role, image in (("input", ex.input), ("output", ex.output), ("target", ex.target)):
            rel = f"images/{tag}_{i:02d}_{role}.png"
            _write_example(out_dir, rel, image, role == "output", evaluation.model_hash, evaluation.model)
            cells.append(f"<td>{_img_tag(rel, image, f'{ex.name} {role}')}</td>")
        record = by_name[ex.name]
        nums = "".join(f'<td class="num">{_num(record.get(k))}</td>' for k in cols)
        parts.append(f'<tr><td>{esc(ex.name)}</td>{"".join(cells)}{nums}</tr>')
    parts.append("</table>")
    return parts


def _grid(examples: Sequence[Any], per_row: int = 2, gap: int = 4) -> np.ndarray:
    """Input | output | target triples tiled ``per_row`` to a row, white gaps, all at the first one's size."""
    h, w = examples[0].output.shape[:2]
    rows = math.ceil(len(examples) / per_row)
    grid = np.full((rows * (h + gap) - gap, per_row * 3 * (w + gap) - gap, 3), 255, np.uint8)
    for n, ex in enumerate(examples):
        r, c = divmod(n, per_row)
        for k, image in enumerate((ex.input, ex.output, ex.target)):
            tile = _rgb8(image)[:h, :w]
            y, x = r * (h + gap), (c * 3 + k) * (w + gap)
            grid[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    return grid


def _rgb8(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    arr = arr[:, :, None] if arr.ndim == 2 else arr
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]


def write_eval_page(out_dir: Path, evaluations: Sequence[Any], logs: Sequence[Sequence[dict[str, Any]]],
                    title: str) -> Path:
    """``out_dir/index.html`` for one evaluation (``pixforge eval``) or two side by side (``pixforge compare``):
    the metrics table, loss curves from each run's ``metrics.jsonl``, the best and worst images by L1 and a
    grid of the first images. ``evaluations`` are ``eval.evaluate.Evaluation``s; ``logs`` their runs' records
    (empty for a pipeline or a bare weights file)."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    esc = html.escape
    first = evaluations[0]
    parts = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f'<title>{esc(title)}</title>', f'<style>{_CSS}{_EVAL_CSS}</style>', '</head>', '<body>',
             f'<h1>{esc(title)}</h1>', '<table class="notes">']
    notes = {"data": f"{first.data}, split '{first.split}', {len(first.per_image)} images "
                     f"(input: side {first.input_side}, target: side {first.target_side})"}
    for e in evaluations:
        notes[f"model {e.model}"] = f"sha256 {e.model_hash[:16]}…"
    if first.judge:
        notes["judge"] = first.judge
    parts += [f'<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>' for k, v in notes.items()]
    parts.append('</table>')

    parts.append('<h2>Metrics</h2>')
    parts += _metric_rows(evaluations)
    skipped = list(dict.fromkeys(s for e in evaluations for s in e.skipped))
    parts += [f'<p class="empty">{esc(s)}</p>' for s in skipped]

    parts.append('<h2>Losses</h2>')
    drawn = 0
    for e, log in zip(evaluations, logs, strict=True):
        for caption, keys in loss_charts(log):
            parts.append(f'<figure>{loss_curve_svg(log, keys, 420, 220)}'
                         f'<figcaption>{esc(e.model)}: {esc(caption.lower())}</figcaption></figure>')
            drawn += 1
    if not drawn:
        parts.append('<p class="empty">No training log (metrics.jsonl) for these models.</p>')

    for i, e in enumerate(evaluations):
        ranked = sorted(e.examples, key=lambda ex, e=e: _l1_of(e, ex.name))
        label = f" ({esc(e.model)})" if len(evaluations) > 1 else ""
        parts.append(f'<h2>Best by L1{label}</h2>')
        parts += _example_table(out_dir, e, ranked[:_EXAMPLES], f"m{i}_best")
        parts.append(f'<h2>Worst by L1{label}</h2>')
        parts += _example_table(out_dir, e, ranked[::-1][:_EXAMPLES], f"m{i}_worst")
        shown = e.examples[:_GRID_IMAGES]
        grid_rel = f"images/m{i}_grid.png"
        grid = _grid(shown)
        _write_example(out_dir, grid_rel, grid, True, e.model_hash, e.model)
        parts.append(f'<h2>Grid{label}: the first {len(shown)} images, input | output | target</h2>')
        parts.append(f'<img class="grid" src="{grid_rel}" width="{grid.shape[1]}" height="{grid.shape[0]}" '
                     f'alt="grid of input, output and target images">')

    parts += ['</body>', '</html>', '']
    index = out_dir / "index.html"
    _write_text_atomic(index, "\n".join(parts))
    return index


def _l1_of(evaluation: Any, name: str) -> float:
    for record in evaluation.per_image:
        if record["image"] == name:
            return float(record["l1"])
    return math.inf


_EVAL_CSS = """
table.metrics td.num, table.metrics th { text-align: right; font-variant-numeric: tabular-nums; }
table.metrics td:first-child, table.metrics th:first-child { text-align: left; }
table.metrics tr:nth-child(even) { background: #f0f0f0; }
table.metrics td.better { color: #1a7f37; }
table.metrics td.worse { color: #b42318; }
img.grid { max-width: 100%; height: auto; }
table.samples img { max-width: 200px; height: auto; }
"""
