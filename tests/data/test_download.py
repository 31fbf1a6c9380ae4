"""Downloads as a user meets them, against a loopback HTTP file_server the tests start: datasets by name through the
CLI, cut transfers resumed, and archives from strangers refused before anything lands outside their folder."""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pixforge.data.download import (
    BASE_URL_ENV,
    DATASETS,
    DownloadError,
    download_dataset,
    extract_tar,
    extract_zip,
    fetch,
)


def one_line_error(run_cli, *args: str) -> str:
    code, _, err = run_cli(*args)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def make_zip(members: dict[str | zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def make_tar(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
    return buffer.getvalue()


def unaligned_zip(top: str = "horse2zebra") -> bytes:
    return make_zip({f"{top}/{split}/{i}.png": png(i) for split in ("trainA", "trainB", "testA", "testB")
                     for i in range(3)})


def leftovers(folder: Path) -> list[str]:
    """Hidden files the downloader keeps while it works (archives, .part files, staging folders)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_cyclegan_dataset_downloads_through_the_cli_into_the_folder_train_reads(file_server, run_cli, tmp_path):
    archive = unaligned_zip()
    file_server.files["/cyclegan/datasets/horse2zebra.zip"] = archive
    folder = tmp_path / "datasets" / "h2z"
    code, out, err = run_cli("download", "dataset", "horse2zebra", "--out", str(folder),
                             "--base-url", file_server.url)
    assert code == 0, err
    assert f"wrote {folder}" in out
    for split in ("trainA", "trainB", "testA", "testB"):
        images = sorted((folder / split).iterdir())
        assert [p.name for p in images] == ["0.png", "1.png", "2.png"]
        assert Image.open(images[0]).size == (8, 8)
    record = json.loads((folder / ".pixforge-download.json").read_text())
    assert record["name"] == "horse2zebra" and record["sha256"] == hashlib.sha256(archive).hexdigest()
    assert record["url"] == f"{file_server.url}/cyclegan/datasets/horse2zebra.zip"
    assert leftovers(folder.parent) == []


def test_a_downloaded_cyclegan_dataset_trains_two_steps(file_server, run_cli, tmp_path):
    file_server.files["/cyclegan/datasets/horse2zebra.zip"] = make_zip(
        {f"horse2zebra/{split}/{i}.png": png(i) for split in ("trainA", "trainB") for i in range(4)})
    folder = tmp_path / "h2z"
    code, _, err = run_cli("download", "dataset", "horse2zebra", "--out", str(folder), "--base-url",
                           file_server.url)
    assert code == 0, err
    code, out, err = run_cli("train", "--config", "horse2zebra", "--data", str(folder),
                             "--out", str(tmp_path / "run"),
                             "--set", "model.generator=resnet_6blocks", "--set", "model.ngf=4", "--set", "model.ndf=4",
                             "--set", "data.load_size=36", "--set", "data.crop_size=32", "--set", "train.max_steps=2",
                             "--set", "train.sample_every=10")
    assert code == 0, err
    assert "trained 2 steps" in out


def test_a_pix2pix_dataset_is_a_tar_gz_from_the_env_base_url_into_datasets_name(file_server, run_cli, tmp_path,
                                                                              monkeypatch):
    splits = [(f"./facades/{split}/{i}.jpg", png(i)) for split in ("train", "val", "test") for i in range(2)]
    file_server.files["/pix2pix/datasets/facades.tar.gz"] = make_tar(splits)
    monkeypatch.setenv(BASE_URL_ENV, file_server.url + "/")
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("download", "dataset", "facades")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "datasets" / "facades").iterdir() if p.is_dir()) == \
        ["test", "train", "val"]
    assert (tmp_path / "datasets" / "facades" / "train" / "1.jpg").read_bytes() == png(1)


def test_an_interrupted_transfer_resumes_with_a_range_request(file_server, tmp_path):
    data = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    file_server.files["/big.bin"] = data
    file_server.cut_after = 100_000
    dest = tmp_path / "big.bin"
    with pytest.raises(DownloadError, match=r"stopped after 100000 of 300000 bytes; run the same command again"):
        fetch(f"{file_server.url}/big.bin", dest, progress=False)
    assert not dest.exists() and (tmp_path / "big.bin.part").stat().st_size == 100_000
    digest = fetch(f"{file_server.url}/big.bin", dest, sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert file_server.requests[-1] == ("/big.bin", "bytes=100000-")
    assert digest == hashlib.sha256(data).hexdigest() and dest.read_bytes() == data
    assert not (tmp_path / "big.bin.part").exists()


def test_a_server_that_ignores_range_restarts_the_file_from_zero(file_server, tmp_path):
    data = b"the real file " * 1000
    file_server.files["/f.bin"] = data
    file_server.ignore_range = True
    (tmp_path / "f.bin.part").write_bytes(b"stale bytes from some other file")
    assert fetch(f"{file_server.url}/f.bin", tmp_path / "f.bin", progress=False) == hashlib.sha256(data).hexdigest()
    assert file_server.requests[-1][1] is not None  # it asked to resume; the 200 made it start over
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_complete_part_file_is_finished_after_a_416(file_server, tmp_path):
    data = b"x" * 5000
    file_server.files["/f.bin"] = data
    (tmp_path / "f.bin.part").write_bytes(data)
    fetch(f"{file_server.url}/f.bin", tmp_path / "f.bin", progress=False)
    assert (tmp_path / "f.bin").read_bytes() == data


def test_a_sha256_mismatch_is_refused_and_the_users_file_kept(file_server, run_cli, tmp_path):
    file_server.files["/f.bin"] = b"downloaded"
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"the user's own file")
    with pytest.raises(DownloadError, match="does not match the expected"):
        fetch(f"{file_server.url}/f.bin", dest, sha256="0" * 64, progress=False)
    assert dest.read_bytes() == b"the user's own file" and not (tmp_path / "f.bin.part").exists()

    file_server.files["/cyclegan/datasets/horse2zebra.zip"] = unaligned_zip()
    line = one_line_error(run_cli, "download", "dataset", "horse2zebra", "--out", str(tmp_path / "d" / "h"),
                          "--base-url", file_server.url, "--sha256", "ab" * 32)
    assert "SHA-256" in line and "ab" * 32 in line
    assert not (tmp_path / "d" / "h").exists() and leftovers(tmp_path / "d") == []


def test_a_malformed_sha256_is_refused_before_any_request(file_server, run_cli, tmp_path):
    line = one_line_error(run_cli, "download", "dataset", "horse2zebra", "--out", str(tmp_path / "h"),
                          "--base-url", file_server.url, "--sha256", "abc")
    assert "--sha256 'abc'" in line and file_server.requests == []


def test_a_download_past_the_size_limit_is_refused(file_server, tmp_path):
    file_server.files["/f.bin"] = b"y" * 2000
    with pytest.raises(DownloadError, match="more than the limit of 1000"):
        fetch(f"{file_server.url}/f.bin", tmp_path / "f.bin", progress=False, max_bytes=1000)
    assert not (tmp_path / "f.bin").exists()


def test_an_unknown_dataset_is_one_line_listing_the_known_ones(run_cli):
    line = one_line_error(run_cli, "download", "dataset", "horse3zebra")
    assert "horse3zebra" in line and all(name in line for name in DATASETS)


def test_cityscapes_says_where_to_get_it(run_cli):
    assert "cityscapes-dataset.com" in one_line_error(run_cli, "download", "dataset", "cityscapes")


def test_a_missing_file_on_the_server_names_the_url(file_server, run_cli, tmp_path):
    line = one_line_error(run_cli, "download", "dataset", "mini", "--out", str(tmp_path / "m"),
                          "--base-url", file_server.url)
    assert "/cyclegan/datasets/mini.zip: HTTP 404" in line


def test_an_existing_dataset_folder_is_kept_unless_overwrite(file_server, run_cli, tmp_path):
    file_server.files["/cyclegan/datasets/horse2zebra.zip"] = unaligned_zip()
    folder = tmp_path / "h2z"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    line = one_line_error(run_cli, "download", "dataset", "horse2zebra", "--out", str(folder),
                          "--base-url", file_server.url)
    assert "--overwrite" in line and (folder / "mine.txt").read_text() == "keep me" and file_server.requests == []
    code, _, err = run_cli("download", "dataset", "horse2zebra", "--out", str(folder),
                           "--base-url", file_server.url, "--overwrite")
    assert code == 0, err
    assert not (folder / "mine.txt").exists() and (folder / "trainA" / "0.png").is_file()
    assert leftovers(tmp_path) == []


def test_a_zip_member_with_dotdot_is_refused_through_the_cli_and_nothing_lands_outside(file_server, run_cli, tmp_path):
    file_server.files["/cyclegan/datasets/mini.zip"] = make_zip({"mini/trainA/0.png": png(0), "../x": b"escape",
                                                            "mini/../../y": b"escape"})
    root = tmp_path / "datasets"
    line = one_line_error(run_cli, "download", "dataset", "mini", "--out", str(root / "mini"),
                          "--base-url", file_server.url)
    assert ".mini.zip" in line and "'../x'" in line and "'..'" in line
    assert not (tmp_path / "x").exists() and not (root / "x").exists() and not (tmp_path / "y").exists()
    assert list(root.iterdir()) == []  # no dataset folder, no staging folder, no archive


def zip_archive(tmp_path: Path, members: dict[str | zipfile.ZipInfo, bytes]) -> Path:
    path = tmp_path / "a.zip"
    path.write_bytes(make_zip(members))
    return path


def test_a_zip_member_with_an_absolute_path_is_refused(tmp_path):
    archive = zip_archive(tmp_path, {"ok.txt": b"1", zipfile.ZipInfo("/tmp/abs.txt"): b"2"})
    with pytest.raises(DownloadError, match=r"a\.zip: member '/tmp/abs\.txt' has an absolute path"):
        extract_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_a_zip_symlink_member_is_refused(tmp_path):
    link = zipfile.ZipInfo("data/link")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = zip_archive(tmp_path, {"data/a.txt": b"1", link: b"/etc/passwd"})
    with pytest.raises(DownloadError, match=r"member 'data/link' is a symbolic link"):
        extract_zip(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


def test_a_zip_past_the_uncompressed_size_limit_is_refused(tmp_path):
    archive = zip_archive(tmp_path, {"small.bin": b"0" * 400, "big.bin": b"0" * 800})  # compresses to little
    with pytest.raises(DownloadError, match=r"member 'big\.bin' takes the uncompressed total past the limit of 1000"):
        extract_zip(archive, tmp_path / "out", max_total_bytes=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]
    assert (extract_zip(archive, tmp_path / "out", max_total_bytes=1200) / "big.bin").stat().st_size == 800


def tar_member(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(("member", "problem"), [
    (("../escape.txt", b"x"), "'..' component"),
    (("/abs.txt", b"x"), "absolute path"),
    (tar_member("facades/link", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
    (tar_member("facades/hard", tarfile.LNKTYPE, "facades/train/0.jpg"), "is a link"),
    (tar_member("facades/dev", tarfile.CHRTYPE), "device or other special file"),
], ids=["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_a_tar_member_leaving_the_folder_or_not_a_file_is_refused(tmp_path, member, problem):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(make_tar([("facades/train/0.jpg", b"first"), member, ("facades/train/1.jpg", b"after")]))
    with pytest.raises(DownloadError, match=re.escape(problem)):
        extract_tar(archive, tmp_path / "out", unwrap_top_folder=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["facades.tar.gz"]  # the partial extraction is gone


def test_a_tar_past_the_size_limit_is_refused(tmp_path):
    archive = tmp_path / "t.tar.gz"
    archive.write_bytes(make_tar([("a.bin", b"0" * 600), ("b.bin", b"0" * 600)]))
    with pytest.raises(DownloadError, match="member 'b.bin' takes the uncompressed total past the limit of 1000"):
        extract_tar(archive, tmp_path / "out", max_total_bytes=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.tar.gz"]


def test_the_python_api_returns_the_folder_under_out_root(file_server, tmp_path):
    file_server.files["/cyclegan/datasets/facades.zip"] = unaligned_zip(top="facades")
    folder = download_dataset("facades_cyclegan", tmp_path / "datasets", base_url=file_server.url, progress=False)
    assert folder == tmp_path / "datasets" / "facades_cyclegan"
    assert (folder / "trainB" / "2.png").read_bytes() == png(2)
