"""Learning-rate schedule of the paper: constant, then linear decay to zero, as a pure function of the step.

Without ``train.max_steps`` this is the reference's per-epoch rule (``lambda_rule`` in its ``networks.py``):
constant for ``n_epochs``, then a linear decay over ``n_epochs_decay`` epochs. With ``max_steps`` the run's
length is set in steps instead, so the two phases keep their ``n_epochs : n_epochs_decay`` ratio inside it and
the rate reaches exactly 0 at the last step. The rate is never negative and never rises once decay began,
and a resumed run gets the same rate at the same step because nothing here depends on history.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixforge.config import TrainConfig


@dataclass(frozen=True)
class Schedule:
    total_steps: int
    steps_per_epoch: int
    n_epochs: int
    n_epochs_decay: int
    by_steps: bool
    """True when ``max_steps`` set the length: the decay is then per step, ending at 0 on the last one."""

    @classmethod
    def from_config(cls, t: TrainConfig, steps_per_epoch: int) -> Schedule:
        if t.max_steps is not None:
            return cls(t.max_steps, steps_per_epoch, t.n_epochs, t.n_epochs_decay, by_steps=True)
        total = (t.n_epochs + t.n_epochs_decay) * steps_per_epoch
        if total == 0:
            raise ValueError("train.n_epochs and train.n_epochs_decay are both 0: nothing to train "
                             "(or set train.max_steps)")
        return cls(total, steps_per_epoch, t.n_epochs, t.n_epochs_decay, by_steps=False)

    @property
    def constant_steps(self) -> int:
        """Steps at the full rate before the decay starts."""
        if not self.by_steps:
            return self.n_epochs * self.steps_per_epoch
        epochs = self.n_epochs + self.n_epochs_decay
        return self.total_steps if epochs == 0 else round(self.total_steps * self.n_epochs / epochs)

    def factor(self, step: int) -> float:
        """Multiplier of ``train.lr`` for the step with 0-based index ``step``."""
        if not self.by_steps:
            epoch = step // self.steps_per_epoch
            return max(0.0, 1.0 - max(0, epoch + 1 - self.n_epochs) / float(self.n_epochs_decay + 1))
        start, last = self.constant_steps, self.total_steps - 1
        if step < start:
            return 1.0
        if last <= start:  # a decay phase of one step: that step is the last, at rate 0
            return 0.0
        return max(0.0, (last - step) / (last - start))
