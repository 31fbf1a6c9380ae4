"""The class-conditional benchmark harness on a tiny run (the real one is `pixforge bench cgan`)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from pixforge.bench.cgan import bench_cgan
from pixforge.provenance import verify_file


def write_idx(path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


@pytest.mark.slow
def test_it_trains_judges_and_scores_every_class(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(40) % 4
    images = np.zeros((40, 28, 28))
    for i, c in enumerate(labels):  # class c: a bright band in quarter c of the image, plus noise
        images[i, :, 7 * c:7 * c + 7] = 200
        images[i] += rng.integers(0, 40, (28, 28))
    write_idx(tmp_path / "toy-train-images-idx3-ubyte.gz", images, 0x803)
    write_idx(tmp_path / "toy-train-labels-idx1-ubyte.gz", labels, 0x801)
    (row,) = bench_cgan(tmp_path, tmp_path / "grid.png", ["train.max_steps=3", "model.ngf=8", "model.ndf=8"],
                        judge_epochs=1)
    assert row.extra["steps"] == 3 and row.unit == "min training" and row.value > 0
    assert [x.split(":")[0] for x in row.extra["per class"].split()] == ["0", "1", "2", "3"]
    assert 0 <= row.extra["mean accuracy"] <= 1 and row.extra["judge held-out accuracy"] > 0
    assert verify_file(tmp_path / "grid.png").marked
