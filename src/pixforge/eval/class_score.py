"""Scores of a class-conditional generator: does it draw the class asked for, and more than one image of it?

* **accuracy** per class: the share of ``per_class`` samples of class c that a classifier trained on the real
  images (``pixforge judge train --kind classifier``) reads as c;
* **diversity** per class: the mean pairwise distance between the samples' classifier features, beside the
  same for as many real images of that class (``real_diversity``); ``diversity_ratio`` < 1 means the samples
  vary less than the data (1/2 or less: the generator collapses to a few images).

Samples come from ``Sampler.sample`` with seeds ``seed``..``seed + per_class − 1``: the scores are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pixforge.config import DataConfig
from pixforge.data.classes import ClassDataset
from pixforge.eval.fcn_score import load_judge_file
from pixforge.infer.sampler import Sampler
from pixforge.nn.classifier import CLASSIFIER_FILE, CLASSIFIER_KIND, ImageClassifier


@dataclass
class ClassifierJudge:
    net: ImageClassifier
    class_names: list[str]
    image_size: int
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> ClassifierJudge:
        """A classifier ``judge.safetensors``, or the folder ``pixforge judge train --kind classifier`` wrote."""
        file, config, state = load_judge_file(path, CLASSIFIER_FILE, CLASSIFIER_KIND,
                                              "pixforge judge train --kind classifier")
        net = ImageClassifier(**config["network"])
        net.load_state_dict(state["judge"])
        return cls(net.eval(), list(config["class_names"]), int(config["image_size"]), {**config, "path": str(file)})

    @torch.inference_mode()
    def read(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted classes, features) of N×C×H×W images in [-1, 1]."""
        features = self.net.features(images)
        return self.net.head(features).argmax(1), features


@dataclass(frozen=True)
class ClassScores:
    per_class: dict[str, dict[str, float]]
    """Class name -> accuracy, diversity, real_diversity, diversity_ratio."""
    accuracy: float
    diversity_ratio: float
    samples_per_class: int
    learned: dict[str, float] = field(default_factory=dict)
    """FID and KID of all samples against the real images, where the Inception weights are on disk."""
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "diversity_ratio": self.diversity_ratio,
                "samples_per_class": self.samples_per_class, **self.learned, "per_class": self.per_class,
                "skipped": self.skipped}


def mean_pairwise_distance(features: torch.Tensor) -> float:
    n = len(features)
    if n < 2:
        return float("nan")
    distances = torch.cdist(features, features)
    return float(distances.sum() / (n * (n - 1)))


def score_class_conditional(sampler: Sampler, judge: ClassifierJudge, data_root: str | Path | None = None,
                            per_class: int = 50, seed: int = 0, weights: Path | None = None,
                            learned: bool = True) -> ClassScores:
    """Accuracy and diversity of ``per_class`` samples of every class; real diversity from ``data_root`` (its
    first ``per_class`` images of each class) where given, and FID/KID of all samples against those real images
    where ``weights`` (a folder, ``eval.weights.weights_dir``) holds the FID Inception file."""
    if judge.class_names != sampler.class_names:
        raise ValueError(f"the judge knows classes {', '.join(judge.class_names)}, the model "
                         f"{', '.join(sampler.class_names)}: train the judge on the model's data")
    real_by_class: dict[int, torch.Tensor] = {}
    if data_root is not None:
        cfg = sampler.config.data
        data = ClassDataset(DataConfig(root=Path(data_root), layout="classes", crop_size=judge.image_size,
                                       load_size=judge.image_size, input_nc=cfg.output_nc, output_nc=cfg.output_nc,
                                       val_split=None, flip=False), "train", train=False)
        for c in range(len(sampler.class_names)):
            members = (data.labels == c).nonzero()[0][:per_class]
            if len(members):
                real_by_class[c] = torch.stack([data[int(i)]["image"] for i in members])
    per: dict[str, dict[str, float]] = {}
    drawn: list[torch.Tensor] = []
    for c, name in enumerate(sampler.class_names):
        images = sampler.sample([c] * per_class, seed=seed)
        drawn.append(images)
        if images.shape[-1] != judge.image_size:
            images = torch.nn.functional.interpolate(images, size=judge.image_size, mode="bilinear")
        predicted, features = judge.read(images)
        row = {"accuracy": float((predicted == c).float().mean()), "diversity": mean_pairwise_distance(features)}
        if c in real_by_class:
            row["real_diversity"] = mean_pairwise_distance(judge.read(real_by_class[c])[1])
            row["diversity_ratio"] = row["diversity"] / row["real_diversity"]
        per[name] = {k: round(v, 4) for k, v in row.items()}
    ratios = [r["diversity_ratio"] for r in per.values() if "diversity_ratio" in r]
    scores, skipped = _fid_kid(torch.cat(drawn), list(real_by_class.values()), weights) if learned else ({}, [])
    return ClassScores(per, round(sum(r["accuracy"] for r in per.values()) / len(per), 4),
                       round(sum(ratios) / len(ratios), 4) if ratios else float("nan"), per_class, scores, skipped)


def _fid_kid(samples: torch.Tensor, real: list[torch.Tensor], weights: Path | None) -> tuple[dict[str, float],
                                                                                          list[str]]:
    from pixforge.data.image_io import from_tensor
    from pixforge.eval.inception import FIDInception, fid, inception_features, kid
    from pixforge.eval.weights import MissingWeights, weights_dir

    if not real:
        return {}, ["fid/kid skipped: no real images given (--data)"]
    try:
        inception = FIDInception.from_file(weights_dir(weights))
    except MissingWeights as err:
        return {}, [str(err)]
    fake = inception_features(inception, [from_tensor(x) for x in samples])
    true = inception_features(inception, [from_tensor(x) for x in torch.cat(real)])
    return {"fid": round(fid(fake, true), 4), "kid": round(kid(fake, true)[0], 6)}, []
