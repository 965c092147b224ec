"""What the organoid notebooks read off the stages of :mod:`.protocol`: linear probes of the
encoders, the registered checks that pre-training engaged, the global stage under other settings
(descriptive), the classical reference pipeline scored like an arm, and the training curves.

Everything here reads the stages through their cache (:func:`.protocol.global_encoder`,
:func:`.protocol.local_model`, :func:`.protocol.finetuned`), so it never trains what a notebook
already trained.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import pandas as pd

from ... import CellreproError
from ...semi.contrastive import StageConfig
from .evaluate import score
from .protocol import Data, Settings, finetuned, global_encoder, local_model, loss_fall, model_from, seed_data, tagged


def encoder_features(data: Data, seed: int, settings: Settings, start: tuple) -> np.ndarray:
    """Pooled encoder features of the seed's test crops (:func:`~.controls.pooled_features`)."""
    from .controls import pooled_features

    return pooled_features(model_from(data, seed, settings, start), seed_data(data, seed)[0].test.images)


def probes(data: Data, settings: Settings, seeds: list[int], starts: dict[str, tuple]) -> pd.DataFrame:
    """Per seed, the held-out R^2 of the size-and-shape probe (:func:`~.controls.probe_r2`) of each
    named encoder, and ``fraction``: the same probe of each crop's organoid fraction (shown beside)."""
    from .controls import probe_r2

    rows = []
    for seed in seeds:
        test = seed_data(data, seed)[0].test
        for name, start in starts.items():
            x = encoder_features(data, seed, settings, start)
            rows.append({"seed": seed, "encoder": name, "r2": probe_r2(None, test, features=x),
                         "r2_fraction": probe_r2(None, test, targets=("fraction",), features=x)})
    return pd.DataFrame(rows)


def engagement(data: Data, settings: Settings, seeds: list[int], stages: pd.DataFrame,
               global_fractions: list[float]) -> tuple[list, pd.DataFrame, dict]:
    """The registered checks that pre-training engaged (:func:`~.claims.stage_gates`): fewest
    updates and smallest loss fall of any seed, per stage in ``stages`` (:attr:`Results.stages`), and
    the probe gain over the seed's random encoder of the global encoder at each of
    ``global_fractions``, over seeds; the gate takes the smallest lower end. The probe reads each
    test crop's organoid fraction: the global stage never sees a label, so that is a target it does
    not train (a random encoder reads much of it from intensity alone: the gain is what counts).

    Returns (gates, the probe's R^2 per seed and encoder, the probe gain of each global fraction)."""
    from .claims import effect, stage_gates

    starts = {f"global {g:.0%}": ("global", g) for g in global_fractions if g} | {"random": ("random",)}
    probe = probes(data, settings, seeds, starts)
    wide = probe.pivot(index="seed", columns="encoder", values="r2_fraction")  # no label reaches the global stage
    gains = {name: effect((wide[name] - wide["random"]).to_numpy()) for name in starts if name != "random"}
    worst = min(gains.values(), key=lambda e: e["low"])
    st = stages.drop_duplicates([c for c in ("seed", "stage", "global_fraction", "local_fraction", "frozen") if c in stages])
    gates = []
    for stage in ("global", "local"):
        part = st[st["stage"] == stage]
        if len(part):
            gates += stage_gates(stage, part["updates"], part["loss_fall"], worst if stage == "global" else None)
    return gates, probe, gains


def global_sensitivity(data: Data, settings: Settings, seeds: list[int], variants: Mapping[str, Mapping[str, float]],
                       fraction: float) -> pd.DataFrame:
    """The global stage's probe gain (:func:`engagement`'s positive control: the fraction probe of
    the global encoder minus the seed's random encoder) and loss fall under other settings of the
    stage: each variant multiplies fields of ``settings.global_cfg`` (``{"steps": 3}``: three times
    the updates, or the epochs where ``steps`` is None; ``{"batch": 3}``; ``{"lr": 0.3}``).
    Descriptive: it says whether a failing gate is a matter of the stage's budget. One row per seed
    and variant, the book's own setting first (``"as run"``)."""
    from .controls import probe_r2

    def scaled(cfg: StageConfig, factors: Mapping[str, float]) -> StageConfig:
        change = {}
        for name, factor in factors.items():
            if name == "steps" and cfg.steps is None:
                name = "epochs"
            if name not in ("steps", "epochs", "batch", "lr"):
                raise CellreproError(f"global_sensitivity: cannot scale {name!r} (steps, epochs, batch or lr)")
            value = getattr(cfg, name) * factor
            change[name] = value if name == "lr" else max(1, int(round(value)))
        return dataclasses.replace(cfg, **change)

    rows = []
    for seed in seeds:
        test = seed_data(data, seed)[0].test
        random = encoder_features(data, seed, settings, ("random",))
        random_r2 = probe_r2(None, test, targets=("fraction",), features=random)
        for name, factors in {"as run": {}, **variants}.items():
            st = dataclasses.replace(settings, global_cfg=scaled(settings.global_cfg, factors))
            hist = global_encoder(data, seed, st, fraction)["history"]
            x = encoder_features(data, seed, st, ("global", fraction))
            rows.append({"seed": seed, "variant": name, "updates": len(hist["nt_xent"].dropna()),
                         "batch": st.global_cfg.batch, "lr": st.global_cfg.lr,
                         "loss_fall": loss_fall(hist, "nt_xent"),
                         "probe_gain": probe_r2(None, test, targets=("fraction",), features=x) - random_r2})
    return pd.DataFrame(rows, columns=["seed", "variant", "updates", "batch", "lr", "loss_fall", "probe_gain"])


def classical(data: Data, seeds: list[int]) -> tuple[pd.DataFrame, np.ndarray]:
    """The classical pipeline (:mod:`~.controls`, tuned on two of each seed's training images)
    scored on the seed's test crops like a fine-tuned arm (``arm`` "classical", ``loss`` "none"),
    and the first seed's masks as probabilities (for figures)."""
    from .controls import classical_probs, tune_classical

    scores, first = [], None
    for seed in seeds:
        sp, train, test = seed_data(data, seed)
        probs = classical_probs(test, sp.test, tune_classical(train[:2]))
        scores.append(tagged(score(probs, sp.test), seed=seed, arm="classical", loss="none"))
        first = probs if first is None else first
    return pd.concat(scores, ignore_index=True), first


def curves(data: Data, seed: int, settings: Settings, start: tuple, loss: str) -> dict[str, pd.DataFrame]:
    """The training histories behind a fine-tuned ``("local", g, l, frozen)`` start: global stage,
    local stage and fine-tuning with ``loss`` (from the cache), for :func:`~.figures.curves`."""
    return {"global stage": global_encoder(data, seed, settings, start[1])["history"],
            "local stage": local_model(data, seed, settings, *start[1:])["history"],
            "fine-tuning": finetuned(data, seed, settings, start, loss)["history"]}
