"""Common random numbers: one random stream per (seed, purpose), so paired arms see the same batches.

Two arms of a comparison trained with the same seed must draw the same crops, flips,
augmentations and unlabelled batches until the treatment makes them differ. Drawing from
torch's global generator breaks that as soon as one arm draws once more (an unlabelled batch,
a dropout mask, a pseudo-label pass): every later crop moves. Here each purpose gets its own
generator, derived from the seed and the purpose's name alone, so what one purpose draws never
shifts another's draws, and a later round of a loop reuses its seed under a new purpose
(``"crops/round-2"``) instead of ``seed + 10000``.

The derivation is NumPy's :class:`numpy.random.SeedSequence` (entropy = the seed, spawn key =
the SHA-256 words of the purpose), the well-kept way to make independent streams from one seed;
torch generators are seeded from its first 63 bits.

>>> a, b = torch_generator(0, "crops"), torch_generator(0, "crops")
>>> torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))
True
>>> stream_seed(0, "crops") == stream_seed(0, "flips")
False
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from .. import CellreproError


def _key(purpose: str) -> tuple[int, ...]:
    if not isinstance(purpose, str) or not purpose:
        raise CellreproError(f"a random stream's purpose must be a non-empty string; got {purpose!r}")
    digest = hashlib.sha256(purpose.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))


def seed_sequence(seed: int, purpose: str) -> np.random.SeedSequence:
    """The :class:`numpy.random.SeedSequence` of ``(seed, purpose)``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise CellreproError(f"seed must be a non-negative integer; got {seed!r}")
    return np.random.SeedSequence(entropy=int(seed), spawn_key=_key(purpose))


def stream_seed(seed: int, purpose: str) -> int:
    """A 63-bit integer seed for ``(seed, purpose)`` (for libraries that take an integer)."""
    return int(seed_sequence(seed, purpose).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def numpy_generator(seed: int, purpose: str) -> np.random.Generator:
    """A NumPy generator for ``(seed, purpose)``."""
    return np.random.default_rng(seed_sequence(seed, purpose))


def torch_generator(seed: int, purpose: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator for ``(seed, purpose)`` on ``device`` (CPU by default: draws on the CPU
    generator give the same numbers on any machine, and the indices are then moved)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(stream_seed(seed, purpose))
    return gen


class Streams:
    """The generators of one seed, one per purpose, created on first use and kept.

    >>> s = Streams(3)
    >>> s.torch("crops") is s.torch("crops"), s.seed
    (True, 3)
    """

    def __init__(self, seed: int):
        seed_sequence(seed, "check")  # refuses a bad seed now
        self.seed = int(seed)
        self._torch: dict[str, torch.Generator] = {}
        self._numpy: dict[str, np.random.Generator] = {}

    def torch(self, purpose: str) -> torch.Generator:
        if purpose not in self._torch:
            self._torch[purpose] = torch_generator(self.seed, purpose)
        return self._torch[purpose]

    def numpy(self, purpose: str) -> np.random.Generator:
        if purpose not in self._numpy:
            self._numpy[purpose] = numpy_generator(self.seed, purpose)
        return self._numpy[purpose]

    def __repr__(self) -> str:
        return f"Streams(seed={self.seed}, purposes={sorted(set(self._torch) | set(self._numpy))})"
