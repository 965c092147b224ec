"""The claims the Table 4 section judges (multimodal-C6 to C9, C11, C13; the C12 analogue), as rules.

Each ``*_per_seed`` function turns :func:`.table4.seed_run`'s rows (one per arm and test image) into one
number per data seed (test images averaged within a seed first: seeds, not images, are the independent
units); each ``c*`` rule takes the paired effects (:func:`cellrepro.publish.report.paired_effect`: mean and
t-interval over seeds) and returns the verdict by the rule stated in the chapter before the run. An
effect without an interval (fewer than 2 seeds) is always *inconclusive*.
"""

from __future__ import annotations

import math

import pandas as pd

from ...publish import report, tables
from .routing import LARGE, SMALL
from .table4 import (BF_LARGE, BF_SMALL, FLUO_B, MISROUTED, MISROUTED_GENERAL, MISROUTED_NO_FALLBACK,
                     TRUE_NO_FALLBACK, TRUE_ROUTE, ZERO_SHOT)

SINGLE_MODELS = ("cellpose: brightfield", "vgg_unet: brightfield")
"""One model trained on all brightfield images: the arms without the sub-split (C7, C9)."""
GRID = {("cellpose", LARGE): BF_LARGE, ("vgg_unet", LARGE): f"vgg_unet: {BF_LARGE}",
        ("cellpose", SMALL): f"cellpose: {BF_SMALL}", ("vgg_unet", SMALL): BF_SMALL}
"""C7's 2 x 2: (architecture, brightfield group it is trained and tested on) -> arm."""


def _has_interval(*effects) -> bool:
    return all(math.isfinite(e["low"]) and math.isfinite(e["high"]) for e in effects)


def mean_f1(rows: pd.DataFrame, arm: str, test_sets, group: str | None = None, value: str = "f1") -> pd.Series:
    """Per seed: mean ``value`` over the test images of ``arm`` in ``test_sets`` (and brightfield ``group``)."""
    sets = [test_sets] if isinstance(test_sets, str) else list(test_sets)
    pick = rows[(rows["arm"] == arm) & rows["test_set"].isin(sets)]
    if group is not None:
        pick = pick[pick["group"] == group]
    if pick.empty:
        raise ValueError(f"no rows of arm {arm!r} on test sets {sets}" + (f", group {group!r}" if group else ""))
    return pick.groupby("seed")[value].mean().astype(float)


def paired(per_seed: pd.DataFrame, a, b) -> dict:
    """Column ``a`` - column ``b`` of a per-seed frame, paired by seed (:func:`cellrepro.publish.report.paired_effect`)."""
    return report.paired_effect((per_seed[a] - per_seed[b]).to_numpy())


def summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Each column of a per-seed frame as mean, t-interval (``low``, ``high``), ``sd`` and ``n`` over seeds."""
    return pd.DataFrame({c: report.paired_effect(per_seed[c].to_numpy()) for c in per_seed.columns}).T


def interval_texts(per_seed: pd.DataFrame, digits: int = 3) -> dict:
    """Column -> its 95% interval over seeds as text (:func:`cellrepro.publish.tables.fmt_interval`; never "nan")."""
    s = summary(per_seed)
    return {c: tables.fmt_interval(s.loc[c, "low"], s.loc[c, "high"], s.loc[c, "n"], digits) for c in s.index}


# ---- multimodal-C6: the general-model fallback -------------------------------------------------------

def c6_per_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """Per seed, over the phase-contrast and DIC test images: F1 misrouted with and without the fallback,
    with the general model always (what the fallback could give if it fired on every image), on the
    true route with and without it, and the fraction of images on which the fallback fired."""
    sets = ("phase contrast", "dic")
    return pd.DataFrame({
        "misrouted, with fallback": mean_f1(rows, MISROUTED, sets),
        "misrouted, without fallback": mean_f1(rows, MISROUTED_NO_FALLBACK, sets),
        "misrouted, general model always": mean_f1(rows, MISROUTED_GENERAL, sets),
        "fallback fired (misrouted)": mean_f1(rows, MISROUTED, sets, value="used_general"),
        "true route, with fallback": mean_f1(rows, TRUE_ROUTE, sets),
        "true route, without fallback": mean_f1(rows, TRUE_NO_FALLBACK, sets),
        "fallback fired (true route)": mean_f1(rows, TRUE_ROUTE, sets, value="used_general"),
    })


def c6(effect: dict) -> str:
    """multimodal-C6 on the misrouted images' F1, with - without the fallback: *holds* if the interval
    lies above 0; *fails* if it lies at or below 0 (no repair; also when the fallback never fires and the
    difference is exactly 0); otherwise *inconclusive*.

    >>> c6({"low": 0.01, "high": 0.05}), c6({"low": 0.0, "high": 0.0}), c6({"low": -0.01, "high": 0.02})
    ('holds', 'fails', 'inconclusive')
    """
    if not _has_interval(effect):
        return "inconclusive"
    if effect["low"] > 0:
        return "holds"
    return "fails" if effect["high"] <= 0 else "inconclusive"


# ---- multimodal-C7 and C9: the brightfield sub-split ------------------------------------------------------

def c7_grid(rows: pd.DataFrame) -> pd.DataFrame:
    """Per seed, F1 of each architecture on each true brightfield group: trained on that group (the
    2 x 2 of C7, columns ``(architecture, group)``) and trained on all brightfield images
    (``(architecture + " (all brightfield)", group)``)."""
    out = {key: mean_f1(rows, arm, "brightfield", key[1]) for key, arm in GRID.items()}
    for arm in SINGLE_MODELS:
        for group in (LARGE, SMALL):
            out[(arm.split(":")[0] + " (all brightfield)", group)] = mean_f1(rows, arm, "brightfield", group)
    return pd.DataFrame(out)


def brightfield_per_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """Per seed, F1 over all brightfield test images of the routed combination (the splitter sends each
    image to the large-group Cellpose or the small-group VGG U-Net) and of each single model, and the
    splitter's purity (fraction of test images routed to their true group)."""
    routed = rows[(rows["arm"] == TRUE_ROUTE) & (rows["test_set"] == "brightfield")]
    purity = (routed["branch"] == "brightfield " + routed["group"]).groupby(routed["seed"]).mean()
    out = {"routed combination": mean_f1(rows, TRUE_ROUTE, "brightfield")}
    out.update({arm: mean_f1(rows, arm, "brightfield") for arm in SINGLE_MODELS})
    out["sub-split purity"] = purity.astype(float)
    return pd.DataFrame(out)


def best_single(per_seed: pd.DataFrame) -> str:
    """The single model with the higher mean F1 over seeds (fixed across seeds, not picked per seed)."""
    return max(SINGLE_MODELS, key=lambda arm: per_seed[arm].mean())


def c7(large: dict, routed_vs_best: dict) -> str:
    """multimodal-C7: *holds* if Cellpose - VGG U-Net on the large group has its interval above 0 *and*
    the routed combination - the best single model has its interval at or above 0 (lower bound >= 0);
    *fails* if either interval lies below 0; otherwise *inconclusive*.

    >>> above = {"low": 0.02, "high": 0.1}
    >>> c7(above, {"low": 0.0, "high": 0.04}), c7(above, {"low": -0.2, "high": -0.1})
    ('holds', 'fails')
    >>> c7(above, {"low": -0.01, "high": 0.04})
    'inconclusive'
    """
    if not _has_interval(large, routed_vs_best):
        return "inconclusive"
    if large["high"] < 0 or routed_vs_best["high"] < 0:
        return "fails"
    return "holds" if large["low"] > 0 and routed_vs_best["low"] >= 0 else "inconclusive"


# ---- multimodal-C8 and C11: fluorescence --------------------------------------------------------------------

def fluorescence_per_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """Per seed: the CDNet branch on the style-A and style-B test images, the Cellpose trained on the same
    fluorescence images on style A, and the phase-contrast and brightfield branches (true routes)."""
    return pd.DataFrame({
        "CDNet, style A": mean_f1(rows, TRUE_ROUTE, "fluorescence"),
        "CDNet, style B": mean_f1(rows, TRUE_ROUTE, FLUO_B),
        "Cellpose, style A": mean_f1(rows, "cellpose: fluorescence", "fluorescence"),
        "phase contrast": mean_f1(rows, TRUE_ROUTE, "phase contrast"),
        "brightfield": mean_f1(rows, TRUE_ROUTE, "brightfield"),
    })


def c11(drop: dict, sd_a: float, a_vs_pc: dict, a_vs_bf: dict, factor: float = 3.0) -> str:
    """multimodal-C11's explanation (domain shift): *holds* if the style A - style B drop has its lower
    bound above ``factor`` x the seed SD of style-A F1 *and* style-A fluorescence is not below phase
    contrast or brightfield (each paired difference's upper bound >= 0: fluorescence is not merely hard);
    *fails* if the drop's interval reaches 0 or below; otherwise *inconclusive*.

    >>> ok = {"low": -0.05, "high": 0.02}
    >>> c11({"low": 0.3, "high": 0.5}, 0.02, ok, ok), c11({"low": -0.01, "high": 0.2}, 0.02, ok, ok)
    ('holds', 'fails')
    >>> below = {"low": -0.2, "high": -0.1}
    >>> c11({"low": 0.3, "high": 0.5}, 0.2, ok, ok), c11({"low": 0.3, "high": 0.5}, 0.02, below, ok)
    ('inconclusive', 'inconclusive')
    """
    if not _has_interval(drop, a_vs_pc, a_vs_bf) or not math.isfinite(sd_a):
        return "inconclusive"
    if drop["low"] <= 0:
        return "fails"
    not_hard = a_vs_pc["high"] >= 0 and a_vs_bf["high"] >= 0
    return "holds" if drop["low"] > factor * sd_a and not_hard else "inconclusive"


# ---- the C12 analogue and multimodal-C13 ---------------------------------------------------------------------

def c12_per_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """Per seed, on the DIC test images: the phase-contrast net as it is (zero-shot) and fine-tuned on the
    DIC labelled images (the DIC branch, without the fallback), and the phase-contrast net on its own
    modality."""
    return pd.DataFrame({
        "zero-shot on DIC": mean_f1(rows, ZERO_SHOT, "dic"),
        "fine-tuned on DIC": mean_f1(rows, TRUE_NO_FALLBACK, "dic"),
        "on phase contrast": mean_f1(rows, TRUE_NO_FALLBACK, "phase contrast"),
    })


def c13(ratio: dict) -> str:
    """multimodal-C13: *holds* if the interval of the time ratio (load all / route, load one) lies above
    1, *fails* if it lies below 1, otherwise *inconclusive*.

    >>> c13({"low": 1.4, "high": 2.0}), c13({"low": 0.7, "high": 0.9}), c13({"low": 0.9, "high": 1.2})
    ('holds', 'fails', 'inconclusive')
    """
    if not _has_interval(ratio):
        return "inconclusive"
    return "holds" if ratio["low"] > 1 else "fails" if ratio["high"] < 1 else "inconclusive"


__all__ = ["GRID", "SINGLE_MODELS", "best_single", "brightfield_per_seed", "c11", "c12_per_seed", "c13", "c6",
           "c6_per_seed", "c7", "c7_grid", "fluorescence_per_seed", "interval_texts", "mean_f1", "paired",
           "summary"]
