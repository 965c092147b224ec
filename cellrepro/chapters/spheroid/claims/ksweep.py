"""spheroid-C9, the k sweep: do sparse stacks make training less stable? Units are seeds."""

from __future__ import annotations

import pandas as pd

from ....publish.decision import Gate, gate


def brown_forsythe(results: pd.DataFrame, k: int, metric: str = "mask_AP") -> pd.Series:
    """Per seed, the absolute deviation of ``metric`` (points) at ``k`` from its median over the
    seeds (Brown-Forsythe's spread of one arm)."""
    x = 100 * results[results["k"] == k].set_index("seed").sort_index()[metric].astype(float)
    return (x - x.median()).abs()


def c9_gates(results: pd.DataFrame, sparse: int, reference: int) -> list[Gate]:
    """spheroid-C9's registered gates: the ``sparse`` view differs from the ``reference`` one (SSIM
    on the cells against the all-in-focus truth, mean over training stacks and seeds, |difference|
    >= 0.01; column ``ssim_cells``), there is seed-to-seed spread to compare (SD of mask mAP at
    ``reference`` >= 0.2 points), and both arms are off the floor and the ceiling (mask mAP within
    [10, 90] points, mean over seeds)."""
    at = {k: results[results["k"] == k] for k in (sparse, reference)}
    ssim = {k: float(g["ssim_cells"].mean()) for k, g in at.items()}
    return [gate("treatment engaged", abs(ssim[sparse] - ssim[reference]), at_least=0.01),
            gate("phenomenon present", float(100 * at[reference]["mask_AP"].std(ddof=1)), at_least=0.2),
            gate("reference off floor and ceiling", float(100 * at[reference]["mask_AP"].mean()), within=(10.0, 90.0)),
            gate("treatment arm off floor and ceiling", float(100 * at[sparse]["mask_AP"].mean()), within=(10.0, 90.0))]


def judge_k_sweep(results: pd.DataFrame, sparse: int, reference: int,
                  seconds_per_seed: float | None = None) -> dict[str, float]:
    """spheroid-C9 from the k sweep's rows (``k``, ``seed``, Table 1's metrics, ``ssim_cells``):
    the paired Brown-Forsythe contrast, per seed |mask mAP - its arm's median| at ``sparse`` minus
    at ``reference`` (points), through :func:`~cellrepro.publish.report.judge`; the SD ratio with
    its F interval (:func:`~.train.spread_ratio`) in the note. Returns the values the page states:
    ``contrast`` with its interval as text (``contrast_ci``), ``sd_ratio`` with ``ratio_ci``, each
    arm's seed SD and mean mask mAP (``sd_sparse``, ``sd_reference``, ``map_sparse``,
    ``map_reference``, points), and the decision's ``mde``, ``n_needed`` and ``seconds_needed``
    (NaN where the decision gives none)."""
    from ....publish import report, tables
    from ..train import spread_ratio

    seeds = results["seed"].nunique()
    if seeds < 3:
        raise ValueError(f"spheroid-C9 needs at least 3 seeds, got {seeds}: with 2, both seeds' deviations from "
                         "their median are equal and the interval collapses to a point")
    contrast = brown_forsythe(results, sparse) - brown_forsythe(results, reference)
    per_k = {k: results[results["k"] == k].sort_values("seed")["mask_AP"].to_numpy(float) for k in (sparse, reference)}
    ratio = spread_ratio([per_k[sparse]], per_k[reference])
    entry = report.judge("spheroid-C9", contrast.to_numpy(), gates=c9_gates(results, sparse, reference), digits=2,
                         seconds_per_unit=seconds_per_seed,
                         note=f"seed SD at k = {sparse} / at k = {reference}: {ratio['mean']:.2f} "
                              f"(F interval [{ratio['low']:.2f}, {ratio['high']:.2f}]), shown, not judged")
    number = lambda key: float("nan") if entry.get(key) is None else float(entry[key])  # noqa: E731
    return {"contrast": float(contrast.mean()),
            "contrast_ci": tables.fmt_interval(entry.get("low"), entry.get("high"), entry.get("n"), 2),
            "sd_ratio": ratio["mean"], "ratio_ci": f"[{ratio['low']:.2f}, {ratio['high']:.2f}]",
            "sd_sparse": float(100 * per_k[sparse].std(ddof=1)), "sd_reference": float(100 * per_k[reference].std(ddof=1)),
            "map_sparse": float(100 * per_k[sparse].mean()), "map_reference": float(100 * per_k[reference].mean()),
            "mde": number("mde"), "n_needed": number("n_needed"), "seconds_needed": number("seconds_needed")}
