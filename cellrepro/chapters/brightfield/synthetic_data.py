"""Tables 5.4-5.6 of the brightfield thesis: training with copy-paste + pix2pix fields (Sec. 4.4, 5.5; C6-C9).

Per data seed (:func:`seed_run`): the seed's annotated training fields, with weak overlap labels
as in the overlap-map section (:func:`.overlap_loss.weaken`: the thesis's hand-drawn overlaps; the
test fields keep the exact truth), ``n_extra`` fields pasted in phase contrast from their cells
(:mod:`.synthesis`; a pasted field's overlaps are exact, as the thesis's are), and one 3-head SE-U-Net
(cytoplasm, nuclei, overlap) per arm of :data:`ARMS`, all scored on the same held-out real fields:

* ``original``: the training fields alone: the reference;
* ``more real fields``: the training fields and ``n_extra`` more real annotated fields of the seed
  (their overlaps as weak): the oracle, whether more data helps at all at this budget;
* ``pix2pix fields``: the training fields and the pasted fields translated by the seed's pix2pix
  (:func:`translator`: the pix2pix section's translator, from the shared-work cache);
* ``exact-optics fields``: the same pasted fields rendered by the synthetic family's own optics (the
  positive control: what realistic synthetic fields do);
* ``brightfield paste``: the same cells pasted at the same places directly in brightfield
  (occluding, the variant C6 rejects): only the domain of the paste differs from the exact-optics arm.

Every arm gets the same updates, half of the fields it draws originals (:func:`mixed`). The cells
are pasted from the *exact* annotation's isolated cells: under weak overlap labels a cell whose
overlap was dropped looks isolated and would carry its hidden neighbour into the pasted fields (a
design referee); isolated cells' masks are the same in both annotations.

The thesis scores cytoplasm and nuclei with its 2-head model and overlaps with an undefined "3-head"
model, whose "original" rows are copies of its Tables 5.2 and 5.3 (register, inconsistency #6); one
net with the three heads serves all three tables here (our choice), the overlap head trained with Lin
et al.'s focal loss without a map (whether the thesis used its maps in these runs is not said) and
scored threshold-free (pixel AP) first, F1 at 0.3 beside. Every arm of a seed cuts the same crops.
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
ORIGINAL, REAL, PIX2PIX, EXACT, DIRECT = ("original", "more real fields", "pix2pix fields", "exact-optics fields",
                                         "brightfield paste")
ARMS = (ORIGINAL, REAL, PIX2PIX, EXACT, DIRECT)
PAPER_ROWS = {ORIGINAL: "original", PIX2PIX: "synthetic (1000)"}
PASTE = {"cells": (16, 28)}
"""The book's copy-paste (:class:`.synthesis.PasteSettings`): 16-28 cells per field cover as much of a
field as the real fields' cells do (38 % against 39 %; 8-16 covered 31 %); overlaps stay rarer than
in real fields (3.4 % of the pixels against 5.5 %) under the thesis's overlap ratio of at most 0.2."""
TABLES = {"cytoplasm": ("5.4", "SEU-Net (2-head)", "cytoplasm"), "nuclei": ("5.5", "SEU-Net (2-head)", "nuclei"),
          "overlap": ("5.6", "SEU-Net (3-head)", "overlaps")}
"""Head -> (thesis table, its model name, its class name)."""
METRICS = overlap_loss.METRICS


def _train_translator(pairs: Sequence[Field], settings: pix2pix.Settings, seed: int) -> pix2pix.Translator:
    return pix2pix.train(pairs, settings, seed)


def translator(pairs: Sequence[Field], settings: pix2pix.Settings, seed: int) -> pix2pix.Translator:
    """:func:`.pix2pix.train` computed once per (pairs, settings, seed) and kept in the shared-work
    cache (:func:`cellrepro.engine.cache.shared`), so that the pix2pix section and this one use the
    same translators of a seed. Trained without a progress bar (``settings.progress`` is not part
    of the key); the seeds' bar shows the progress."""
    from ...engine.cache import shared

    return shared(_train_translator)(pairs, dataclasses.replace(settings, progress=False), seed)


def pool(seed: int, n: int, size: int) -> list[Field]:
    """``n`` unannotated (phase, brightfield) pairs for pix2pix, drawn with ``seed`` apart from the fields."""
    from ...data.synthetic import brightfield as synthetic

    return synthetic.generate(n=0, n_pool=n, size=size, seed=seed)[1]


def synthetic_sets(sources: Sequence[Field], translator: pix2pix.Translator, n: int, size: int, seed: int,
                   paste: synthesis.PasteSettings = synthesis.PasteSettings(**PASTE)) -> dict[str, list[Field]]:
    """The pasted training fields of each synthetic arm: ``n`` fields pasted in phase contrast from the
    cells of ``sources``, translated by ``translator`` and by the exact optics, and the same cells at
    the same places pasted in brightfield."""
    pasted = synthesis.paste_fields(sources, n, size, seed, paste, mode="phase")
    return {PIX2PIX: translator(pasted, seed=seed),
            EXACT: synthesis.translate_exact(pasted, seed),
            DIRECT: synthesis.paste_fields(sources, n, size, seed, paste, mode="brightfield")}


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


def seed_run(seed: int, train_fields: Sequence[Field], tests: Sequence[Field], settings: bt.Settings,
             pairs: Sequence[Field], gan: pix2pix.Settings, n_extra: int, arms: Sequence[str] = ARMS,
             paste: synthesis.PasteSettings = synthesis.PasteSettings(**PASTE),
             threshold: float = overlap_loss.THRESHOLD, weak: dict | None = overlap_loss.WEAK,
             real_extra: Sequence[Field] = ()) -> tuple[pd.DataFrame, dict]:
    """Build the seed's synthetic sets and train and score every arm.

    ``pairs``: the unannotated (phase, brightfield) pairs of the seed's pix2pix; ``real_extra``: the
    oracle arm's more real annotated fields (the arm is skipped without them); ``weak``:
    :func:`.overlap_loss.weaken`'s arguments for the real training fields' overlaps (None: the fields
    as given, a user's annotation). Returns one row per (arm, head): ``seed``, ``arm``, ``head``,
    ``n_train``, the pooled ``ap`` and the metrics at ``threshold`` (overlap) or
    ``settings.threshold``, and the seed's checks of the translator and the pasting, the same on every
    row: ``structure`` of pix2pix and ``exact_structure`` of the exact optics on the test fields
    (:func:`.fidelity.pixel_scores`), ``paste_agreement`` (:func:`.synthesis.paste_agreement` of the
    brightfield-pasted fields against the exact-optics ones), ``pasted_overlap_share`` and
    ``pasted_cell_share`` (the pasted fields' pixels under two or more cells, under any) and
    ``border_share`` (:func:`seam_share`
    of the arm: predicted overlap on cell borders away from true overlaps). Also ``{"extra": the
    first 4 added fields of each arm, "probs": per arm}`` for figures.
    """
    from . import fidelity

    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm {unknown[0]!r}; arms are {list(ARMS)}")
    arms = [a for a in arms if a != REAL or real_extra]
    size = int(np.shape(train_fields[0].bf_low)[0])
    real = [*train_fields, *real_extra]
    labelled = real if weak is None else overlap_loss.weaken(real, seed, **weak)
    tr = translator(pairs, gan, seed)
    extra = {ORIGINAL: [], REAL: labelled[len(train_fields):],
             **synthetic_sets(train_fields, tr, n_extra, size, seed, paste)}
    labelled = labelled[:len(train_fields)]
    background = fidelity.mean_planes(pairs, tests[:1])[0]
    exact_tests = synthesis.translate_exact(tests, seed)
    checks = {"structure": fidelity.pixel_scores(tr(tests, seed=seed), tests, background)["structure"],
              "exact_structure": fidelity.pixel_scores(exact_tests, tests, background)["structure"],
              "paste_agreement": synthesis.paste_agreement(extra[DIRECT], extra[EXACT], seed),
              **{f"{name}_share": float(np.mean([share(f) for f in extra[EXACT]])) if extra[EXACT] else float("nan")
                 for name, share in (("pasted_overlap", lambda f: (f.amodal.sum(0) >= 2).mean()),
                                     ("pasted_cell", lambda f: f.amodal.any(0).mean()))}}
    rows, probs = [], {}
    for arm in arms:
        fields = mixed(labelled, extra[arm])
        net = bt.train_seunet(fields, HEADS, settings, seed, loss=heads_loss(settings.weights),
                              extra=overlap_loss.maps(fields, None))
        probs[arm] = bt.predict(net, tests, settings)
        border_share = seam_share(probs[arm], tests, threshold)
        for head in HEADS:
            scores = bt.pooled_scores(probs[arm], tests, head, threshold if head == "overlap" else settings.threshold)
            rows.append({"seed": seed, "arm": arm, "head": head, "n_train": len(train_fields) + len(extra[arm]),
                         "ap": scores["ap"], **{k: scores[k] for k in METRICS}, "border_share": border_share,
                         **checks})
    return pd.DataFrame(rows), {"extra": {arm: fields[:4] for arm, fields in extra.items()}, "probs": probs}


def run_seeds(seeds: Sequence[int], train_fields, tests: Sequence[Field], settings: bt.Settings, n_pool: int,
              gan: pix2pix.Settings, n_extra: int, arms: Sequence[str] = ARMS, weak: dict | None = overlap_loss.WEAK,
              workers: int | str = "auto") -> tuple[pd.DataFrame, dict, float]:
    """:func:`seed_run` for every seed (its pix2pix pool of ``n_pool`` pairs and its ``n_extra`` more real
    fields drawn with the seed: ``train_fields`` must be :func:`.heads.fields` of the seed, whose first
    fields do not depend on how many are drawn), side by side on the CPU's cores (:func:`.train.run_seeds`)."""
    return bt.run_seeds(_pooled_seed_run, seeds, train_fields, tests, settings, workers, n_pool=n_pool, gan=gan,
                        n_extra=n_extra, arms=arms, weak=weak)


def _pooled_seed_run(seed, train_fields, tests, settings, n_pool, n_extra, **kwargs):
    size = int(np.shape(tests[0].bf_low)[0])
    real_extra = draw_fields(seed, len(train_fields) + n_extra, size)[len(train_fields):]
    return seed_run(seed, train_fields, tests, settings, pool(seed, n_pool, size), n_extra=n_extra,
                    real_extra=real_extra, **kwargs)


def paper_cells(rows: pd.DataFrame, head: str) -> dict[tuple[str, str], list[float]]:
    """The arms the thesis's table for ``head`` has, per seed, keyed as it names its cells."""
    _, model, cls = TABLES[head]
    sel = rows[(rows["head"] == head) & rows["arm"].isin(list(PAPER_ROWS))].sort_values("seed")
    return {(f"{model} {PAPER_ROWS[arm]}, {cls}", theirs): part[ours].tolist()
            for arm, part in sel.groupby("arm") for ours, theirs in METRICS.items()}


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


__all__ = ["ARMS", "DIRECT", "EXACT", "HEADS", "METRICS", "MIXES", "ORIGINAL", "PAPER_ROWS", "PASTE", "PIX2PIX", "REAL", "TABLES",
           "draw_fields", "heads_loss", "mixed", "paper_cells", "pool", "run_seeds", "seam_share", "seed_run",
           "synthetic_sets", "translator"]
