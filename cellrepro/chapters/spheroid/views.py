"""The views of a z-stack the spheroid chapter trains and scores on (Sec. 3.1-3.3 of Nguyen et al.
2024), computed once per stack: ``weak`` (SBS-Stacking of the ``k`` best slices), ``strong``
(focus stacking of all slices) and ``sparse`` (SBS-Stacking of ``sparse_k`` < ``k`` slices), with
the slice rankings behind them and a cached set of views for stacks every seed shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ...data.types import ZStack
from ...engine.progress import bar as progress_bar


@dataclass
class Scene:
    """The views of one stack (see the module docstring) and its labels; images in [0, 1]."""

    name: str
    weak: np.ndarray
    strong: np.ndarray
    sparse: np.ndarray
    labels: np.ndarray | None
    classes: dict[int, int] = field(default_factory=dict)
    in_focus: np.ndarray | None = None  # the synthetic stack's all-in-focus truth, where it has one


def _unit(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def rankings(stacks: Sequence[ZStack], normalize: str = "stack", progress: bool = True,
             **blur_kwargs: Any) -> list[np.ndarray]:
    """Each stack's slices, best first by the Eq. 9 scores of its blur maps (``normalize`` as in
    :func:`make_scenes`): computed once, they serve every ``k``. ``normalize="oracle"``: the
    depth oracle's order instead (the slices holding the most object pixels in focus, from a
    synthetic stack's known depth map; a control, not a method)."""
    from ...stacking import blur_map, slice_scores
    from ...stacking.quality import oracle_order

    if normalize == "oracle":
        missing = [s.name for s in stacks if s.depth is None]
        if missing:
            raise ValueError(f"the oracle order needs each stack's depth map; {missing[0]} has none")
        return [oracle_order(s.depth, len(s.stack)) for s in stacks]
    return [np.argsort(-slice_scores(blur_map(s.stack, normalize=normalize, **blur_kwargs)), kind="stable")
            for s in progress_bar(stacks, desc="blur maps", unit="stack", disable=not progress)]


def _stored_orders(dataset: str, n: int, seed: int, normalize: str, stand_in: dict[str, Any]) -> list[np.ndarray]:
    from ... import data

    return rankings(data.load(dataset, n=n, seed=seed, **stand_in), normalize)


def shared_scenes(dataset: str, n: int, seed: int, k: int, sparse_k: int, normalize: str = "stack",
                  data_root: str | None = None, first: int = 0, **stand_in: Any) -> list[Scene]:
    """The views of ``n`` stacks of ``dataset`` generated with ``seed`` and the ``stand_in``
    parameters (size, slices, scene, ...). The slice rankings (the blur maps, most of the cost)
    are computed once per stack and kept in the shared-work cache (:mod:`cellrepro.engine.cache`):
    a test set that every seed, every ``k`` and every notebook uses costs its blur maps once; the
    views themselves are a few focus stacks. With ``data_root`` the stacks are read from that
    folder instead (not cached; ``seed`` and ``stand_in`` unused) and ``n`` of them from its
    ``first`` are used."""
    from ... import data
    from ...engine.cache import shared

    if data_root is not None:
        stacks = data.load(dataset, data_root=data_root)
        if len(stacks) < first + n:
            raise ValueError(f"{data_root} holds {len(stacks)} stacks; stacks {first} to {first + n - 1} are needed")
        return make_scenes(stacks[first:first + n], k, sparse_k, normalize)
    global _cached_orders
    if _cached_orders is None:
        _cached_orders = shared(_stored_orders)
    orders = _cached_orders(dataset, n, seed, normalize, dict(stand_in))
    return make_scenes(data.load(dataset, n=n, seed=seed, **stand_in), k, sparse_k, orders=orders)


_cached_orders = None


def view_ssim(scenes: Sequence[Scene], view: str = "weak") -> float:
    """Mean over ``scenes`` of the ``view`` image's SSIM on the cells against the all-in-focus
    truth (:func:`cellrepro.stacking.quality.image_quality`); NaN where a scene has no truth (a
    user's stacks)."""
    from ...stacking.quality import image_quality

    if not scenes or any(sc.in_focus is None or sc.labels is None for sc in scenes):
        return float("nan")
    return float(np.mean([image_quality(getattr(sc, view), sc.in_focus, sc.labels)["ssim_cells"] for sc in scenes]))


def make_scenes(stacks: Sequence[ZStack], k: int, sparse_k: int, normalize: str = "stack", progress: bool = True,
                orders: Sequence[np.ndarray] | None = None, **blur_kwargs: Any) -> list[Scene]:
    """The weak, strong and sparse views of every stack (one computation of the blur maps each).

    ``normalize`` chooses the blur maps that rank the slices: ``"stack"`` (default) ranks them
    in focus order on the synthetic stacks, the paper's per-slice HiFST maps (``"slice"``) rank
    them nearly in reverse (see the stacking section), which would make the weak view the worst
    one; the choice is a parameter of every notebook that trains. ``orders`` (from
    :func:`rankings`) skips the blur maps.
    """
    from ...stacking import focus_stack

    if not 1 <= sparse_k < k:
        raise ValueError(f"sparse_k must be between 1 and k - 1 = {k - 1}, got {sparse_k}")
    for s in stacks:
        if k > len(s.stack):
            raise ValueError(f"{s.name}: k = {k} but the stack has {len(s.stack)} slices")
    orders = orders if orders is not None else rankings(stacks, normalize, progress, **blur_kwargs)
    scenes = []
    for s, order in zip(stacks, orders):

        def stacked(n: int) -> np.ndarray:
            keep = np.sort(order[:n])
            return s.stack[keep[0]] if n == 1 else focus_stack(s.stack[keep], align_slices=False)

        scenes.append(Scene(s.name, _unit(stacked(k)), _unit(focus_stack(s.stack, align_slices=False)),
                            _unit(stacked(sparse_k)), s.labels, dict(s.classes), s.in_focus))
    return scenes


__all__ = ["Scene", "make_scenes", "rankings", "shared_scenes", "view_ssim"]
