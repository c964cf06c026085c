"""Training batches that hold one kind of example each: one task of a joint model, one clip length with
`num_frames="auto"`."""

from collections import defaultdict
from collections.abc import Hashable, Iterator, Sequence

import numpy as np
from transformers.trainer_pt_utils import BatchRebalanceSampler


class GroupedBatchSampler(BatchRebalanceSampler):
    """Batches of `batch_size` examples that share a key, in an order drawn from (seed, epoch) alone.

    Each epoch every group's examples are shuffled and cut into batches (a group's last batch may be smaller: every
    example is seen once per epoch), then all batches are shuffled together. Process `rank` of `world_size` takes
    every `world_size`-th batch; the processes' lists are made equally long by repeating batches from the start, so
    DDP never waits on a process with fewer steps. A resumed run draws the very batches of an uninterrupted one.

    It is a `BatchRebalanceSampler` only in the sense the Trainer uses that class for: a rank-aware batch sampler,
    which the Trainer passes to the DataLoader as its `batch_sampler` without sharding it again.
    """

    def __init__(
        self, keys: Sequence[Hashable], batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        groups: dict[Hashable, list[int]] = defaultdict(list)
        for index, key in enumerate(keys):
            groups[key].append(index)
        self.groups = [np.asarray(indices) for _, indices in sorted(groups.items(), key=lambda item: str(item[0]))]
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        """This epoch's batches of all processes, in order."""
        rng = np.random.default_rng([self.seed, self.epoch])
        batches = [
            group[order[start:start + self.batch_size]].tolist()
            for group in self.groups
            for order in [rng.permutation(len(group))]
            for start in range(0, len(group), self.batch_size)
        ]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __len__(self) -> int:
        num_batches = sum(-(-len(group) // self.batch_size) for group in self.groups)
        return -(-num_batches // self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        for step in range(len(self)):
            yield batches[(step * self.world_size + self.rank) % len(batches)]
