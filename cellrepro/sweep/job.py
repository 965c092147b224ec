"""One run of a sweep, as the packaged Snakefile's rule executes it.

    python -m cellrepro.sweep.job PARAMS_FILE OUT_DIR LOG_FILE

It reads the run's parameter file (written by :func:`cellrepro.sweep.plan.write_plan`) and
calls :func:`cellrepro.publish.runner.run_notebook`, the code behind ``cellrepro run``, so a run of a
sweep and ``cellrepro run NOTEBOOK --profile P -p NAME VALUE ... --out OUT_DIR`` produce the
same executed notebook and run record.

A failed notebook leaves ``<experiment>.failed.ipynb`` and ``.failed.json`` in ``OUT_DIR``.
Snakemake treats ``OUT_DIR`` as output and may clean it before a retry or the next
invocation, so they are first copied beside the log (``<log stem>.failed.ipynb`` and
``.failed.json``), which Snakemake keeps; a run that succeeds later removes those two. The
log itself is copied to ``<log stem>.failed.log``, because Snakemake empties the log before
each attempt and a retry that succeeds would otherwise hide why the first attempt failed.
The exit status is 0 for a run that succeeded, 1 for a notebook that raised and 2 for a run
that could not start.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

from .. import CellreproError
from ..publish.project import Project
from ..publish.runner import NotebookFailed, run_notebook

log = logging.getLogger("cellrepro.sweep.job")
PARTIAL = (".failed.ipynb", ".failed.json")  # what run_notebook leaves in the output folder of a failed run


def run_job(params_file: str | Path, out_dir: str | Path, log_file: str | Path) -> int:
    """Execute the run described by ``params_file`` into ``out_dir``; return an exit status."""
    spec = json.loads(Path(params_file).read_text(encoding="utf-8"))
    project = Project(spec["project"])
    log.info("run %s: %s in profile %s with %s", Path(params_file).stem, spec["notebook"], spec["profile"],
             spec["parameters"])
    try:
        result = run_notebook(project, spec["notebook"], profile=spec["profile"], parameters=spec["parameters"],
                              out_dir=out_dir, progress=False)
    except NotebookFailed as err:
        log.error("%s", err)
        keep_partial(Path(out_dir), project.notebook(spec["notebook"]).experiment, Path(log_file))
        return 1
    except CellreproError as err:
        log.error("cannot run: %s", err)
        keep_partial(Path(out_dir), "", Path(log_file))
        return 2
    log.info("run %s: %s in %s s; record %s", Path(params_file).stem, result.record["status"],
             result.record["wall_time_s"], result.record_path)
    for stale in partial_copies(Path(log_file)):  # from an earlier failure of this run
        stale.unlink(missing_ok=True)
    return 0


def keep_partial(out_dir: Path, experiment: str, log_file: Path) -> list[Path]:
    """Copy a failed run's partial notebook and record (when ``experiment`` is given) and its log
    so far beside its log; return the copies."""
    pairs = [(out_dir / f"{experiment}{suffix}", log_file.with_name(log_file.stem + suffix))
             for suffix in PARTIAL] if experiment else []
    pairs.append((log_file, log_file.with_name(log_file.stem + ".failed.log")))
    kept = []
    for src, dest in pairs:
        if src.is_file():
            shutil.copyfile(src, dest)
            kept.append(dest)
            log.info("kept %s", dest)
    return kept


def partial_copies(log_file: Path) -> list[Path]:
    """Where a failed run's partial notebook and record are kept: ``<log stem>.failed.ipynb``, ``.failed.json``."""
    return [log_file.with_name(log_file.stem + suffix) for suffix in PARTIAL]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(args) != 3:
        log.error("usage:%s", __doc__.split("\n\n")[1])
        return 2
    return run_job(*args)


if __name__ == "__main__":
    sys.exit(main())
