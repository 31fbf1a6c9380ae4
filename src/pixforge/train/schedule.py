"""Learning-rate schedule of the paper: constant for ``n_epochs``, then linear decay over ``n_epochs_decay``."""

from __future__ import annotations


def lr_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """Multiplier of the base learning rate during 0-based ``epoch`` (reference ``lambda_rule``)."""
    return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)
