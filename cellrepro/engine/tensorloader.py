"""Mini-batches of in-memory tensors, sampled on whatever device the tensors are on.

A ``DataLoader`` over a ``TensorDataset`` collates every batch on the CPU, one sample at a
time, then copies it to the GPU: for the small crops the chapters train on, that host work
and the copy cost more than the step. :class:`TensorLoader` keeps the whole set where it is
(:func:`cellrepro.engine.train.fit` moves a copy to the training device once) and cuts batches by
indexing there.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch

from .. import CellreproError


class TensorLoader:
    """A re-iterable of tuples of batches from tensors that share their first dimension.

    Each ``iter()`` is one epoch. With ``shuffle`` the order is ``torch.randperm`` drawn from
    torch's global CPU generator at the start of the epoch, so seeding (and restoring the RNG
    state, as :func:`cellrepro.engine.train.fit` does on resume) reproduces it on any device;
    or, with ``generator``, from that generator alone (:mod:`cellrepro.engine.streams`), so that
    other draws of the same process (an unlabelled batch, a pseudo-label pass) never move the
    order: two arms with the same seed see the same batches.

    Args:
        *tensors: e.g. images (N, C, H, W) and masks (N, 1, H, W).
        batch_size: samples per batch.
        shuffle: a new random order every epoch (else the stored order).
        drop_last: drop the last, smaller batch.
        generator: a CPU ``torch.Generator`` for the order (None: torch's global generator).

    Example:
        >>> x, y = torch.arange(10.0), torch.arange(10) * 2
        >>> loader = TensorLoader(x, y, batch_size=4, shuffle=False)
        >>> len(loader), [b[1].tolist() for b in loader]
        (3, [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]])
        >>> len(TensorLoader(x, y, batch_size=4, drop_last=True))
        2
    """

    def __init__(self, *tensors: torch.Tensor, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 generator: torch.Generator | None = None):
        if not tensors:
            raise CellreproError("TensorLoader needs at least one tensor")
        sizes = [t.shape[0] if t.dim() else None for t in tensors]
        if None in sizes or len(set(sizes)) != 1:
            raise CellreproError(f"TensorLoader: tensors must share their first dimension, got sizes {sizes}")
        if batch_size < 1:
            raise CellreproError(f"TensorLoader: batch_size must be >= 1, got {batch_size}")
        if drop_last and sizes[0] < batch_size:
            raise CellreproError(f"TensorLoader: {sizes[0]} samples make no full batch of {batch_size} (drop_last)")
        self.tensors = tuple(tensors)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = generator
        self.channels_last = False
        self.rank, self.world_size = 0, 1

    @property
    def n(self) -> int:
        """Samples per epoch (this process's share when sharded)."""
        return len(range(self.rank, self.tensors[0].shape[0], self.world_size))

    @property
    def device(self) -> torch.device:
        return self.tensors[0].device

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        total = self.tensors[0].shape[0]
        order = torch.randperm(total, generator=self.generator) if self.shuffle else None  # CPU: same on any device
        if self.world_size > 1:
            order = (torch.arange(total) if order is None else order)[self.rank::self.world_size]
        if order is not None and self.device.type == "cuda":  # one small copy per epoch, not waited for
            order = order.pin_memory().to(self.device, non_blocking=True)
        elif order is not None:
            order = order.to(self.device)
        for i in range(len(self)):
            lo, hi = i * self.batch_size, min((i + 1) * self.batch_size, self.n)
            if order is None:
                batch = tuple(t[lo:hi] for t in self.tensors)
            else:
                idx = order[lo:hi]
                batch = tuple(t.index_select(0, idx) for t in self.tensors)
            if self.channels_last:
                batch = tuple(b.contiguous(memory_format=torch.channels_last) if b.dim() == 4 else b for b in batch)
            yield batch

    def to(self, device: torch.device | str, channels_last: bool = False) -> "TensorLoader":
        """A copy on ``device`` (this loader is left as it is); ``channels_last`` stores 4-D
        tensors as NHWC and yields NHWC batches."""
        moved = [t.to(device) for t in self.tensors]
        if channels_last:
            moved = [t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in moved]
        return self._copy(moved, channels_last=channels_last)

    def shard(self, rank: int, world_size: int) -> "TensorLoader":
        """The share of process ``rank`` of ``world_size``: every ``world_size``-th sample of each
        epoch's order (all processes draw the same order from the same seed)."""
        return self._copy(self.tensors, rank=rank, world_size=world_size)

    def _copy(self, tensors, **changes) -> "TensorLoader":
        out = TensorLoader(*tensors, batch_size=self.batch_size, shuffle=self.shuffle, drop_last=self.drop_last,
                           generator=self.generator)
        out.channels_last, out.rank, out.world_size = self.channels_last, self.rank, self.world_size
        for name, value in changes.items():
            setattr(out, name, value)
        return out

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(t.shape)) for t in self.tensors)
        return (f"TensorLoader({shapes}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, device={self.device})")
