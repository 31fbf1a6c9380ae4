"""Translate image files and folders to PNGs, decoding and encoding on threads beside the model.

The model runs in the calling thread on batches of equally sized images; a thread pool reads the next
images and converts and writes finished ones meanwhile (Pillow, ONNX Runtime and numpy release the GIL).
Every output goes through :func:`pixforge.provenance.save_generated`: safety filter, watermark, metadata, atomic write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pixforge.data.image_io import (
    IMAGE_EXTENSIONS,
    ImageError,
    from_tensor,
    list_images,
)
from pixforge.infer.translator import Translator
from pixforge.provenance import DEFAULT_SAFETY_FILTER, Provenance, SafetyFilter, UnsafeImageError, save_generated


@dataclass
class TranslateReport:
    written: list[Path]
    failed: list[tuple[Path, str]]
    """Unreadable inputs skipped with ``skip_bad``, and why."""
    blocked: list[tuple[Path, str]] = field(default_factory=list)
    """Inputs whose output the safety filter refused (nothing was written for them), and why."""


class NothingTranslated(ValueError):
    """A translation that wrote no image: every input was skipped or refused."""


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders as their images (sorted), each file once however often it is named; an input
    that is neither, or no image at all, is an error naming it."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise ImageError(path, f"folder holds no images (expected {', '.join(sorted(IMAGE_EXTENSIONS))})")
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise ImageError(path, f"not an image file (expected one of {', '.join(sorted(IMAGE_EXTENSIONS))})")
            files.append(path)
        elif path.is_symlink():
            raise ImageError(path, "a broken symbolic link or a link loop; expected an image file or folder")
        elif path.exists():
            raise ImageError(path, "not a regular file (a FIFO, socket or device); expected an image file or folder")
        else:
            raise ImageError(path, "no such file or folder")
    if not files:
        raise ImageError("translate", "no inputs given")
    seen: set[Path] = set()
    # A file named twice (a folder given twice, or a file and its folder) is one input, not a copy `a_1.png`.
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]


def output_paths(files: list[Path], out_dir: Path) -> list[Path]:
    """``out_dir/<stem>.png``, made unique where two inputs share a stem; never an input file itself."""
    inputs = {f.resolve() for f in files}
    taken: set[Path] = set()
    outs = []
    for f in files:
        candidate, n = out_dir / f"{f.stem}.png", 1
        while candidate in taken or candidate.resolve() in inputs:
            candidate, n = out_dir / f"{f.stem}_{n}.png", n + 1
        taken.add(candidate)
        outs.append(candidate)
    return outs


def check_out_dir(inputs: Iterable[str | Path], out_dir: Path, targets: list[Path], overwrite: bool) -> None:
    """Refuse an output folder that is an input folder, and existing files unless ``overwrite``: before any
    image is translated, so a refused run changes nothing."""
    out = out_dir.resolve()
    for item in inputs:
        if Path(item).is_dir() and Path(item).resolve() == out:
            raise ValueError(f"--out {out_dir}: is an input folder; the outputs would mix with the inputs and be "
                             f"translated again on the next run; choose another folder")
    if overwrite:
        return
    existing = [t for t in targets if t.exists() or t.is_symlink()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]}: already exists{more}; pass --overwrite to replace, or choose "
                              f"another --out")


def translate_files(translator: Translator, inputs: Iterable[str | Path], out_dir: str | Path,
                    batch_size: int = 8, threads: int = 2, skip_bad: bool = False, overwrite: bool = False,
                    on_done: Callable[[int], None] | None = None, provenance: Provenance | None = None,
                    safety: SafetyFilter | None = DEFAULT_SAFETY_FILTER) -> TranslateReport:
    """Translate every input image to ``out_dir/<stem>.png`` at the input's own size.

    Unreadable inputs stop the run with an ``ImageError`` naming the file, or with ``skip_bad`` are listed
    in the report and skipped; a run that writes nothing raises ``NothingTranslated``. Existing outputs are
    refused unless ``overwrite``. 16-bit inputs give 16-bit outputs. Every output goes through the safety
    filter: a flagged one is not written, its input is listed in ``report.blocked``, and the rest continue.
    ``provenance`` (what the marks say) defaults to the translator's model hash and config name.
    """
    inputs = list(inputs)
    files = expand_inputs(inputs)
    provenance = provenance or Provenance(translator.model_hash, model_name=translator.config.name)
    out_dir = Path(out_dir)
    targets = output_paths(files, out_dir)
    check_out_dir(inputs, out_dir, targets, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = TranslateReport([], [])
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        writes: list[tuple[int, Future[Path]]] = []
        for group in _batches(pool, files, translator.read_input, batch_size, skip_bad, report):
            batch = torch.stack([translator.to_model_tensor(image) for _, image in group])
            result = translator.forward(batch)
            for (index, image), out in zip(group, result, strict=True):
                depth = np.uint16 if image.dtype == np.uint16 else np.uint8
                writes.append((index, pool.submit(_write, out, depth, targets[index], provenance, safety)))
            if on_done:
                on_done(len(group))
        for index, write in writes:
            try:
                report.written.append(write.result())
            except UnsafeImageError as err:
                report.blocked.append((files[index], err.reason))
    if not report.written:
        first = (f"; first: {report.failed[0][1]}" if report.failed else
                 f"; first: {report.blocked[0][0]}: {report.blocked[0][1]}" if report.blocked else "")
        raise NothingTranslated(f"translate: all {len(files)} input(s) were skipped or blocked, nothing was "
                                f"written{first}")
    return report


def _write(out: torch.Tensor, depth: type[np.integer], target: Path, provenance: Provenance,
           safety: SafetyFilter | None) -> Path:
    """On a writer thread, off the model's path: to integers, then the one writer of generated images."""
    return save_generated(from_tensor(out, depth), target, provenance, safety=safety)


def _batches(pool: ThreadPoolExecutor, files: list[Path], read: Callable[[Path], np.ndarray], batch_size: int,
             skip_bad: bool, report: TranslateReport) -> Iterator[list[tuple[int, np.ndarray]]]:
    """Decoded images grouped into batches of one size, read a bounded distance ahead on the pool."""
    ahead = 2 * batch_size
    reads: dict[int, Future[np.ndarray]] = {}
    pending: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
    for index in range(len(files)):
        for j in range(index, min(index + ahead, len(files))):
            if j not in reads:
                reads[j] = pool.submit(read, files[j])
        try:
            image = reads.pop(index).result()
        except ImageError as err:
            if not skip_bad:
                for later in reads.values():
                    later.cancel()
                raise
            report.failed.append((files[index], str(err)))
            continue
        group = pending.setdefault(image.shape[:2], [])
        group.append((index, image))
        if len(group) == batch_size:
            yield pending.pop(image.shape[:2])
    yield from (g for g in pending.values() if g)
