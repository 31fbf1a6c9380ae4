"""Two loop options: a wall-clock budget (equal-time comparisons) and TensorBoard logging."""

from __future__ import annotations

import pytest

from pixforge.config import config_from_dict
from pixforge.runtime.checkpoint import find_checkpoint, load_checkpoint
from pixforge.train.loop import train
from pixforge.train.metrics_log import read_metrics


def tiny(root, **train_overrides):
    return config_from_dict({
        "model": {"generator": "unet_32", "ngf": 8, "ndf": 8, "n_layers_d": 2},
        "data": {"root": str(root), "preprocess": "none", "load_size": 32, "crop_size": 32},
        "train": {"batch_size": 2, "max_steps": 8, "log_every": 2, "sample_every": 4, "checkpoint_every": 4,
                  **train_overrides},
    })


def test_max_seconds_stops_at_a_logged_step_with_a_checkpoint(tmp_path, stripes_dataset):
    cfg = tiny(stripes_dataset, max_steps=None, n_epochs=10_000, n_epochs_decay=0, max_seconds=1e-6,
               checkpoint_every=10**6)
    result = train(cfg, tmp_path / "run")
    assert result.step == 2  # the first logged step is past a budget of a microsecond
    _, state = load_checkpoint(find_checkpoint(tmp_path / "run"))
    assert state["progress"]["step"] == 2
    assert [r["step"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if "G_L1" in r] == [2]


def test_tensorboard_event_file_holds_scalars_and_images(tmp_path, stripes_dataset):
    pytest.importorskip("tensorboardX")
    from tensorboardX.proto import event_pb2

    train(tiny(stripes_dataset, tensorboard=True, val_every=4), tmp_path / "run")
    files = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert len(files) == 1
    scalars: dict[str, list[int]] = {}
    images = []
    for record in _records(files[0].read_bytes()):
        event = event_pb2.Event.FromString(record)
        for value in event.summary.value:
            if value.HasField("image"):
                images.append((value.tag, event.step, value.image.width))
            elif value.HasField("simple_value"):
                scalars.setdefault(value.tag, []).append(event.step)
    logged = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert scalars["train/G_L1"] == [2, 4, 6, 8]
    assert scalars["val/l1"] == [r["step"] for r in logged if "val_l1" in r] and scalars["val/l1"][0] == 0
    assert {"train/D_real", "train/D_fake", "train/G_GAN", "train/lr"} <= set(scalars)
    assert [(tag, step) for tag, step, _ in images] == [("samples", 4), ("samples", 8)]
    assert images[0][2] > 3 * 32  # the input | output | target grid


def _records(data: bytes):
    """TFRecord framing: length (8 bytes), its CRC (4), the payload, the payload's CRC (4)."""
    pos = 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 8], "little")
        yield data[pos + 12:pos + 12 + length]
        pos += 12 + length + 4


def test_tensorboard_without_its_package_is_one_line(tmp_path, stripes_dataset, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    with pytest.raises(ValueError, match=r"train.tensorboard: needs the tensorboardX package"):
        train(tiny(stripes_dataset, tensorboard=True), tmp_path / "run")
