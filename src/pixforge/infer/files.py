"""Translate image files and folders to PNGs, decoding and encoding on threads beside the model.

The model runs in the calling thread on batches of equally sized images; a thread pool reads the next
images and writes finished ones meanwhile (Pillow, ONNX Runtime and numpy release the GIL). Every output
goes through :func:`pixforge.provenance.save_generated`: safety filter, watermark, metadata, atomic write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from weakref import WeakKeyDictionary

import numpy as np
import torch

from pixforge.data.image_io import (
    IMAGE_EXTENSIONS,
    ImageError,
    from_tensor,
    list_images,
    read_image,
    to_tensor,
)
from pixforge.infer.translator import Translator
from pixforge.provenance import DEFAULT_SAFETY_FILTER, Provenance, SafetyFilter, UnsafeImageError, save_generated
from pixforge.provenance.weights import file_hash, weights_hash


@dataclass
class TranslateReport:
    written: list[Path]
    failed: list[tuple[Path, str]]
    """Unreadable inputs skipped with ``skip_bad``, and why."""
    blocked: list[tuple[Path, str]] = field(default_factory=list)
    """Inputs whose output the safety filter refused (nothing was written for them), and why."""


_HASHES: WeakKeyDictionary[torch.nn.Module, str] = WeakKeyDictionary()


def model_hash(translator: Translator) -> str:
    """sha256 (hex) of the generator's weights, or of its ONNX file: what the outputs' marks identify.

    Stand-in until ``Translator.model_hash`` lands on main; when the translator has one, it is used.
    Computed once per loaded generator (hashing unet_256's 218 MB takes a few tenths of a second).
    """
    own = getattr(translator, "model_hash", None)
    if isinstance(own, str):
        return own
    generator = translator.generator
    if generator not in _HASHES:
        state = generator.state_dict()
        path = getattr(generator, "path", None)
        # An ONNX generator has no tensors of its own: its weights live in the file.
        _HASHES[generator] = file_hash(path) if not state and isinstance(path, Path) else weights_hash(state)
    return _HASHES[generator]


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders as their images (sorted); an input that is neither is an error."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(list_images(path))
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise ImageError(path, f"not an image file (expected one of {', '.join(sorted(IMAGE_EXTENSIONS))})")
            files.append(path)
        else:
            raise ImageError(path, "no such file or folder")
    return files


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


def translate_files(translator: Translator, inputs: Iterable[str | Path], out_dir: str | Path,
                    batch_size: int = 8, threads: int = 2, skip_bad: bool = False,
                    on_done: Callable[[int], None] | None = None, provenance: Provenance | None = None,
                    safety: SafetyFilter | None = DEFAULT_SAFETY_FILTER) -> TranslateReport:
    """Translate every input image to ``out_dir/<stem>.png`` at the input's own size.

    Unreadable inputs stop the run with an ``ImageError`` naming the file, or with ``skip_bad`` are listed
    in the report and skipped. 16-bit inputs give 16-bit outputs. Outputs the safety filter flags are not
    written; they are listed in ``report.blocked`` and the rest continue. ``provenance`` defaults to the
    translator's model hash and config name (see :func:`model_hash`).
    """
    files = expand_inputs(inputs)
    provenance = provenance or Provenance(model_hash(translator), model_name=translator.config.name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = output_paths(files, out_dir)
    report = TranslateReport([], [])
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        writes: list[tuple[int, Future[Path]]] = []
        for group in _batches(pool, files, translator.input_nc, batch_size, skip_bad, report):
            batch = torch.stack([to_tensor(image) for _, image in group])
            result = translator.forward(batch)
            for (index, image), out in zip(group, result, strict=True):
                array = from_tensor(out, np.uint16 if image.dtype == np.uint16 else np.uint8)
                writes.append((index, pool.submit(save_generated, array, targets[index], provenance, safety=safety)))
            if on_done:
                on_done(len(group))
        for index, write in writes:
            try:
                report.written.append(write.result())
            except UnsafeImageError as err:
                report.blocked.append((files[index], err.reason))
    return report


def _batches(pool: ThreadPoolExecutor, files: list[Path], channels: int, batch_size: int, skip_bad: bool,
             report: TranslateReport) -> Iterator[list[tuple[int, np.ndarray]]]:
    """Decoded images grouped into batches of one size, read a bounded distance ahead on the pool."""
    ahead = 2 * batch_size
    reads: dict[int, Future[np.ndarray]] = {}
    pending: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
    for index in range(len(files)):
        for j in range(index, min(index + ahead, len(files))):
            if j not in reads:
                reads[j] = pool.submit(read_image, files[j], channels)
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
