"""pix2pixHD instance features at inference: cluster the training set's features, pick or edit them per instance.

A feature-encoder run (``model.features``) trains G with a ``feat_num``-vector per object instance, encoded from
the real photo. To translate a label map alone, each instance needs such a vector: the paper clusters the
vectors of the training set per class with k-means and lets the user pick a cluster centre per object, or any
value (section 3.4, "Instance-level feature embedding").

    pixforge features cluster --model runs/city_feat       # writes runs/city_feat/feature_clusters.json
    t = Translator.from_pretrained("runs/city_feat")       # loads the clusters beside the checkpoint
    t.predict(labels, instances=ids, features={26001: 2, 26002: [0.4, -0.1, 0.8]})  # cluster 2, or a vector

Without an override an instance gets its class's largest cluster; a class without clusters gets zeros.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pixforge.atomic import write_text
from pixforge.config import config_from_dict
from pixforge.data.label_dataset import LabelMapDataset
from pixforge.nn.build import build_feature_encoder
from pixforge.runtime.checkpoint import find_checkpoint, load_checkpoint

CLUSTERS_FILE = "feature_clusters.json"
MIN_AREA = 1 / 64
"""Instances smaller than this share of the image are left out of the clustering (the reference's threshold:
``num / (h * w // 32) > 0.5``), their few pixels say little about a style."""

FeatureChoice = int | Sequence[float]
"""A cluster index of the instance's class, or a vector of ``feat_num`` values."""


class FeatureError(ValueError):
    """Features cannot be made as asked; the one-line message says what is missing."""


@dataclass(frozen=True)
class FeatureClusters:
    feat_num: int
    centres: dict[int, np.ndarray]
    """class -> (clusters, feat_num) centres, the largest cluster first."""

    def to_json(self) -> str:
        return json.dumps({"feat_num": self.feat_num,
                           "centres": {str(k): v.round(6).tolist() for k, v in sorted(self.centres.items())}},
                          indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = CLUSTERS_FILE) -> FeatureClusters:
        try:
            raw = json.loads(text)
            centres = {int(k): np.asarray(v, np.float32).reshape(len(v), -1) for k, v in raw["centres"].items()}
            return cls(int(raw["feat_num"]), centres)
        except (ValueError, KeyError, TypeError) as err:
            raise FeatureError(f"{source}: not a feature clusters file ({err})") from None

    @classmethod
    def beside(cls, checkpoint: str | Path) -> FeatureClusters | None:
        """The clusters file of the run a checkpoint belongs to, if there is one."""
        path = run_directory(Path(checkpoint)) / CLUSTERS_FILE
        return cls.from_json(path.read_text(), str(path)) if path.is_file() else None


def run_directory(checkpoint: Path) -> Path:
    """``run/checkpoints/step_x.safetensors`` -> ``run``; a file elsewhere -> its folder."""
    folder = checkpoint.parent if checkpoint.is_file() or checkpoint.suffix else checkpoint
    return folder.parent if folder.name == "checkpoints" else folder


def instance_classes(classes: np.ndarray, instances: np.ndarray) -> dict[int, int]:
    """instance id -> the class most of its pixels have."""
    out: dict[int, int] = {}
    for instance in np.unique(instances):
        values, counts = np.unique(classes[instances == instance], return_counts=True)
        out[int(instance)] = int(values[counts.argmax()])
    return out


def feature_map(classes: np.ndarray, instances: np.ndarray, feat_num: int, clusters: FeatureClusters | None,
                choices: Mapping[int, FeatureChoice] | None = None) -> torch.Tensor:
    """feat_num x H x W: every instance filled with its chosen vector (a cluster centre, an edited value, or its
    class's largest cluster by default; zeros for a class that has none)."""
    choices = dict(choices or {})
    unknown = sorted(set(choices) - {int(i) for i in np.unique(instances)})
    if unknown:
        raise FeatureError(f"features: instance ids {unknown[:5]} are not in the instance map")
    out = np.zeros((feat_num, *instances.shape), np.float32)
    for instance, cls in instance_classes(classes, instances).items():
        choice = choices.get(instance, 0)
        centres = clusters.centres.get(cls) if clusters is not None else None
        if isinstance(choice, int | np.integer):
            if centres is None:
                if instance in choices:
                    raise FeatureError(f"features: instance {instance} (class {cls}) asks for cluster {choice}, but "
                                       f"class {cls} has no clusters (run `pixforge features cluster`)")
                continue  # zeros: the middle of the encoder's range
            if not 0 <= int(choice) < len(centres):
                raise FeatureError(f"features: class {cls} has clusters 0..{len(centres) - 1}, instance {instance} "
                                   f"asks for {choice}")
            vector = centres[int(choice)]
        else:
            vector = np.asarray(choice, np.float32)
            if vector.shape != (feat_num,):
                raise FeatureError(f"features: instance {instance} got {vector.size} values, the model takes "
                                   f"feat_num {feat_num}")
        out[:, instances == instance] = vector[:, None]
    return torch.from_numpy(out)


def kmeans(points: np.ndarray, k: int, seed: int = 0, iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means with k-means++ seeding: (centres, sizes), the largest cluster first. Deterministic."""
    rng = np.random.default_rng(seed)
    points = np.asarray(points, np.float64)
    k = min(k, len(points))
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = ((points[:, None] - np.asarray(centres)[None]) ** 2).sum(-1).min(1)
        if d2.sum() == 0:
            break
        centres.append(points[rng.choice(len(points), p=d2 / d2.sum())])
    centres_arr = np.asarray(centres)
    for _ in range(iterations):
        nearest = ((points[:, None] - centres_arr[None]) ** 2).sum(-1).argmin(1)
        moved = np.asarray([points[nearest == j].mean(0) if (nearest == j).any() else centres_arr[j]
                            for j in range(len(centres_arr))])
        if np.allclose(moved, centres_arr):
            break
        centres_arr = moved
    sizes = np.bincount(((points[:, None] - centres_arr[None]) ** 2).sum(-1).argmin(1), minlength=len(centres_arr))
    order = np.argsort(-sizes, kind="stable")
    return centres_arr[order], sizes[order]


@torch.inference_mode()
def encode_instance_features(run: str | Path, data_root: str | Path | None = None, split: str = "train",
                             limit: int | None = None) -> tuple[dict[int, list[np.ndarray]], int]:
    """Per class, the feature vector of every instance of ``split`` that covers at least ``MIN_AREA`` of its
    image, encoded by the run's feature encoder at the training scale; and feat_num."""
    path = find_checkpoint(run)
    raw, state = load_checkpoint(path)
    cfg = config_from_dict(raw, str(path))
    if not cfg.model.features or "E" not in state:
        raise FeatureError(f"{path}: not a feature-encoder run (model.features is off, or no 'E' weights)")
    data = cfg.data.model_copy(update={"root": Path(data_root) if data_root else cfg.data.root, "max_items": limit})
    encoder = build_feature_encoder(cfg, init=False)
    encoder.load_state_dict(state["E"])
    encoder.eval()
    dataset = LabelMapDataset(data, split, train=False)
    found: dict[int, list[np.ndarray]] = {}
    for i in range(len(dataset)):
        item = dataset[i]
        ids = item["instance"]
        features = encoder(item["target"].unsqueeze(0), ids.unsqueeze(0))[0]
        classes = instance_classes(item["label"].numpy(), ids.numpy())
        for instance, cls in classes.items():
            mask = ids == instance
            if mask.float().mean() >= MIN_AREA:
                found.setdefault(cls, []).append(features[:, mask][:, 0].numpy())  # one value per instance
    return found, cfg.model.feat_num


def cluster_features(run: str | Path, data_root: str | Path | None = None, n_clusters: int = 10,
                     split: str = "train", limit: int | None = None) -> Path:
    """The paper's clustering step: encode the training set, k-means per class, write ``feature_clusters.json``
    into the run directory. Returns its path."""
    found, feat_num = encode_instance_features(run, data_root, split, limit)
    if not found:
        raise FeatureError(f"{run}: no instance covers {MIN_AREA:.1%} of an image in split '{split}'; nothing to "
                           f"cluster")
    centres = {cls: kmeans(np.stack(vectors), n_clusters)[0].astype(np.float32) for cls, vectors in found.items()}
    out = run_directory(find_checkpoint(run)) / CLUSTERS_FILE
    write_text(out, FeatureClusters(feat_num, centres).to_json())
    return out
