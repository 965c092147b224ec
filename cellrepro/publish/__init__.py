"""Publishing machinery: from a notebook's source to a page of the book, and the verdicts on it.

This half owns everything between the methods and the reader: the notebook catalogue and its
parameters (:mod:`.project`, :mod:`.params`, :mod:`.profile`), executing a notebook with papermill
into an executed copy and a run record (:mod:`.runner`, :mod:`.record`), building the Jupyter Book
(:mod:`.book` and the Sphinx extensions :mod:`.sphinx_cite`, :mod:`.sphinx_claims`,
:mod:`.sphinx_bibstyle`), what notebooks call to show and record results (:mod:`.report`,
:mod:`.tables`), and how a claim is judged: the claims register and each claim's registration
(:mod:`.claims`), the decision rule and gates (:mod:`.decision`, :mod:`.verdicts`) and the power
analysis behind them (:mod:`.power`). Nothing here trains a network;
the training engine is :mod:`cellrepro.engine`.
"""
