"""The brightfield thesis's verdict rules: registered gates and judgements, one module per section.

* :mod:`.maps`: Table 5.3, the overlap maps and Eq. 5.1 (brightfield-C4, C5);
* :mod:`.heads`: Tables 5.1-5.2, the decoupled heads (brightfield-C1, C2, C3, C19, C20);
* :mod:`.synthetic`: Tables 5.4-5.6, training with synthetic fields (brightfield-C6 to C9);
* :mod:`.translation`: Sec. 5.6, pix2pix against its alternatives (brightfield-C10);
* :mod:`cellrepro.publish.rules` (shared with the other chapters): the paired difference per seed and
  what a page states of a decision.

Units are data seeds: every arm of a seed trains on the same fields and crops, so each seed gives
one paired difference per claim. The thresholds are the registrations'
(``cellrepro/publish/claims/registrations.yml``); each gate's docstring says which. The notebooks
import this package as ``claims`` and call the names below.
"""

from .heads import NUCLEUS_GAP, PAPER, REMOVABLE_FP, SE_SD, floors, heads_differences, heads_gates, heads_paired, judge_heads
from .maps import CEILING, RANK_SHIFT, WEAK_COST, judge_overlap, overlap_gates, paired, recovered
from .synthetic import AGREEMENT, SYNTHETIC, judge_synthetic, synthetic_floors, synthetic_gates, synthetic_paired
from .translation import (AA, AE, CHANCE_AT_MOST, DRAWS_CELLS, EXACT_CLEAN, EXACT_OPTICS, GAME, INDISTINGUISHABLE, L1, MASK,
                          MEAN, P2P, ROOM, SEES, SEES_MISSING, WRONG_OPTICS, judge_translators, translator_gates,
                          translator_paired)

__all__ = ["AA", "AE", "AGREEMENT", "CEILING", "CHANCE_AT_MOST", "DRAWS_CELLS", "EXACT_CLEAN", "EXACT_OPTICS", "GAME",
           "INDISTINGUISHABLE", "L1", "MASK", "MEAN", "NUCLEUS_GAP", "P2P", "PAPER", "RANK_SHIFT", "REMOVABLE_FP",
           "ROOM", "SEES", "SEES_MISSING", "SE_SD", "SYNTHETIC", "WEAK_COST", "WRONG_OPTICS", "floors",
           "heads_differences", "heads_gates", "heads_paired", "judge_heads", "judge_overlap", "judge_synthetic",
           "judge_translators", "overlap_gates", "paired", "recovered", "synthetic_floors", "synthetic_gates",
           "synthetic_paired", "translator_gates", "translator_paired"]
