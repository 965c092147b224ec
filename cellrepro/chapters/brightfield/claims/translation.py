"""Sec. 5.6's verdict rule: pix2pix against its alternatives (brightfield-C10), by the realism test of
:mod:`..fidelity` and its controls."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ....publish.decision import Gate, decide, gate
from ....publish.rules import difference, mean_of, per_seed, summary

SEES = 0.75
"""The realism test must tell the noise-free optics and the optics with swapped planes from real at least this often."""
SEES_MISSING = 0.95
"""The realism test must tell the mean planes (no cells) from real at least this often."""
CHANCE_AT_MOST = 0.6
"""The realism test's A/A control (real fields of another draw) must stay at or below this accuracy."""
GAME = (0.55, 0.95)
"""pix2pix's held-out discriminator accuracy when training stopped: the adversarial game still played."""
DRAWS_CELLS = 0.5
"""A trained translator draws the cells if its ``structure`` is at least this share of the exact optics'."""
ROOM = 0.6
"""The autoencoder must be told from real at least this often: below, there is no realism left to gain."""
INDISTINGUISHABLE = 0.05
"""The thesis's "indistinguishable", decided beside: pix2pix within this accuracy of the exact optics."""
P2P, AE, MASK, L1 = "pix2pix", "autoencoder (MSE + BCE)", "mask -> brightfield", "pix2pix without its discriminator"
EXACT_OPTICS, EXACT_CLEAN, WRONG_OPTICS, MEAN, AA = ("exact optics", "exact optics, noise-free",
                                                     "exact optics, planes swapped", "mean planes", "real, another draw")


def translator_paired(rows: pd.DataFrame, treatment: str, reference: str, column: str = "accuracy") -> pd.Series:
    """Per seed, ``column`` of ``reference`` minus ``treatment``: for the realism test's accuracy, how
    much more often the reference is told from real (> 0: the treatment is the more realistic)."""
    return per_seed(rows, reference, treatment, column, by="translator")


def translator_gates(rows: pd.DataFrame) -> list[Gate]:
    """The registered gates of brightfield-C10 (means over seeds), as a design referee asked:

    - *phenomenon present (the test sees noise and light)*, *(the test sees how cells look)*,
      *(the test sees missing cells)*: the realism test tells the noise-free optics and the
      optics with swapped planes from real with accuracy >= :data:`SEES`, the mean planes with >=
      :data:`SEES_MISSING` (else a translator that got the texture, the cells' look or the cells
      themselves wrong could pass as real);
    - *test at chance on real fields (A/A)*: real fields of another draw score <= :data:`CHANCE_AT_MOST`;
    - *treatment engaged (the adversarial game)*: pix2pix's held-out discriminator accuracy within
      :data:`GAME`;
    - *treatment engaged (pix2pix draws the cells)*, *reference off the floor (the autoencoder draws
      the cells)*: ``structure`` >= :data:`DRAWS_CELLS` x the exact optics' (a translator that
      ignores its input scores 0);
    - *reference off the ceiling*: the autoencoder's accuracy >= :data:`ROOM` (room to be more realistic).
    """
    def arm(name: str, column: str) -> float:
        return mean_of(rows, name, column, "translator")

    structure = arm(EXACT_OPTICS, "structure")
    return [gate("phenomenon present (the test sees noise and light)", arm(EXACT_CLEAN, "accuracy"), at_least=SEES),
            gate("phenomenon present (the test sees how cells look)", arm(WRONG_OPTICS, "accuracy"), at_least=SEES),
            gate("phenomenon present (the test sees missing cells)", arm(MEAN, "accuracy"), at_least=SEES_MISSING),
            gate("test at chance on real fields (A/A)", arm(AA, "accuracy"), at_most=CHANCE_AT_MOST),
            gate("treatment engaged (the adversarial game)", arm(P2P, "d_accuracy"), within=GAME),
            gate("treatment engaged (pix2pix draws the cells)", arm(P2P, "structure"),
                 at_least=round(DRAWS_CELLS * structure, 4)),
            gate("reference off the floor (the autoencoder draws the cells)", arm(AE, "structure"),
                 at_least=round(DRAWS_CELLS * structure, 4)),
            gate("reference off the ceiling", arm(AE, "accuracy"), at_least=ROOM)]


def judge_translators(rows: pd.DataFrame, seconds_per_seed: float | None = None) -> dict[str, dict[str, Any]]:
    """brightfield-C10 from :func:`..fidelity.seed_run`'s rows through :func:`~cellrepro.publish.report.judge`:
    the realism test's accuracy, autoencoder minus pix2pix, paired over seeds. Returns what the page
    states for ``"brightfield-C10"`` and, decided beside by the same rule and gates (not recorded),
    ``"mask"`` (mask -> brightfield minus pix2pix), ``"l1"`` (pix2pix's generator without its
    discriminator minus pix2pix: what the adversarial term adds), ``"deterministic"`` (autoencoder
    minus pix2pix with dropout off), ``"s0"`` and ``"s2"`` (at the other smoothings); and
    ``"indistinguishable"``: pix2pix minus the exact optics, an equivalence test within
    :data:`INDISTINGUISHABLE` (the thesis's word; "holds" only if pix2pix is as hard to tell from
    real as the family's own optics). The recorded entry's note states the latter's verdict and
    the other comparisons' intervals without verdict words (they are not claims)."""
    from ....publish import report
    from ....publish.claims import registration

    reg = registration("brightfield-C10")
    gates = translator_gates(rows)
    beside = {"mask": translator_paired(rows, P2P, MASK), "l1": translator_paired(rows, P2P, L1),
              "deterministic": translator_paired(rows, P2P, AE, "accuracy_deterministic"),
              "s0": translator_paired(rows, P2P, AE, "accuracy_s0"), "s2": translator_paired(rows, P2P, AE, "accuracy_s2")}
    decided = {key: decide(d.to_numpy(float), test=reg["test"], planning_effect=reg.get("planning_effect"),
                           gates=gates).as_dict() for key, d in beside.items()}
    same = -translator_paired(rows, P2P, EXACT_OPTICS)  # pix2pix - exact optics
    decided["indistinguishable"] = decide(same.to_numpy(float), test="equivalence", margin=INDISTINGUISHABLE,
                                          gates=gates).as_dict()
    out = {key: summary(d, 3) for key, d in decided.items()}
    names = {"mask": "mask -> brightfield - pix2pix", "l1": "pix2pix without its discriminator - pix2pix",
             "deterministic": "autoencoder - pix2pix, both with dropout off",
             "s0": "autoencoder - pix2pix without smoothing", "s2": "autoencoder - pix2pix smoothed by 2 px"}
    same = decided["indistinguishable"]
    entry = report.judge("brightfield-C10", translator_paired(rows, P2P, AE).to_numpy(float), gates=gates, digits=3,
                         seconds_per_unit=seconds_per_seed,
                         note="the claim's comparative half ('more realistic than the autoencoder'); its word "
                              f"'indistinguishable', pix2pix - exact optics within {INDISTINGUISHABLE}: "
                              f"{same['verdict']} ({difference(same)}). Shown beside, realism-test accuracy: "
                              + "; ".join(f"{names[k]} {difference(d)}" for k, d in decided.items()
                                          if k != "indistinguishable"))
    out["brightfield-C10"] = summary(entry, 3)
    return out


__all__ = ["AA", "AE", "CHANCE_AT_MOST", "DRAWS_CELLS", "EXACT_CLEAN", "EXACT_OPTICS", "GAME", "INDISTINGUISHABLE", "L1",
           "MASK", "MEAN", "P2P", "ROOM", "SEES", "SEES_MISSING", "WRONG_OPTICS", "judge_translators", "translator_gates",
           "translator_paired"]
