"""``pixforge judge train --kind classifier``: a classifier of a labelled dataset (``data.layout: classes``), to
judge whether a class-conditional generator draws the class it is asked for (``eval/class_score.py``).

As the FCN judge (``train/judge.py``) a small trainer of its own, not a recipe: cross-entropy, Adam, a fixed
share of every class held out to pick the best epoch. Run directory: ``judge.safetensors`` (weights, network
arguments, class names, image size, held-out accuracy) and ``metrics.jsonl``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from pixforge.config import DataConfig
from pixforge.data.classes import ClassDataset
from pixforge.nn.classifier import CLASSIFIER_FILE, CLASSIFIER_KIND, ImageClassifier
from pixforge.runtime.checkpoint import save_checkpoint
from pixforge.runtime.device import pick_device
from pixforge.train.metrics_log import MetricsLog


@dataclass(frozen=True)
class ClassifierSettings:
    image_size: int = 28
    channels: int = 1
    epochs: int = 4
    batch_size: int = 64
    width: int = 32
    lr: float = 1e-3
    held_out: float = 0.1
    """Share of every class kept out of training to pick the best epoch and report accuracy."""
    seed: int = 0
    device: str = "auto"


@dataclass(frozen=True)
class ClassifierResult:
    path: Path
    epoch: int
    accuracy: float


def split_indices(labels: np.ndarray, held_out: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices, ``held_out`` of each class held out (at least one where a class has two)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        n = max(round(len(members) * held_out), 1) if len(members) > 1 else 0
        val.extend(members[:n])
        train.extend(members[n:])
    return np.array(sorted(train)), np.array(sorted(val))


def images_of(dataset: ClassDataset, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    items = [dataset[int(i)] for i in indices]
    return torch.stack([it["image"] for it in items]), torch.tensor([it["label"] for it in items])


def train_classifier(data_root: str | Path, out: str | Path, settings: ClassifierSettings = ClassifierSettings()
                     ) -> ClassifierResult:
    out = Path(out)
    if (out / CLASSIFIER_FILE).exists():
        raise FileExistsError(f"{out / CLASSIFIER_FILE}: already exists; choose another --out")
    cfg = DataConfig(root=Path(data_root), layout="classes", crop_size=settings.image_size,
                     load_size=settings.image_size, input_nc=settings.channels, output_nc=settings.channels,
                     val_split=None, flip=False)
    dataset = ClassDataset(cfg, "train", train=True)
    train_idx, val_idx = split_indices(dataset.labels, settings.held_out, settings.seed)
    x_train, y_train = images_of(dataset, train_idx)
    x_val, y_val = images_of(dataset, val_idx)
    device = pick_device(settings.device)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    net = ImageClassifier(len(dataset.class_names), settings.channels, settings.width).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    log = MetricsLog(out / "metrics.jsonl", True)
    best: tuple[float, int, dict[str, torch.Tensor]] = (-1.0, 0, {})
    generator = torch.Generator().manual_seed(settings.seed)
    for epoch in range(1, settings.epochs + 1):
        net.train()
        order = torch.randperm(len(x_train), generator=generator)
        total = 0.0
        for start in range(0, len(order), settings.batch_size):
            batch = order[start:start + settings.batch_size]
            loss = F.cross_entropy(net(x_train[batch].to(device)), y_train[batch].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
        accuracy = classify_accuracy(net, x_val, y_val, device)
        log.write({"epoch": epoch, "loss": round(total / len(order), 6), "val_accuracy": round(accuracy, 6)})
        if accuracy > best[0]:
            best = (accuracy, epoch, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
    accuracy, epoch, state = best
    config: dict[str, Any] = {"kind": CLASSIFIER_KIND, "network": net.arguments(), "class_names": dataset.class_names,
                              "image_size": settings.image_size, "epoch": epoch, "val_accuracy": accuracy,
                              "settings": {**asdict(settings), "data": str(data_root)}}
    path = save_checkpoint(out / CLASSIFIER_FILE, config, {"judge": state})
    return ClassifierResult(path, epoch, accuracy)


@torch.inference_mode()
def classify_accuracy(net: ImageClassifier, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    if len(x) == 0:
        return float("nan")
    net.eval()
    predicted = torch.cat([net(x[i:i + 256].to(device)).argmax(1).cpu() for i in range(0, len(x), 256)])
    return float((predicted == y).float().mean())
