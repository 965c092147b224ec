"""Parameter sweeps of a notebook on Snakemake: from a laptop to a SLURM cluster.

``cellrepro sweep NOTEBOOK --grid NAME=V1,V2 --seeds 0,1,2`` runs the notebook once per
combination of values. The pieces, in the order they act:

- :mod:`.grid` parses ``--grid`` and names each run by a stable hash of notebook, profile and
  values;
- :mod:`.plan` checks every value against the notebook's parameters (as ``cellrepro run`` does)
  and writes the run manifest and one parameter file per run;
- :mod:`.execute` hands the manifest to the packaged, static ``Snakefile``, whose one rule runs
  :mod:`.job`, which calls :func:`cellrepro.publish.runner.run_notebook` (the code of ``cellrepro run``);
- :mod:`.collect` gathers the run records into one table.

Snakemake decides what runs again (new runs, a changed notebook or parameter file, another
cellrepro version, failed runs) and where runs go (``--executor slurm`` with the
``cellrepro[slurm]`` extra). The book page ``book/sweeps.md`` shows it in use.
"""

from __future__ import annotations

from .collect import collect, write_results
from .execute import SweepResult, run_sweep
from .grid import expand, parse_grid, run_id
from .plan import Run, SweepPlan, default_sweep_dir, plan_sweep, read_manifest, write_plan

__all__ = [
    "Run", "SweepPlan", "SweepResult", "collect", "default_sweep_dir", "expand", "parse_grid", "plan_sweep",
    "read_manifest", "run_id", "run_sweep", "write_plan", "write_results",
]
