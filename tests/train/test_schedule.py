"""The learning rate is a pure function of the step: never negative, never rising in decay, 0 at the end."""

import itertools

import pytest

from pixforge.config import TrainConfig
from pixforge.train.schedule import Schedule

CONFIGS = [  # (n_epochs, n_epochs_decay, max_steps, steps_per_epoch)
    (100, 100, None, 400), (3, 4, None, 5), (0, 7, None, 3), (5, 0, None, 10),
    (100, 100, 2000, 400), (20, 10, 4000, 100), (1, 1, 7, 3), (0, 5, 50, 10), (5, 0, 33, 10), (2, 3, 1, 4),
]


def schedule(n_epochs, n_epochs_decay, max_steps, steps_per_epoch) -> Schedule:
    t = TrainConfig(n_epochs=n_epochs, n_epochs_decay=n_epochs_decay, max_steps=max_steps)
    return Schedule.from_config(t, steps_per_epoch)


@pytest.mark.parametrize("config", CONFIGS)
def test_rate_is_never_negative_and_never_rises_once_decay_began(config):
    s = schedule(*config)
    factors = [s.factor(step) for step in range(s.total_steps)]
    assert all(0.0 <= f <= 1.0 for f in factors)
    assert all(b <= a for a, b in itertools.pairwise(factors))


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[2] is not None and c[1] > 0])
def test_with_max_steps_the_rate_reaches_exactly_zero_at_the_last_step(config):
    s = schedule(*config)
    assert s.factor(s.total_steps - 1) == 0.0


def test_with_max_steps_the_phases_keep_their_epoch_ratio():
    s = schedule(20, 10, 3000, 100)  # 2 : 1
    assert s.constant_steps == 2000
    assert s.factor(1999) == s.factor(2000) == 1.0 > s.factor(2001) > 0  # decay runs linearly from 1 at step 2000
    assert s.factor(2499) == pytest.approx(0.5, abs=1e-3)


def test_the_demo_run_past_its_epochs_no_longer_trains_backwards():
    # `pixforge demo --steps 4000`: the demo preset has 20 + 10 epochs of ~100 steps; the old per-epoch rule
    # went negative from epoch 31 on.
    s = schedule(20, 10, 4000, 100)
    assert min(s.factor(step) for step in range(4000)) == 0.0


def test_without_max_steps_it_is_the_references_per_epoch_rule():
    s = schedule(3, 4, None, 5)
    per_epoch = [s.factor(epoch * 5) for epoch in range(7)]
    # reference lambda_rule: 1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)
    assert per_epoch == pytest.approx([1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2])
    assert s.total_steps == 35 and s.factor(19) == s.factor(15)  # constant within an epoch


def test_a_resumed_run_gets_the_same_rate_at_the_same_step():
    full = schedule(2, 3, 100, 7)
    resumed = schedule(2, 3, 100, 7)  # nothing but the config and the step decide the rate
    assert [full.factor(s) for s in range(55, 100)] == [resumed.factor(s) for s in range(55, 100)]


def test_nothing_to_train_is_an_error():
    with pytest.raises(ValueError, match="n_epochs and train.n_epochs_decay are both 0"):
        schedule(0, 0, None, 10)
