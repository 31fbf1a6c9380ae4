import json
import os

import pytest
import torch
from safetensors.torch import save_file

from pixforge.runtime.checkpoint import (
    CheckpointError,
    find_checkpoint,
    load_checkpoint,
    pack,
    point_latest,
    save_checkpoint,
    unpack,
)


def test_pack_unpack_round_trips_nested_state():
    opt = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt.zero_grad()
    opt.param_groups[0]["params"][0].grad = torch.ones(2, 3)
    opt.param_groups[0]["params"][1].grad = torch.ones(2)
    opt.step()
    tree = {"optim": opt.state_dict(), "t": (1, [2.5, "x"], None), "rng": torch.get_rng_state()}
    tensors: dict[str, torch.Tensor] = {}
    skeleton = json.loads(json.dumps(pack(tree, "s", tensors)))  # must survive JSON
    back = unpack(skeleton, tensors)
    assert back["t"] == (1, [2.5, "x"], None)
    assert torch.equal(back["rng"], tree["rng"])
    assert set(back["optim"]["state"]) == {0, 1}  # int keys stay ints
    fresh = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    fresh.load_state_dict(back["optim"])


def test_checkpoint_holds_config_and_partial_load_reads_only_generator(tmp_path):
    state = {"G": {"w": torch.arange(4.0)}, "D": {"w": torch.zeros(2)}, "progress": {"step": 7}}
    path = save_checkpoint(tmp_path / "c.safetensors", {"name": "x"}, state)
    cfg, back = load_checkpoint(path)
    assert cfg == {"name": "x"} and back["progress"]["step"] == 7
    _, only_g = load_checkpoint(path, only="G")
    assert set(only_g) == {"G"} and torch.equal(only_g["G"]["w"], torch.arange(4.0))


def test_every_kind_of_tensor_round_trips_through_the_streaming_writer(tmp_path):
    from safetensors.torch import load_file

    flat = torch.arange(12.0)
    nhwc = torch.arange(18.0).view(1, 2, 3, 3).to(memory_format=torch.channels_last)
    tensors = {"view": flat[:6].view(2, 3), "tail": flat[6:], "nhwc": nhwc, "again": nhwc, "part": nhwc[:, :1],
               "bf16": torch.randn(3, 5).to(torch.bfloat16), "int": torch.tensor([1, -2], dtype=torch.int64),
               "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 4), "mask": torch.tensor([True, False]),
               "u8": torch.arange(7, dtype=torch.uint8)}
    state = {"G": tensors}
    path = save_checkpoint(tmp_path / "c.safetensors", {}, state)
    _, back = load_checkpoint(path)
    library = load_file(path)  # safetensors' own reader accepts the file as it is
    for name, tensor in tensors.items():
        assert torch.equal(back["G"][name], tensor) and back["G"][name].dtype == tensor.dtype, name
        assert torch.equal(library[f"s.G.{name}"], tensor), name
    with pytest.raises(TypeError, match="complex: cannot store a torch.complex64"):
        save_checkpoint(tmp_path / "d.safetensors", {}, {"G": {"complex": torch.zeros(2, dtype=torch.complex64)}})
    assert not (tmp_path / "d.safetensors").exists()


def test_save_leaves_no_temp_file_and_replaces_atomically(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {}, {"a": torch.ones(1)})
    save_checkpoint(path, {}, {"a": torch.zeros(1)})
    assert os.listdir(tmp_path) == ["c.safetensors"]
    assert load_checkpoint(path)[1]["a"].item() == 0


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, {}, {"a": torch.ones(1)})
    with pytest.raises(TypeError):
        save_checkpoint(path, {"bad": object()}, {"a": torch.zeros(1)})  # config not JSON-able
    assert load_checkpoint(path)[1]["a"].item() == 1
    assert os.listdir(tmp_path) == ["c.safetensors"]


def test_latest_points_at_newest_and_run_dir_resolves(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    for step in (1, 2):
        point_latest(folder, save_checkpoint(folder / f"step_{step}.safetensors", {}, {"s": step}))
    assert find_checkpoint(tmp_path / "run").name == "step_2.safetensors"


def test_foreign_and_truncated_files_are_named(tmp_path):
    foreign = tmp_path / "other.safetensors"
    save_file({"x": torch.ones(1)}, foreign)
    with pytest.raises(CheckpointError, match="other.safetensors: not a pixforge checkpoint"):
        load_checkpoint(foreign)
    good = save_checkpoint(tmp_path / "c.safetensors", {}, {"a": torch.ones(1000)})
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_checkpoint(cut)
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        find_checkpoint(tmp_path / "nothing")

