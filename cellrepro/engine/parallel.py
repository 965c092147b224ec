"""Independent units of work (seeds) side by side on the CPU's cores, one thread each.

The chapters' book profiles train small nets (an SE-U-Net of widths 8-64 on 96 px crops), for which
torch's intra-op threads do not pay: on the 2-core CI machine 100 updates took 10.5 s with one thread
and 12.7 s with two (``benchmarks/parallel_seeds.py`` measures the ratio). Seeds are
independent, so running one per core, each single-threaded, does what the threads could not.

Every unit runs with one torch thread whether it runs in a worker or in this process, so the
numbers do not depend on how many workers there were (a float sum's order depends on the thread
count). On a GPU the units run one after the other in this process (the device is the bottleneck,
and one CUDA context per worker would cost more than it gives).

joblib's ``loky`` backend (``inner_max_num_threads=1``) starts the workers and limits their thread
pools; nothing here is specific to seeds but the name.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch

from .progress import bar


@contextmanager
def one_thread() -> Iterator[None]:
    """torch's intra-op threads set to 1 inside the block, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _single(fn: Callable[..., Any], item: Any) -> Any:
    with one_thread():
        return fn(item)


def workers_for(n_items: int, workers: int | str = "auto", device: str = "auto") -> int:
    """How many worker processes :func:`map_units` uses: ``"auto"`` is one per CPU core this process
    may use (capped by ``n_items``) on the CPU and 1 (in-process) when ``device`` resolves to a GPU;
    an integer is taken as given (at least 1).

    >>> workers_for(6, 1), workers_for(1, "auto")
    (1, 1)
    """
    from .hardware import torch_device

    if workers != "auto":
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be 'auto' or an integer >= 1, got {workers!r}")
        return min(workers, max(n_items, 1))
    if torch_device(device).type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, n_items))


def map_units(fn: Callable[[Any], Any], items: Sequence[Any], workers: int | str = "auto", device: str = "auto",
              desc: str = "seeds", unit: str = "seed") -> list[Any]:
    """``[fn(item) for item in items]``, the items spread over :func:`workers_for` processes, each
    single-threaded, with a progress bar over finished items; results in the order of ``items``.

    ``fn`` and the items must pickle (a module-level function, or a :func:`functools.partial` of
    one); what ``fn`` prints or logs to the run record inside a worker is lost, so it should return
    everything the caller needs. An exception in a unit is raised here, with the unit's traceback.

    >>> map_units(abs, [-1, 2, -3], workers=1)
    [1, 2, 3]
    """
    items = list(items)
    n = workers_for(len(items), workers, device)
    if n == 1:
        return [_single(fn, item) for item in bar(items, desc=desc, unit=unit)]
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky", inner_max_num_threads=1):
        results = Parallel(n_jobs=n, return_as="generator")(delayed(_single)(fn, item) for item in items)
        return list(bar(results, total=len(items), desc=f"{desc} ({n} workers)", unit=unit))


__all__ = ["map_units", "one_thread", "workers_for"]
