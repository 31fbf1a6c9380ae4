"""Which samples each step sees, and with which augmentation seed: a pure function of (seed, epoch).

Because order and augmentation depend only on the run seed, the epoch and the sample index (never on
worker processes or on how many steps ran before), a resumed run sees exactly the batches an
uninterrupted run would, and N processes with batch b see exactly what one process with batch N*b sees.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

Key = tuple[int, int]  # (dataset index, augmentation seed)


class EpochBatches:
    def __init__(self, n_items: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True) -> None:
        if n_items == 0:
            raise ValueError("the training set is empty")
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.rank, self.world_size, self.shuffle = rank, world_size, shuffle
        global_batch = batch_size * world_size
        # Drop the ragged tail so every step has a full batch on every rank (as DistributedSampler pads).
        self.steps_per_epoch = max(1, n_items // global_batch) if n_items >= global_batch else 1
        self._per_epoch = self.steps_per_epoch * global_batch

    def order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        idx = rng.permutation(self.n_items) if self.shuffle else np.arange(self.n_items)
        repeats = math.ceil(self._per_epoch / self.n_items)
        return np.tile(idx, repeats)[: self._per_epoch]

    def batches(self, epoch: int, start: int = 0) -> Iterator[list[Key]]:
        """This rank's batches of ``epoch`` from batch ``start`` on."""
        order = self.order(epoch)
        aug = np.random.default_rng([self.seed, epoch, 1]).integers(0, 2**31, self.n_items)
        global_batch = self.batch_size * self.world_size
        for step in range(start, self.steps_per_epoch):
            chunk = order[step * global_batch:(step + 1) * global_batch]
            # Interleave like DistributedSampler: rank r takes items r, r+W, r+2W, ...
            mine = chunk[self.rank::self.world_size]
            yield [(int(i), int(aug[i])) for i in mine]
