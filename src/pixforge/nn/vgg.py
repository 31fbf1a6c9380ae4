"""VGG19 perceptual loss (pix2pixHD section 3.3, SPADE): L1 between VGG19 features of generated and real images.

The network is VGG19's convolutional part up to relu5_1, written here with torchvision's parameter names
(``features.0.weight`` ...) so torchvision's ImageNet file loads as is: torchvision itself does not run on
every install (nor on our CI machine), and the weights cannot be downloaded at training time offline. The
file is looked up at ``loss.vgg_weights`` or at torchvision's own cache name in the torch hub folder, and its
SHA-256 is checked against the prefix in the name when it is the standard file.

As in both papers' code, images go in as they are ([-1, 1]), without ImageNet mean/std normalisation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
LAYER_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
"""Weights of relu1_1 .. relu5_1 (pix2pixHD's ``VGGLoss``): deeper, more semantic layers count more."""

# VGG19 ("configuration E") up to relu5_1: channels of each 3x3 conv, "M" a 2x2 max-pool.
_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
_SLICE_ENDS = (2, 7, 12, 21, 30)
"""``features`` indices after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1."""


class VGGWeightsError(FileNotFoundError):
    """The VGG19 weights file is missing or not the expected one; the one-line message says where to put it."""


def default_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


class VGG19Features(nn.Module):
    """VGG19's ``features[:30]``; ``forward`` returns relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        return super().train(False)  # a fixed feature extractor: always eval

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey images as RGB
        out, start = [], 0
        for end in _SLICE_ENDS:
            x = self.features[start:end](x)
            out.append(x)
            start = end
        return out


def load_vgg19(path: str | Path | None = None) -> VGG19Features:
    """VGG19 features with torchvision's ImageNet weights from ``path`` (default: the torch hub cache)."""
    file = Path(path) if path is not None else default_weights_path()
    if not file.is_file():
        raise VGGWeightsError(
            f"{file}: VGG19 weights for the VGG loss not found; download torchvision's {VGG19_FILE} ({VGG19_URL}) "
            f"to {default_weights_path()} or set loss.vgg_weights to its path, or set loss.vgg_loss: false")
    if file.name == VGG19_FILE:
        digest = _sha256(file)
        if not digest.startswith(VGG19_FILE.split("-")[1].split(".")[0]):
            raise VGGWeightsError(f"{file}: SHA-256 {digest[:8]}... does not match the {VGG19_FILE} its name "
                                  f"claims (a damaged or different file); download it again from {VGG19_URL}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)  # tensors only, never code
    except Exception as err:
        raise VGGWeightsError(f"{file}: cannot be read as a weights-only state_dict ({err})") from None
    net = VGG19Features()
    wanted = net.state_dict()
    missing = [k for k in wanted if k not in state or state[k].shape != wanted[k].shape]
    if missing:
        raise VGGWeightsError(f"{file}: not torchvision VGG19 weights (no '{missing[0]}' of shape "
                              f"{tuple(wanted[missing[0]].shape)}); use {VGG19_FILE} from {VGG19_URL}")
    net.load_state_dict({k: state[k] for k in wanted})
    return net


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class VGGLoss(nn.Module):
    """sum_i w_i |VGG_i(fake) - VGG_i(real)|_1 over relu1_1..relu5_1; real features carry no gradient."""

    def __init__(self, vgg: VGG19Features) -> None:
        super().__init__()
        self.vgg = vgg

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            real_features = self.vgg(real)
        loss = fake.new_zeros((), dtype=torch.float32)
        for weight, f, r in zip(LAYER_WEIGHTS, self.vgg(fake), real_features, strict=True):
            loss = loss + weight * F.l1_loss(f.float(), r.float())
        return loss
