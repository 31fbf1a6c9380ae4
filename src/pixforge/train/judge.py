"""``pixforge judge train``: train the FCN-score judge (photo -> class map) on a paired dataset's train split.

A dedicated little trainer rather than a recipe for ``loop.py``: the judge's step (cross-entropy on class
indices), its data (label maps snapped to a palette once, up front) and its model selection (the epoch with the
best val class IoU) share nothing with the GAN loop beyond what it already reuses here (the dataset reader, the
checkpoint format, ``metrics.jsonl``), and the loop's per-step machinery (samples, val L1, DDP, exact resume)
would only have to learn to skip itself. A judge trains in minutes; a killed run is simply restarted.

Run directory::

    judge.safetensors   the judge of the best epoch (weights + network arguments + palette + its val scores)
    metrics.jsonl       loss per epoch and val pixel accuracy / class accuracy / IoU
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.progress import track
from torch.nn import functional as F

from pixforge.data.datasets import load_pairs, read_pair
from pixforge.data.palette import Palette, get_palette
from pixforge.nn.segmentation import (
    JUDGE_FILE,
    JUDGE_KIND,
    SegmentationUNet,
    confusion_matrix,
    segmentation_scores,
)
from pixforge.runtime.checkpoint import save_checkpoint
from pixforge.runtime.device import autocast, pick_device, resolve_precision
from pixforge.train.metrics_log import MetricsLog


@dataclass(frozen=True)
class JudgeSettings:
    palette: str = "facades"
    """The palette the dataset's label maps are drawn in; its classes are the judge's outputs."""
    label_side: Literal["A", "B"] = "B"
    """Which half of a pair is the label map (facades: B, the right half); the other is the photo."""
    layout: Literal["aligned", "folders"] = "aligned"
    train_split: str = "train"
    val_split: str = "val"
    epochs: int = 30
    batch_size: int = 8
    crop: int = 128
    """Random square crops of this size (plus mirroring) train it; it judges whole images. Smaller crops are
    cheaper per step and the network is fully convolutional, but a crop must show enough of a facade to tell
    a door from a window."""
    width: int = 16
    depth: int = 4
    lr: float = 2e-3
    """Adam, cosine-annealed to zero over the epochs."""
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """``auto``: bf16 autocast where the hardware has native bf16 (CUDA, AVX512-BF16 CPUs)."""


@dataclass
class JudgeResult:
    path: Path
    epoch: int
    scores: dict[str, float]


class LabelledPhotos:
    """Every pair decoded once: photos as uint8 HxWx3 and label maps snapped to class indices (HxW uint8)."""

    def __init__(self, root: Path, split: str, settings: JudgeSettings, palette: Palette) -> None:
        self.photos: list[np.ndarray] = []
        self.classes: list[np.ndarray] = []
        sources = load_pairs(root, split, settings.layout)
        for source in track(sources, description=f"reading {split}", disable=not sys.stderr.isatty(),
                            transient=True):
            a, b = read_pair(source, 3, 3, 89_478_485)
            photo, labels = (a, b) if settings.label_side == "B" else (b, a)
            if photo.dtype != np.uint8:
                photo = (photo // 257).astype(np.uint8)
                labels = (labels // 257).astype(np.uint8)
            self.photos.append(photo)
            self.classes.append(palette.snap(labels))

    def __len__(self) -> int:
        return len(self.photos)

    def batch(self, indices: list[int], crop: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crops (mirrored half of the time) of the given pairs, as (photos in [-1, 1], class indices)."""
        photos, classes = [], []
        for i in indices:
            photo, labels = self.photos[i], self.classes[i]
            h, w = labels.shape
            if min(h, w) < crop:
                raise ValueError(f"pair {i} of the train split is {w}x{h}, smaller than the judge's crop {crop}")
            top, left = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
            p, c = photo[top:top + crop, left:left + crop], labels[top:top + crop, left:left + crop]
            if rng.random() < 0.5:
                p, c = p[:, ::-1], c[:, ::-1]
            photos.append(p)
            classes.append(c)
        return photos_to_tensor(np.stack(photos)), torch.from_numpy(np.stack(classes).astype(np.int64))


def photos_to_tensor(photos: np.ndarray) -> torch.Tensor:
    """B x H x W x 3 uint8 -> B x 3 x H x W float32 in [-1, 1] (the range every pixforge network sees)."""
    t = torch.from_numpy(np.ascontiguousarray(photos.transpose(0, 3, 1, 2))).float()
    return t.div_(127.5).sub_(1.0)


@torch.inference_mode()
def predict_classes(net: SegmentationUNet, photos: list[np.ndarray], device: torch.device, precision: str,
                    batch_size: int = 8) -> list[np.ndarray]:
    """HxWx3 uint8 photos -> HxW class indices (argmax), in eval mode; equal sizes are batched."""
    was_training = net.training
    net.eval()
    out: list[np.ndarray] = [np.empty(0)] * len(photos)
    try:
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(photos):
            by_size.setdefault(p.shape, []).append(i)
        for indices in by_size.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                x = photos_to_tensor(np.stack([photos[i] for i in chunk])).to(device)
                with autocast(precision, device):
                    logits = net(x)
                for i, classes in zip(chunk, logits.argmax(1).to(torch.uint8).cpu().numpy(), strict=True):
                    out[i] = classes
    finally:
        net.train(was_training)
    return out


def train_judge(data_root: str | Path, out: str | Path, settings: JudgeSettings = JudgeSettings()) -> JudgeResult:
    """Train a judge on ``data_root/<train_split>``, keep the epoch with the best class IoU on the val split."""
    data_root, out = Path(data_root), Path(out)
    if (out / JUDGE_FILE).exists():
        raise ValueError(f"{out}: already holds a judge ({JUDGE_FILE}); choose another --out or remove it")
    palette = get_palette(settings.palette)
    device = pick_device(settings.device)
    precision = resolve_precision(settings.precision, device, option="judge precision")
    torch.manual_seed(settings.seed)
    train_set = LabelledPhotos(data_root, settings.train_split, settings, palette)
    val_set = LabelledPhotos(data_root, settings.val_split, settings, palette)

    net = SegmentationUNet(3, len(palette), settings.width, settings.depth).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    total = settings.epochs * steps_per_epoch
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.jsonl").unlink(missing_ok=True)  # a fresh judge: no curve left from an aborted one
    log = MetricsLog(out / "metrics.jsonl")
    rng = np.random.default_rng(settings.seed)
    best: JudgeResult | None = None
    step = 0
    for epoch in range(1, settings.epochs + 1):
        started, losses = time.perf_counter(), []
        net.train()
        order = rng.permutation(len(train_set))
        for start in range(0, len(order), settings.batch_size):
            for group in opt.param_groups:  # cosine annealing per step (Loshchilov & Hutter 2017)
                group["lr"] = settings.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            photos, classes = train_set.batch(order[start:start + settings.batch_size].tolist(), settings.crop,
                                              rng)
            with autocast(precision, device):
                logits = net(photos.to(device))
            loss = F.cross_entropy(logits.float(), classes.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
        scores = score_split(net, val_set, len(palette), device, precision)
        record = {"step": step, "epoch": epoch, "loss": round(float(np.mean(losses)), 5),
                  **{f"val_{k}": round(v, 5) for k, v in scores.items()},
                  "epoch_s": round(time.perf_counter() - started, 1)}
        log.write(record)
        print(f"epoch {epoch}/{settings.epochs}  loss {record['loss']:.4f}  val pixel acc "
              f"{scores['pixel_acc']:.3f}  class acc {scores['class_acc']:.3f}  IoU {scores['iou']:.3f}", flush=True)
        if best is None or scores["iou"] > best.scores["iou"]:
            path = save_judge(out / JUDGE_FILE, net, settings, epoch, scores)
            best = JudgeResult(path, epoch, scores)
    assert best is not None, "epochs >= 1"
    return best


def score_split(net: SegmentationUNet, data: LabelledPhotos, n_classes: int, device: torch.device,
                precision: str) -> dict[str, float]:
    """FCN scores of the judge on real photos of a split (its own accuracy)."""
    predicted = predict_classes(net, data.photos, device, precision)
    cm = sum(confusion_matrix(t, p, n_classes) for t, p in zip(data.classes, predicted, strict=True))
    return segmentation_scores(cm)


def save_judge(path: Path, net: SegmentationUNet, settings: JudgeSettings, epoch: int,
               scores: dict[str, float]) -> Path:
    """One safetensors file: the weights, and as metadata everything needed to rebuild and apply them."""
    config: dict[str, Any] = {"kind": JUDGE_KIND, "network": net.arguments(), "palette": settings.palette,
                              "label_side": settings.label_side, "epoch": epoch, "val_scores": scores,
                              "settings": asdict(settings)}
    return save_checkpoint(path, config, {"judge": net.state_dict()})
