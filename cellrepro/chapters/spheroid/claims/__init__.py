"""The spheroid claims' measurements and gates, each decided by
:func:`cellrepro.publish.report.judge` from its registration: every rule and threshold here is the
one ``cellrepro/publish/claims/registrations.yml`` names. One module per section:
:mod:`.stacking` (C1, C2; units are stacks), :mod:`.table1` (C3, C5, C8), :mod:`.table2` (C6, C7,
and what the training sections share: DSC's engagement gates, the reference floor, the view gaps)
and :mod:`.ksweep` (C9); units are seeds in the training sections, every arm of a seed paired.
"""

from .ksweep import brown_forsythe, c9_gates, judge_k_sweep
from .stacking import (AUC_BAR, ORACLE_MARGIN, c1_gates, c2_gates, earlier_c2_rule, judge_stacking, paired,
                       rho_reading)
from .table1 import (BACKBONE_ROWS, UNETPP, c3_gates, c5_gates, c8_gates, dsc_gains, judge_table1, table1_cells)
from .table2 import FLOOR_AP75, FLOOR_MAP, c6_gates, dsc_gates, judge_table2, table2_values, view_gap

__all__ = ["AUC_BAR", "BACKBONE_ROWS", "FLOOR_AP75", "FLOOR_MAP", "ORACLE_MARGIN", "UNETPP", "brown_forsythe",
           "c1_gates", "c2_gates", "c3_gates", "c5_gates", "c6_gates", "c8_gates", "c9_gates", "dsc_gains", "dsc_gates",
           "earlier_c2_rule", "judge_k_sweep", "judge_stacking", "judge_table1", "judge_table2", "paired", "rho_reading",
           "table1_cells", "table2_values", "view_gap"]
