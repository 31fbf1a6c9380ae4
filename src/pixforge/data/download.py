"""Downloads: the reference's datasets by name, resumable HTTP transfers and archive extraction that stays inside.

The names and URL patterns are those of the reference's ``datasets/download_cyclegan_dataset.sh`` (``.zip``) and
``datasets/download_pix2pix_dataset.sh`` (``.tar.gz``). ``--base-url`` or ``PIXFORGE_DOWNLOAD_BASE_URL`` replaces
their host (a mirror, or a test server); the paths under it stay the reference's.

A transfer goes to ``DEST.part`` and is renamed to ``DEST`` only when complete, so a cut connection is resumed
with a ``Range`` request on the next run. Archives come from strangers: a member that would land outside the
target (absolute, ``..``), a link, a device or a total past the size limit is refused before anything lands in
the target, which appears whole (a renamed temporary folder) or not at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pixforge.atomic import write_text

DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu"  # the reference's scripts' host
BASE_URL_ENV = "PIXFORGE_DOWNLOAD_BASE_URL"
# The largest archive named here, edges2handbags.tar.gz, is about 8.6 GB; the limits leave room and stop a
# runaway server or a zip bomb long before a disk fills.
MAX_DOWNLOAD_BYTES = 20 * 2**30
MAX_EXTRACTED_BYTES = 40 * 2**30
RECORD_NAME = ".pixforge-download.json"
_CHUNK = 1 << 20


class DownloadError(ValueError):
    """A download or an archive failed or was refused; the message names the URL or archive (and member)."""


@dataclass(frozen=True)
class RemoteDataset:
    """A dataset the reference's scripts download: ``path`` is the archive under the base URL."""

    name: str
    path: str

    @property
    def archive_suffix(self) -> str:
        return ".tar.gz" if self.path.endswith(".tar.gz") else ".zip"


def _cyclegan(name: str, file: str | None = None) -> RemoteDataset:
    return RemoteDataset(name, f"cyclegan/datasets/{file or name}.zip")


def _pix2pix(name: str) -> RemoteDataset:
    return RemoteDataset(name, f"pix2pix/datasets/{name}.tar.gz")


# facades and maps are in both scripts: the plain names are pix2pix's aligned A|B pairs (train/ val/ test/);
# CycleGAN's unpaired trainA/ trainB/ versions take a _cyclegan suffix.
DATASETS: dict[str, RemoteDataset] = {d.name: d for d in [
    _pix2pix("facades"), _pix2pix("maps"), _pix2pix("night2day"), _pix2pix("edges2shoes"),
    _pix2pix("edges2handbags"),
    _cyclegan("ae_photos"), _cyclegan("apple2orange"), _cyclegan("summer2winter_yosemite"),
    _cyclegan("horse2zebra"), _cyclegan("monet2photo"), _cyclegan("cezanne2photo"), _cyclegan("ukiyoe2photo"),
    _cyclegan("vangogh2photo"), _cyclegan("iphone2dslr_flower"), _cyclegan("facades_cyclegan", "facades"),
    _cyclegan("maps_cyclegan", "maps"), _cyclegan("mini"), _cyclegan("mini_pix2pix"),
    _cyclegan("mini_colorization"),
]}
NOT_DOWNLOADABLE = {
    "cityscapes": "its license forbids redistribution; get gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip "
                  "from https://www.cityscapes-dataset.com and pair them as the reference's "
                  "datasets/prepare_cityscapes_dataset.py does",
}


# -- URLs --------------------------------------------------------------------------------------------------


def resolve_base_url(base_url: str | None = None) -> str:
    """``base_url``, else ``$PIXFORGE_DOWNLOAD_BASE_URL``, else the reference's host; no trailing slash."""
    source = "--base-url" if base_url else BASE_URL_ENV if os.environ.get(BASE_URL_ENV) else None
    url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
        raise DownloadError(f"{source} '{url}': expected http(s)://HOST[:PORT][/PATH], e.g. {DEFAULT_BASE_URL}")
    return url


def check_sha256(sha256: str | None) -> str | None:
    """A user's ``--sha256`` in canonical form (64 lower-case hex digits), or None."""
    if sha256 is None:
        return None
    text = sha256.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise DownloadError(f"--sha256 '{sha256}': expected 64 hexadecimal digits (a SHA-256 digest)")
    return text


def remote_dataset(name: str) -> RemoteDataset:
    if name in NOT_DOWNLOADABLE:
        raise DownloadError(f"dataset '{name}' cannot be downloaded: {NOT_DOWNLOADABLE[name]}")
    if name not in DATASETS:
        raise DownloadError(f"dataset '{name}' unknown; known datasets: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def dataset_url(name: str, base_url: str | None = None) -> str:
    return f"{resolve_base_url(base_url)}/{remote_dataset(name).path}"


# -- transfers ---------------------------------------------------------------------------------------------


def _request(url: str, start: int, timeout: float) -> http.client.HTTPResponse | None:
    """The response for ``url`` from byte ``start``; None when the server says that range is past the end."""
    headers = {"User-Agent": "pixforge", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and start:
            return None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise DownloadError(f"{url}: cannot connect ({err.reason})") from None
    except (TimeoutError, OSError, http.client.HTTPException) as err:
        raise DownloadError(f"{url}: request failed ({err.__class__.__name__}: {err})") from None


def _content_range_start(response: http.client.HTTPResponse) -> tuple[int, int | None] | None:
    """(first byte, total size or None) of a 206 response's ``Content-Range``."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", (response.headers.get("Content-Range") or "").strip())
    if not match:
        return None
    return int(match.group(1)), None if match.group(3) == "*" else int(match.group(3))


def _content_length(response: http.client.HTTPResponse) -> int | None:
    text = response.headers.get("Content-Length")
    return int(text) if text and text.strip().isdigit() else None


@contextlib.contextmanager
def _progress_bar(enabled: bool, label: str, total: int | None, done: int) -> Iterator[Callable[[int], None]]:
    """A rich transfer bar on stderr when it is a terminal (the calls cost nothing otherwise)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(label, total=total, completed=done)
        yield lambda n: bar.advance(task, n)


def _hash_file(path: Path, digest: hashlib._Hash) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)


def fetch(url: str, dest: str | Path, sha256: str | None = None, progress: bool = True,
          max_bytes: int = MAX_DOWNLOAD_BYTES, timeout: float = 60.0) -> str:
    """Download ``url`` to ``dest``; returns the file's SHA-256 (hex).

    The bytes go to ``DEST.part``; one left by an interrupted run is continued with a ``Range`` request (a
    server that ignores it and sends the whole file from 0 is followed from 0). ``dest`` is replaced only by a
    complete file (the length the server announced) whose digest matches ``sha256`` when one is given; a
    mismatch discards the download and leaves ``dest`` as it was."""
    dest = Path(dest)
    expected = check_sha256(sha256)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http:// and https:// URLs are downloaded")
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    start = part.stat().st_size if part.is_file() else 0
    response = _request(url, start, timeout)
    if response is None:  # 416: the part is as long as the file (or longer); nothing to continue
        part.unlink()
        start = 0
        response = _request(url, 0, timeout)
    assert response is not None
    with response:
        total = _content_length(response)
        if start and response.status == 206:
            content_range = _content_range_start(response)
            if content_range is None or content_range[0] != start:
                raise DownloadError(f"{url}: the server answered a resume from byte {start} with Content-Range "
                                    f"'{response.headers.get('Content-Range')}'; delete {part} to start over")
            total = content_range[1] if content_range[1] is not None else \
                (start + total if total is not None else None)
        else:
            start = 0  # a 200 to a Range request: the server sends the whole file again
        if total is not None and total > max_bytes:
            raise DownloadError(f"{url}: {total} bytes is more than the limit of {max_bytes}")
        digest = hashlib.sha256()
        if start:
            _hash_file(part, digest)
        size = start
        with open(part, "ab" if start else "wb") as f, _progress_bar(progress, dest.name, total, start) as advance:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (http.client.IncompleteRead, OSError):
                    break  # the connection dropped: the length check below reports it and keeps the part
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    f.close()
                    part.unlink()
                    raise DownloadError(f"{url}: more than the limit of {max_bytes} bytes; the download was "
                                        f"discarded")
                f.write(chunk)
                digest.update(chunk)
                advance(len(chunk))
            f.flush()
            os.fsync(f.fileno())
    if total is not None and size < total:
        raise DownloadError(f"{url}: the transfer stopped after {size} of {total} bytes; run the same command "
                            f"again to resume from {part}")
    if total is not None and size > total:
        part.unlink()
        raise DownloadError(f"{url}: received {size} bytes, more than the {total} announced; the download was "
                            f"discarded")
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        part.unlink()
        raise DownloadError(f"{url}: SHA-256 {actual} does not match the expected {expected}; the download was "
                            f"discarded" + (f" ({dest} is unchanged)" if dest.exists() else ""))
    os.replace(part, dest)
    return actual


# -- folders that appear whole -----------------------------------------------------------------------------


def _occupied(folder: Path) -> bool:
    return folder.is_symlink() or folder.is_file() or (folder.is_dir() and any(folder.iterdir()))


def refuse_occupied(folder: str | Path, overwrite: bool, what: str = "destination") -> None:
    """Raise unless ``folder`` is missing or empty, or ``overwrite`` allows replacing it."""
    folder = Path(folder)
    if not overwrite and _occupied(folder):
        raise DownloadError(f"{folder}: the {what} exists and is not empty; pass --overwrite to replace it")


def staging_folder(folder: str | Path) -> Path:
    """A new empty temporary folder beside ``folder`` (the same file system, so it can be renamed there)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))


def move_into_place(staged: str | Path, folder: str | Path, overwrite: bool = False, what: str = "destination") -> Path:
    """Rename the finished folder ``staged`` to ``folder``; a non-empty ``folder`` is replaced only with
    ``overwrite`` (it is moved aside first and deleted after, so a failed rename puts it back)."""
    staged, folder = Path(staged), Path(folder)
    refuse_occupied(folder, overwrite, what)
    aside = None
    if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()
    elif folder.exists() or folder.is_symlink():
        aside = staging_folder(folder)
        os.rename(folder, aside / "old")
    try:
        os.rename(staged, folder)
    except BaseException:
        if aside is not None:
            os.rename(aside / "old", folder)
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    return folder


def write_record(path: str | Path, name: str, url: str, sha256: str, size: int) -> Path:
    """The provenance of a download as a small JSON file (written atomically)."""
    record = {"name": name, "url": url, "sha256": sha256, "bytes": size,
              "date": datetime.now(UTC).isoformat(timespec="seconds")}
    return write_text(path, json.dumps(record, indent=2) + "\n")


# -- archives ----------------------------------------------------------------------------------------------


def _member_parts(archive: Path, name: str) -> list[str]:
    """The path components of an archive member, refusing any that would land outside the target."""
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise DownloadError(f"{archive}: member '{name}' has an absolute path; refusing to extract the archive")
    parts = re.split(r"[/\\]", name)
    if ".." in parts:
        raise DownloadError(f"{archive}: member '{name}' has a '..' component that leads outside the target; "
                            f"refusing to extract the archive")
    return [p for p in parts if p not in ("", ".")]


def _too_big(archive: Path, name: str, limit: int) -> DownloadError:
    return DownloadError(f"{archive}: member '{name}' takes the uncompressed total past the limit of {limit} bytes; "
                         f"refusing to extract the archive")


def _copy(src: IO[bytes], target: Path, archive: Path, name: str, budget: list[int], limit: int) -> None:
    """Copy one member; ``budget`` counts what is left of the limit across members (sizes in headers can lie)."""
    with open(target, "wb") as out:
        while chunk := src.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise _too_big(archive, name, limit)
            out.write(chunk)


def _extract(archive: Path, folder: Path, fill: Callable[[Path], None], overwrite: bool,
             unwrap_top_folder: bool) -> Path:
    refuse_occupied(folder, overwrite)
    staged = staging_folder(folder)
    try:
        fill(staged)
        root = staged
        entries = list(staged.iterdir())
        if unwrap_top_folder and len(entries) == 1 and entries[0].is_dir():
            root = entries[0]
        move_into_place(root, folder, overwrite)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return folder


def _member_error(archive: Path, name: str, err: Exception) -> DownloadError:
    return DownloadError(f"{archive}: member '{name}' cannot be extracted ({err.__class__.__name__}: {err})")


def extract_zip(archive: str | Path, folder: str | Path, max_total_bytes: int = MAX_EXTRACTED_BYTES, *,
                overwrite: bool = False, unwrap_top_folder: bool = False) -> Path:
    """Extract a zip so that its members become ``folder``'s contents; returns ``folder``.

    Every member is checked before one byte is written; ``unwrap_top_folder``: an archive holding one top
    folder (``horse2zebra/trainA/...``) gives that folder's contents instead."""
    archive, folder = Path(archive), Path(folder)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise DownloadError(f"{archive}: not a readable zip archive ({err})") from None
    with zf:
        members, total = [], 0
        for info in zf.infolist():
            parts = _member_parts(archive, info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                raise DownloadError(f"{archive}: member '{info.filename}' is a symbolic link; refusing to extract "
                                    f"the archive")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise DownloadError(f"{archive}: member '{info.filename}' is not a file or folder; refusing to "
                                    f"extract the archive")
            total += info.file_size
            if total > max_total_bytes:
                raise _too_big(archive, info.filename, max_total_bytes)
            if parts:
                members.append((info, parts))

        def fill(staged: Path) -> None:
            budget = [max_total_bytes]
            for info, parts in members:
                target = staged.joinpath(*parts)
                try:
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src:
                        _copy(src, target, archive, info.filename, budget, max_total_bytes)
                except DownloadError:
                    raise
                except (OSError, zipfile.BadZipFile, EOFError, ValueError) as err:
                    raise _member_error(archive, info.filename, err) from None

        return _extract(archive, folder, fill, overwrite, unwrap_top_folder)


def _open_tar(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as err:
        raise DownloadError(f"{archive}: not a readable tar archive ({err})") from None


def extract_tar(archive: str | Path, folder: str | Path, max_total_bytes: int = MAX_EXTRACTED_BYTES, *,
                overwrite: bool = False, unwrap_top_folder: bool = False,
                members: Collection[str] | None = None) -> Path:
    """As :func:`extract_zip` for a (compressed) tar; members are checked as they stream past (one pass over a
    .tar.gz), and a refusal removes what was written, so ``folder`` still appears whole or not at all.

    ``members``: write only the files so named (``a/b.pth``), e.g. one model of an archive of several; every
    member is still checked, so an archive with one unsafe member is refused whichever are asked for."""
    archive, folder = Path(archive), Path(folder)
    tf = _open_tar(archive)

    def fill(staged: Path) -> None:
        budget = [max_total_bytes]
        total = 0
        try:
            for member in tf:
                parts = _member_parts(archive, member.name)
                if member.issym() or member.islnk():
                    raise DownloadError(f"{archive}: member '{member.name}' is a link; refusing to extract the "
                                        f"archive")
                if not (member.isfile() or member.isdir()):
                    raise DownloadError(f"{archive}: member '{member.name}' is a device or other special file; "
                                        f"refusing to extract the archive")
                total += member.size
                if total > max_total_bytes:
                    raise _too_big(archive, member.name, max_total_bytes)
                if not parts or (members is not None and (member.isdir() or "/".join(parts) not in members)):
                    continue
                target = staged.joinpath(*parts)
                try:
                    if member.isdir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(member)
                    assert src is not None
                    with src:
                        _copy(src, target, archive, member.name, budget, max_total_bytes)
                except (OSError, EOFError) as err:
                    raise _member_error(archive, member.name, err) from None
        except (tarfile.TarError, EOFError, OSError) as err:
            raise DownloadError(f"{archive}: the archive is damaged ({err.__class__.__name__}: {err})") from None

    with tf:
        return _extract(archive, folder, fill, overwrite, unwrap_top_folder)


def extract_archive(archive: str | Path, folder: str | Path, max_total_bytes: int = MAX_EXTRACTED_BYTES, *,
                    overwrite: bool = False, unwrap_top_folder: bool = False) -> Path:
    """:func:`extract_zip` or :func:`extract_tar`, by the archive's name."""
    extract = extract_zip if str(archive).lower().endswith(".zip") else extract_tar
    return extract(archive, folder, max_total_bytes, overwrite=overwrite, unwrap_top_folder=unwrap_top_folder)


# -- datasets ----------------------------------------------------------------------------------------------


def download_dataset(name: str, out_root: str | Path = "datasets", base_url: str | None = None,
                     sha256: str | None = None, overwrite: bool = False, dest: str | Path | None = None,
                     progress: bool = True) -> Path:
    """Download and extract a reference dataset; returns the folder ``pixforge train --data`` reads.

    The folder is ``dest`` or ``out_root/NAME`` (``datasets/horse2zebra/`` with trainA/ trainB/ testA/ testB/;
    ``datasets/facades/`` with train/ val/ test/). An existing non-empty one is replaced only with
    ``overwrite``. ``sha256`` pins the archive's digest; the digest is recorded in ``FOLDER/.pixforge-download.json``.
    The archive is fetched beside the folder (a hidden ``.NAME.zip.part`` that a rerun resumes) and removed
    once extracted."""
    remote = remote_dataset(name)
    url = dataset_url(name, base_url)
    expected = check_sha256(sha256)
    folder = Path(dest) if dest is not None else Path(out_root) / name
    refuse_occupied(folder, overwrite, "dataset folder")
    archive = folder.with_name(f".{folder.name}{remote.archive_suffix}")
    digest = fetch(url, archive, sha256=expected, progress=progress)
    try:
        size = archive.stat().st_size
        extract_archive(archive, folder, overwrite=overwrite, unwrap_top_folder=True)
    finally:
        archive.unlink(missing_ok=True)
    write_record(folder / RECORD_NAME, name, url, digest, size)
    return folder
