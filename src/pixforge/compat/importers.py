"""One entry point for every checkpoint folder pixforge can import: ``import_run(folder, run_dir)``.

Each importer comes with a detector; the first detector that recognises the folder picks its importer. The order
matters where folders look alike: pix2pixHD writes ``opt.txt``, pytorch-CycleGAN-and-pix2pix ``train_opt.txt``;
a CycleGAN run has ``G_A``/``G_B`` files, a CUT run an ``F`` file (PatchNCE's heads); a pretrained download
holds ``latest_net_G.pth`` and no options at all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pixforge.compat.cut import import_cut_run, is_cut_folder
from pixforge.compat.cyclegan import (
    import_bare_folder,
    import_cyclegan_run,
    is_bare_generator_folder,
    is_cyclegan_folder,
)
from pixforge.compat.pix2pixhd import import_hd_run, is_pix2pixhd_folder
from pixforge.compat.reference import ReferenceError, check_new_run_dir, import_reference_run

Detector = Callable[[Path, str], bool]
Importer = Callable[[Path, Path, str], Path]


def _is_pix2pix_folder(folder: Path, epoch: str) -> bool:
    return (folder / "train_opt.txt").is_file() or (folder / f"{epoch}_net_G.pth").is_file()


IMPORTERS: list[tuple[str, Detector, Importer]] = [
    ("pix2pixHD", lambda folder, epoch: is_pix2pixhd_folder(folder), import_hd_run),
    ("CycleGAN", lambda folder, epoch: is_cyclegan_folder(folder), import_cyclegan_run),
    ("CUT", lambda folder, epoch: is_cut_folder(folder), import_cut_run),
    ("bare pretrained generator", is_bare_generator_folder, import_bare_folder),
    ("pix2pix", _is_pix2pix_folder, import_reference_run),
]
"""``(what, detector, importer)``, tried in order."""


def detect_kind(folder: str | Path, epoch: str = "latest") -> str:
    """What ``import_run`` would read ``folder`` as (``pix2pixHD``, ``CycleGAN``, ...)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReferenceError(f"{folder}: not a directory (expected a reference checkpoint folder)")
    for what, detect, _ in IMPORTERS:
        if detect(folder, epoch):
            return what
    raise ReferenceError(f"{folder}: not a checkpoint folder we can import (expected {epoch}_net_G.pth with "
                         f"train_opt.txt or opt.txt, {epoch}_net_G_A.pth + {epoch}_net_G_B.pth, or a pretrained "
                         f"download's {epoch}_net_G.pth alone)")


def import_run(folder: str | Path, run_dir: str | Path, epoch: str = "latest") -> Path:
    """Write a native run directory for any reference checkpoint folder; returns the checkpoint written.
    A non-empty ``run_dir`` is refused before anything is read."""
    check_new_run_dir(run_dir)
    what = detect_kind(folder, epoch)
    importer = next(imp for name, _, imp in IMPORTERS if name == what)
    return importer(Path(folder), Path(run_dir), epoch)
