"""Index sampling for one or many processes, reshuffled per epoch and resumable mid-epoch."""
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ShardedSampler(Sampler[int]):
    """The indices 0..size-1 this rank reads in the current epoch.

    shuffle: a permutation drawn from (seed, epoch), the same on every rank; each rank takes
    every world_size-th entry starting at its rank. drop_last: the permutation is first cut to
    a multiple of world_size so all ranks see equally many samples (training); otherwise
    nothing is dropped or repeated and ranks may differ by one (validation). `set_epoch(epoch,
    skip)` selects the epoch and skips this rank's first `skip` indices (resuming mid-epoch).
    """

    def __init__(self, size: int, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = True):
        self.size, self.rank, self.world_size = size, rank, world_size
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def _indices(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        if self.drop_last:
            order = order[:self.size - self.size % self.world_size]
        return order[self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices()[self.skip:])

    def __len__(self) -> int:
        return max(self.samples_per_epoch() - self.skip, 0)

    def samples_per_epoch(self) -> int:
        """Indices this rank reads in a whole epoch, ignoring `skip`."""
        if self.drop_last:
            return self.size // self.world_size
        return len(range(self.rank, self.size, self.world_size))
