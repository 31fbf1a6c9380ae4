"""What the paired recipes (pix2pix, pix2pixHD, SPADE) share: previews and validation of input -> target."""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from pixforge.train.recipe import Recipe
from pixforge.train.samples import mean_l1, paired_rows


class PairedRecipe(Recipe):
    """A recipe whose data are (input, target) pairs and whose generator ``G`` maps input to target."""

    @property
    def sample_generator(self) -> nn.Module:
        """What maps an item's input alone to an image, for previews and validation."""
        return self.networks["G"]

    def preview_rows(self, dataset: Any, count: int) -> list[list[np.ndarray]]:
        """input | output | target per row."""
        return paired_rows(self.sample_generator, dataset, self.device, self.precision, count)

    def validate(self, dataset: Any) -> dict[str, float]:
        """Mean L1 of G(input) against the target, the way inference translates (``train.samples``)."""
        return {"val_l1": mean_l1(self.sample_generator, dataset, self.device, self.precision)}
