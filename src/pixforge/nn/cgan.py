"""Class-conditional GAN networks (Mirza & Osindero 2014): a class label and noise z in, an image of that class out.

``ClassConditionalGenerator`` is DCGAN's (Radford et al. 2016): the label's learned embedding concatenated with
z, a linear layer to a 4×4 (or 7×7) map, stride-2 transposed convolutions with BatchNorm and ReLU doubling it to
the image size, a 3×3 convolution and tanh. ``ProjectionDiscriminator`` conditions by projection (Miyato &
Koyama, "cGANs with Projection Discriminator", ICLR 2018): D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩, where φ(x)
sums the last feature map over its positions; with spectral norm on every layer (Miyato et al. 2018).

Both take ``forward(labels, z)`` / ``forward(images, labels)``: labels are class indices (long), z is
(N, z_dim) standard normal noise.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from pixforge.nn.registry import register_discriminator, register_generator


def _start_size(image_size: int) -> int:
    """The side of the first feature map: 7 for 28·2^k images (MNIST), else 4; image_size = start·2^k, k ≥ 1."""
    for start in (7, 4):
        size = image_size
        while size > start and size % 2 == 0:
            size //= 2
        if size == start and image_size > start:
            return start
    raise ValueError(f"data.crop_size {image_size}: a class-conditional generator makes 4·2^k or 7·2^k pixels "
                     f"(28, 32, 64, 128, ...)")


class ClassConditionalGenerator(nn.Module):
    def __init__(self, num_classes: int, output_nc: int = 1, ngf: int = 64, z_dim: int = 64,
                 image_size: int = 28) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError("a class-conditional generator needs at least one class (data.class_names)")
        start = _start_size(image_size)
        doublings = (image_size // start).bit_length() - 1
        widths = [ngf * 2 ** (doublings - 1 - i) for i in range(doublings)]  # e.g. 128, 64 for ngf 64, 28 px
        self.num_classes, self.z_dim, self.image_size = num_classes, z_dim, image_size
        self.start, self.first = start, widths[0] * 2
        self.embed = nn.Embedding(num_classes, z_dim)
        self.project = nn.Sequential(nn.Linear(2 * z_dim, self.first * start * start, bias=False))
        self.stem = nn.Sequential(nn.BatchNorm2d(self.first), nn.ReLU(True))
        layers: list[nn.Module] = []
        c_in = self.first
        for c in widths:
            layers += [nn.ConvTranspose2d(c_in, c, 4, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
            c_in = c
        layers += [nn.Conv2d(c_in, output_nc, 3, 1, 1), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.project(torch.cat((z, self.embed(labels).to(z.dtype)), dim=1))
        return self.model(self.stem(h.view(-1, self.first, self.start, self.start)))


class ProjectionDiscriminator(nn.Module):
    def __init__(self, num_classes: int, input_nc: int = 1, ndf: int = 64, image_size: int = 28,
                 spectral_norm: bool = True, minibatch_std: bool = False) -> None:
        super().__init__()
        sn = apply_spectral_norm if spectral_norm else (lambda layer: layer)
        layers: list[nn.Module] = [sn(nn.Conv2d(input_nc, ndf, 3, 1, 1)), nn.LeakyReLU(0.1, True)]
        c, size = ndf, image_size
        while size > _start_size(image_size):  # stride-2 convolutions down to G's first map size
            layers += [sn(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.1, True)]
            c, size = 2 * c, size // 2
        self.features_low = nn.Sequential(*layers)
        self.minibatch_std = minibatch_std
        self.features_top = nn.Sequential(sn(nn.Conv2d(c + int(minibatch_std), c, 3, 1, 1)), nn.LeakyReLU(0.1, True))
        self.score = sn(nn.Linear(c, 1))
        self.embed = sn(nn.Embedding(num_classes, c))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        h = self.features_low(images)
        if self.minibatch_std:  # how much the batch varies, as one more channel (Karras et al. 2018)
            spread = h.float().std(dim=0, unbiased=False).mean() if h.shape[0] > 1 else h.new_zeros(())
            h = torch.cat((h, spread.to(h.dtype).expand(h.shape[0], 1, *h.shape[2:])), dim=1)
        return self.features_top(h)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(images).sum(dim=(2, 3))  # φ(x): summed over positions (the paper's ResNet D too)
        return self.score(h) + (self.embed(labels) * h).sum(dim=1, keepdim=True)


@register_generator("dcgan")
def dcgan(num_classes: int = 10, output_nc: int = 1, ngf: int = 64, z_dim: int = 64, crop_size: int = 28
          ) -> ClassConditionalGenerator:
    """Class label + z -> image of ``crop_size`` pixels (``model.kind: cgan``)."""
    return ClassConditionalGenerator(num_classes, output_nc, ngf, z_dim, crop_size)


@register_discriminator("projection")
def projection(num_classes: int = 10, input_nc: int = 1, ndf: int = 64, crop_size: int = 28,
               spectral_norm: bool = True, minibatch_std: bool = False) -> ProjectionDiscriminator:
    return ProjectionDiscriminator(num_classes, input_nc, ndf, crop_size, spectral_norm, minibatch_std)
