"""``pixforge download model NAME``: a reference .pth served on loopback becomes a run directory pixforge loads."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import torch

from pixforge.compat.download_model import MODELS, download_model, model_url
from pixforge.config import config_from_dict
from pixforge.data.download import BASE_URL_ENV, DownloadError
from pixforge.infer.translator import Translator
from pixforge.nn.build import build_generator
from pixforge.nn.registry import create_generator
from pixforge.runtime.checkpoint import find_checkpoint


@pytest.fixture(scope="module")
def resnet_pth() -> bytes:
    """What the reference's CycleGAN download holds: a bare ResNet generator state_dict (tiny: ngf 4)."""
    cfg = config_from_dict({"model": {"kind": "cyclegan", "generator": "resnet_6blocks", "ngf": 4}})
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(build_generator(cfg).state_dict(), buffer)
    return buffer.getvalue()


def test_a_served_cyclegan_pth_becomes_a_run_that_find_checkpoint_finds(file_server, run_cli, tmp_path, resnet_pth):
    file_server.files["/cyclegan/pretrained_models/horse2zebra.pth"] = resnet_pth
    run = tmp_path / "runs" / "h2z"
    code, out, err = run_cli("download", "model", "horse2zebra", "--out", str(run), "--base-url", file_server.url)
    assert code == 0, err
    assert f"wrote {run}" in out
    assert find_checkpoint(run).is_file()
    record = json.loads((run / "download.json").read_text())
    assert record["sha256"] == hashlib.sha256(resnet_pth).hexdigest() and record["name"] == "horse2zebra"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["h2z"]  # no .pth, no staging folder left
    # ... and translates: the downloaded generator, marked with its hash.
    images = tmp_path / "in"
    images.mkdir()
    from PIL import Image

    Image.new("RGB", (32, 32), (90, 140, 60)).save(images / "x.png")
    code, out, err = run_cli("translate", str(images), "--model", str(run), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert (tmp_path / "out" / "x.png").is_file()


def test_the_default_run_directory_is_runs_name(file_server, run_cli, tmp_path, resnet_pth, monkeypatch):
    file_server.files["/cyclegan/pretrained_models/style_monet.pth"] = resnet_pth
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(BASE_URL_ENV, file_server.url)
    code, _, err = run_cli("download", "model", "style_monet")
    assert code == 0, err
    assert find_checkpoint(tmp_path / "runs" / "style_monet").is_file()


def test_a_sha256_mismatch_writes_no_run(file_server, run_cli, tmp_path, resnet_pth):
    file_server.files["/cyclegan/pretrained_models/horse2zebra.pth"] = resnet_pth
    code, _, err = run_cli("download", "model", "horse2zebra", "--out", str(tmp_path / "r"),
                           "--base-url", file_server.url, "--sha256", "0" * 64)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "does not match" in err
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_no_generator_is_refused_in_one_line(file_server, run_cli, tmp_path):
    file_server.files["/pix2pix/models-pytorch/edges2shoes.pth"] = b"not a pickle"
    code, _, err = run_cli("download", "model", "edges2shoes", "--out", str(tmp_path / "r"),
                           "--base-url", file_server.url)
    assert code != 0 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_run_is_kept_unless_overwrite(file_server, tmp_path, resnet_pth):
    file_server.files["/cyclegan/pretrained_models/zebra2horse.pth"] = resnet_pth
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(DownloadError, match="--overwrite"):
        download_model("zebra2horse", run, base_url=file_server.url, progress=False)
    assert file_server.requests == [] and (run / "notes.txt").is_file()
    download_model("zebra2horse", run, base_url=file_server.url, overwrite=True, progress=False)
    assert not (run / "notes.txt").exists() and find_checkpoint(run).is_file()


def test_an_unknown_model_is_one_line_listing_the_known_ones(run_cli):
    code, _, err = run_cli("download", "model", "horse2unicorn")
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and "horse2unicorn" in lines[0]
    assert all(name in lines[0] for name in MODELS)


def test_names_follow_the_reference_scripts_url_patterns():
    base = "http://efrosgans.eecs.berkeley.edu"
    assert model_url("horse2zebra") == f"{base}/cyclegan/pretrained_models/horse2zebra.pth"
    assert model_url("facades_label2photo") == f"{base}/pix2pix/models-pytorch/facades_label2photo.pth"
    assert model_url("sat2map_cyclegan", "http://mirror:8080/x/") == \
        "http://mirror:8080/x/cyclegan/pretrained_models/sat2map.pth"
    assert Path(MODELS["day2night"].path).name == "day2night.pth" and MODELS["day2night"].kind == "pix2pix"
    assert model_url("cat2dog_fastcut") == f"{base}/CUT/pretrained_models.tar"  # the CUT README's one archive
    assert MODELS["cat2dog_fastcut"].member == "checkpoints/cat2dog_fastcut_pretrained/latest_net_G.pth"


# -- the CUT authors' models: one archive of six ------------------------------------------------------------

CUT_URL_PATH = "/CUT/pretrained_models.tar"


@pytest.fixture(scope="module")
def cut_generator() -> torch.nn.Module:
    """What CUT's archive holds per model: an anti-aliased ResNet generator (tiny: ngf 4), with its blur buffers."""
    torch.manual_seed(1)
    return create_generator("resnet_9blocks", input_nc=3, output_nc=3, ngf=4, norm="instance", dropout=False,
                            upsample="antialias", downsample="antialias").eval()


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _pth(generator: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(generator.state_dict(), buffer)
    return buffer.getvalue()


def _member(name: str) -> str:
    return f"checkpoints/{name}_pretrained/latest_net_G.pth"


def test_a_cut_model_comes_out_of_the_shared_archive_and_translates_as_the_original(file_server, tmp_path,
                                                                                     cut_generator):
    other = create_generator("resnet_9blocks", input_nc=3, output_nc=3, ngf=4, norm="instance", dropout=False,
                             upsample="antialias", downsample="antialias")
    archive = _tar({_member("cityscapes_cut"): _pth(other), _member("horse2zebra_cut"): _pth(cut_generator)})
    file_server.files[CUT_URL_PATH] = archive
    digest = hashlib.sha256(archive).hexdigest()
    run = tmp_path / "runs" / "h2z"
    download_model("horse2zebra_cut", run, base_url=file_server.url, sha256=digest, progress=False)
    assert [path for path, _ in file_server.requests] == [CUT_URL_PATH]
    record = json.loads((run / "download.json").read_text())
    assert record["sha256"] == digest and record["bytes"] == len(archive) and record["name"] == "horse2zebra_cut"
    assert record["url"].endswith(CUT_URL_PATH)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["h2z"]  # no archive, no staging left
    translator = Translator.from_pretrained(run, device="cpu", precision="fp32", scale="native")
    assert translator.config.model.kind == "cut" and translator.config.model.cut_mode == "cut"
    torch.manual_seed(2)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = cut_generator(x)
    assert (translator.forward(x) - expected).abs().max().item() < 1e-5


def test_a_fastcut_name_gives_cut_mode_fastcut(file_server, tmp_path, cut_generator):
    file_server.files[CUT_URL_PATH] = _tar({_member("cat2dog_fastcut"): _pth(cut_generator)})
    run = download_model("cat2dog_fastcut", tmp_path / "run", base_url=file_server.url, progress=False)
    cfg = Translator.from_pretrained(run, device="cpu", precision="fp32").config
    assert cfg.model.kind == "cut" and cfg.model.cut_mode == "fastcut"


def test_an_archive_without_the_member_is_one_line_naming_both_and_writes_no_run(file_server, run_cli, tmp_path,
                                                                                 cut_generator):
    file_server.files[CUT_URL_PATH] = _tar({_member("cityscapes_cut"): _pth(cut_generator)})
    code, _, err = run_cli("download", "model", "horse2zebra_cut", "--out", str(tmp_path / "r"),
                           "--base-url", file_server.url)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert "pretrained_models.tar" in lines[0] and _member("horse2zebra_cut") in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_an_archive_member_leading_outside_is_refused(file_server, tmp_path, cut_generator):
    file_server.files[CUT_URL_PATH] = _tar({_member("horse2zebra_cut"): _pth(cut_generator), "../x": b"escape"})
    root = tmp_path / "runs"
    with pytest.raises(DownloadError, match=r"member '\.\./x' has a '\.\.' component"):
        download_model("horse2zebra_cut", root / "r", base_url=file_server.url, progress=False)
    assert not root.exists() or list(root.iterdir()) == []
    assert not (tmp_path / "x").exists() and [p for p in tmp_path.rglob("*") if p.name == "x"] == []
