"""Tables 5.4-5.6 of the brightfield thesis: training with copy-paste + pix2pix fields (Sec. 4.4, 5.5; C6-C9).

Per data seed (:func:`seed_run`): the seed's annotated training fields, an unannotated pool of
(phase, brightfield) pairs for pix2pix (the thesis trains it on "all the available dataset images"),
``n_small`` and ``n_large`` synthetic fields pasted in phase contrast from the training fields' cells
(:mod:`.synthesis`) and translated by that seed's pix2pix (:mod:`.pix2pix`), and one segmentation net
per arm of :data:`ARMS`, all scored on the same held-out real fields:

* ``original``: the training fields alone;
* ``synthetic (small)`` and ``synthetic (large)``: the training fields plus ``n_small`` or ``n_large``
  translated fields (the thesis's 100 and 1000, ratio kept; "Synthetic (N)" is read as original + N,
  the register notes the thesis does not say);
* ``exact translator (small)``: the same pasted fields rendered by the synthetic family's own optics
  (a perfect translator: how much of the effect pix2pix's errors cost);
* ``brightfield paste (small)``: cells pasted directly in brightfield (occluding), the variant the
  thesis rejected for its "fake overlaps" (C6): the same cells at the same places as the small arm's
  pasted fields (:func:`.synthesis.paste_fields` draws identically in both modes), only the domain of
  the paste differs.

The segmentation net has cytoplasm, nuclei and overlap heads: the thesis scores cytoplasm and nuclei
with its 2-head model and overlaps with an undefined "3-head" model, whose "original" rows are copies
of its Tables 5.2 and 5.3 (register, inconsistency #6); one net with the three heads serves all three
tables here (our choice), the overlap head trained with Lin et al.'s focal loss without a map (whether
the thesis used its maps in these runs is not said) and thresholded at 0.3. Every arm gets the same
number of updates.

How originals and synthetic fields are mixed (:func:`mixed`, our choice). The thesis trains 1000 epochs
over whatever set it has, so each original image is visited 1000 times in every arm and the arms with
synthetic images get proportionally more updates. At a fixed budget, drawing uniformly from 18 originals
and 180 synthetic fields would visit each original a tenth as often as in the original arm, and the
large arm would measure dilution rather than the synthetic data (a first book-profile run did: cytoplasm
-0.17 F1 for the large arm, -0.03 for the small). ``mix="balanced"`` (default) repeats the originals so
that they are half of the fields drawn in every arm with synthetic data; ``mix="uniform"`` draws every
field equally often.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import pandas as pd

from ...data.types import Field
from . import overlap_loss, pix2pix, synthesis
from . import train as bt
from .heads import fields as draw_fields

HEADS = ("cytoplasm", "nuclei", "overlap")
ARMS = ("original", "synthetic (small)", "synthetic (large)", "exact translator (small)", "brightfield paste (small)")
PAPER_ROWS = {"original": "original", "synthetic (small)": "synthetic (100)", "synthetic (large)": "synthetic (1000)"}
TABLES = {"cytoplasm": ("5.4", "SEU-Net (2-head)", "cytoplasm"), "nuclei": ("5.5", "SEU-Net (2-head)", "nuclei"),
          "overlap": ("5.6", "SEU-Net (3-head)", "overlaps")}
"""Head -> (thesis table, its model name, its class name)."""
METRICS = overlap_loss.METRICS


def pool(seed: int, n: int, size: int) -> list[Field]:
    """``n`` unannotated (phase, brightfield) pairs for pix2pix, drawn with ``seed`` apart from the fields."""
    from ...data.synthetic import brightfield as synthetic

    return synthetic.generate(n=0, n_pool=n, size=size, seed=seed)[1]


def synthetic_sets(train_fields: Sequence[Field], translator: pix2pix.Translator, n_small: int, n_large: int,
                   size: int, seed: int, paste: synthesis.PasteSettings = synthesis.PasteSettings()
                   ) -> dict[str, list[Field]]:
    """The extra training fields of each arm (``original``: none). The small sets are the first
    ``n_small`` of the same pasted phase fields the large set starts with."""
    pasted = synthesis.paste_fields(train_fields, max(n_small, n_large), size, seed, paste, mode="phase")
    translated = translator(pasted, seed=seed)
    direct = synthesis.paste_fields(train_fields, n_small, size, seed, paste, mode="brightfield")
    return {"original": [], "synthetic (small)": translated[:n_small], "synthetic (large)": translated[:n_large],
            "exact translator (small)": synthesis.translate_exact(pasted[:n_small], seed), "brightfield paste (small)": direct}


MIXES = ("balanced", "uniform")


def mixed(originals: Sequence[Field], extra: Sequence[Field], mix: str = "balanced") -> list[Field]:
    """The training list of an arm: ``uniform`` is originals + extra; ``balanced`` repeats the originals
    ``ceil(len(extra) / len(originals))`` times first, so that they are about half of the fields drawn.

    >>> [f for f in mixed(["a", "b"], ["x", "y", "z"])]
    ['a', 'b', 'a', 'b', 'x', 'y', 'z']
    >>> mixed(["a", "b"], [])
    ['a', 'b']
    """
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {mix!r}")
    if mix == "uniform" or not extra:
        return [*originals, *extra]
    return [*originals] * -(-len(extra) // len(originals)) + [*extra]


def heads_loss(weights=None) -> bt.Loss:
    """BCE on cytoplasm and nuclei, Lin et al.'s focal loss on the overlap head (no map: ``P = 0``)."""
    focal = overlap_loss.overlap_loss("label", weights)
    bce = bt.bce_heads_loss(("nuclei",), weights)

    def loss(logits, targets):
        return {**focal(logits, targets), **bce(logits, targets)}

    return loss


def seed_run(seed: int, train_fields: Sequence[Field], pairs: Sequence[Field], tests: Sequence[Field],
             settings: bt.Settings, gan: pix2pix.Settings, n_small: int, n_large: int,
             arms: Sequence[str] = ARMS, paste: synthesis.PasteSettings = synthesis.PasteSettings(),
             overlap_threshold: float = overlap_loss.THRESHOLD, mix: str = "balanced") -> tuple[pd.DataFrame, dict]:
    """Train pix2pix on ``pairs``, build the synthetic sets, train and score every arm.

    Returns one row per (arm, head) -- ``seed``, ``arm``, ``head``, ``n_train`` and the pooled metrics
    (overlap at ``overlap_threshold``, the others at ``settings.threshold``) -- and ``{"translator",
    "extra": synthetic sets, "probs": {arm: test probabilities}}`` for figures. ``mix``: :func:`mixed`.
    """
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm {unknown[0]!r}; arms are {list(ARMS)}")
    size = train_fields[0].bf_low.shape[0]
    translator = pix2pix.train(pairs, gan, seed)
    extra = synthetic_sets(train_fields, translator, n_small, n_large, size, seed, paste)
    rows, probs = [], {}
    for arm in arms:
        fields = mixed(train_fields, extra[arm], mix)
        net = bt.train_seunet(fields, HEADS, settings, seed, loss=heads_loss(settings.weights),
                              extra=overlap_loss.maps(fields, None))
        probs[arm] = bt.predict(net, tests, settings)
        for head in HEADS:
            threshold = overlap_threshold if head == "overlap" else settings.threshold
            scores = bt.pooled_scores(probs[arm], tests, head, threshold)
            rows.append({"seed": seed, "arm": arm, "head": head, "n_train": len(train_fields) + len(extra[arm]),
                         **{k: scores[k] for k in METRICS}})
    return pd.DataFrame(rows), {"translator": translator, "extra": extra, "probs": probs}


def paper_cells(rows: pd.DataFrame, head: str) -> dict[tuple[str, str], list[float]]:
    """The arms the thesis's table for ``head`` has, per seed, keyed as it names its cells."""
    _, model, cls = TABLES[head]
    sel = rows[(rows["head"] == head) & rows["arm"].isin(list(PAPER_ROWS))].sort_values("seed")
    return {(f"{model} {PAPER_ROWS[arm]}, {cls}", theirs): part[ours].tolist()
            for arm, part in sel.groupby("arm") for ours, theirs in METRICS.items()}


def paired(rows: pd.DataFrame, head: str, a: str, b: str, value: str = "f1") -> dict[str, float]:
    """``a - b`` of ``value`` on ``head``, paired over seeds."""
    from ...publish import report

    table = rows[rows["head"] == head].pivot(index="seed", columns="arm", values=value)
    return report.paired_effect((table[a] - table[b]).to_numpy())


def seam_share(probs: Sequence[dict], fields: Sequence[Field], threshold: float = overlap_loss.THRESHOLD,
               width: int = 2) -> float:
    """Share of predicted overlap pixels that lie on cell borders (within ``width`` px of an outline)
    but not on a true overlap: where a model that learned "fake overlaps" at paste seams would put them."""
    from scipy import ndimage as ndi

    from ...data.synthetic.brightfield import semantic_maps

    on, total = 0, 0
    for p, f in zip(probs, fields, strict=True):
        maps = semantic_maps(f.amodal, f.nuclei)
        near = ndi.binary_dilation(maps["border"], iterations=width) & ~maps["overlap"]
        pred = p["overlap"] >= threshold
        on, total = on + int((pred & near).sum()), total + int(pred.sum())
    return on / total if total else float("nan")


__all__ = ["ARMS", "HEADS", "METRICS", "MIXES", "mixed", "PAPER_ROWS", "TABLES", "draw_fields", "heads_loss", "paired", "paper_cells",
           "pool", "seam_share", "seed_run", "synthetic_sets"]
