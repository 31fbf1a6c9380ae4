"""The reference's pretrained generators by name, downloaded and imported as pixforge runs.

Names and URL patterns are those of the reference's ``scripts/download_cyclegan_model.sh``
(``cyclegan/pretrained_models/NAME.pth``) and ``scripts/download_pix2pix_model.sh``
(``pix2pix/models-pytorch/NAME.pth``); the base URL is :func:`pixforge.data.download.resolve_base_url`'s.
The CUT authors' six models (contrastive-unpaired-translation's README) share one archive,
``CUT/pretrained_models.tar``, holding ``checkpoints/NAME_pretrained/latest_net_G.pth``; a download fetches the
archive and extracts that one member (with the dataset extractor's checks). Each file is a bare generator
state_dict with no options beside it, so the importer recognises the architecture from the weights; only
FastCUT's mode, which no weight shows, comes from the name.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from pixforge.data.download import (
    DownloadError,
    check_sha256,
    extract_tar,
    fetch,
    move_into_place,
    refuse_occupied,
    resolve_base_url,
    staging_folder,
    write_record,
)

PIX2PIX_MODELS = ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night")
CYCLEGAN_MODELS = ("apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite",
                   "horse2zebra", "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe",
                   "style_vangogh", "sat2map", "map2sat", "cityscapes_photo2label", "cityscapes_label2photo",
                   "facades_photo2label", "facades_label2photo", "iphone2dslr_flower")
CUT_MODELS = ("horse2zebra_cut", "horse2zebra_fastcut", "cityscapes_cut", "cityscapes_fastcut", "cat2dog_cut",
              "cat2dog_fastcut")
CUT_ARCHIVE = "CUT/pretrained_models.tar"
RECORD_NAME = "download.json"


@dataclass(frozen=True)
class RemoteModel:
    """A generator the reference's scripts download: ``kind`` is the recipe its run gets, ``path`` the file
    under the base URL; ``member``: the ``.pth`` inside that file when it is an archive of several models."""

    name: str
    kind: str
    path: str
    member: str | None = None


# sat2map, map2sat and facades_label2photo are in both scripts: the plain names are pix2pix's (as the datasets'
# facades and maps are); CycleGAN's take a _cyclegan suffix.
MODELS: dict[str, RemoteModel] = {m.name: m for m in [
    *(RemoteModel(name, "pix2pix", f"pix2pix/models-pytorch/{name}.pth") for name in PIX2PIX_MODELS),
    *(RemoteModel(f"{name}_cyclegan" if name in PIX2PIX_MODELS else name, "cyclegan",
                  f"cyclegan/pretrained_models/{name}.pth") for name in CYCLEGAN_MODELS),
    *(RemoteModel(name, "cut", CUT_ARCHIVE, f"checkpoints/{name}_pretrained/latest_net_G.pth") for name in CUT_MODELS),
]}


def remote_model(name: str) -> RemoteModel:
    if name not in MODELS:
        raise DownloadError(f"model '{name}' unknown; known models: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def model_url(name: str, base_url: str | None = None) -> str:
    return f"{resolve_base_url(base_url)}/{remote_model(name).path}"


def _extract_member(archive: Path, remote: RemoteModel, url: str, dest: Path) -> None:
    """Write the archive member ``remote.member`` to ``dest``; the whole archive is checked as a dataset's is."""
    assert remote.member is not None
    folder = dest.parent.with_name(f"{dest.parent.name}.extracted")  # ours: one an interrupted run left is replaced
    extracted = extract_tar(archive, folder, members={remote.member}, overwrite=True)
    found = extracted.joinpath(*remote.member.split("/"))
    if not found.is_file():
        raise DownloadError(f"{url}: the archive holds no '{remote.member}' (the {remote.name} generator)")
    found.rename(dest)


def download_model(name: str, out_run_dir: str | Path, base_url: str | None = None, sha256: str | None = None,
                   overwrite: bool = False, progress: bool = True) -> Path:
    """Download a reference generator and write it as a pixforge run directory; returns ``out_run_dir``.

    The ``.pth`` is fetched beside the run, into a hidden ``.RUN.download/NAME/latest_net_G.pth`` (the reference's
    layout, whose folder names the imported config; a rerun resumes its ``.part``), checked against ``sha256``
    when given, imported into a temporary folder and renamed into place with its digest in ``RUN/download.json``;
    the download folder is removed afterwards. A CUT model's archive is fetched to ``.RUN.download/`` instead
    (``sha256`` and the record are the archive's) and its member extracted to that same ``.pth`` path. A
    non-empty ``out_run_dir`` is replaced only with ``overwrite``."""
    remote = remote_model(name)
    url = model_url(name, base_url)
    expected = check_sha256(sha256)
    run_dir = Path(out_run_dir)
    refuse_occupied(run_dir, overwrite, "run directory")
    downloads = run_dir.with_name(f".{run_dir.name}.download")
    pth = downloads / name / "latest_net_G.pth"
    fetched = pth if remote.member is None else downloads / Path(remote.path).name
    try:
        digest = fetch(url, fetched, sha256=expected, progress=progress)
    except BaseException:
        if not any(downloads.rglob("*.part")):  # nothing to resume (a refused file): leave no trace
            shutil.rmtree(downloads, ignore_errors=True)
        raise
    staged = staging_folder(run_dir)
    try:
        from pixforge.compat.cyclegan import import_bare_generator

        size = fetched.stat().st_size
        if remote.member is not None:
            pth.parent.mkdir(parents=True, exist_ok=True)
            _extract_member(fetched, remote, url, pth)
        options = {"CUT_mode": "FastCUT"} if remote.kind == "cut" and name.endswith("_fastcut") else None
        import_bare_generator(pth, staged / "run", kind=remote.kind, options=options)
        write_record(staged / "run" / RECORD_NAME, name, url, digest, size)
        move_into_place(staged / "run", run_dir, overwrite, "run directory")
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(downloads, ignore_errors=True)
    return run_dir
