"""Execute one notebook: jupytext source -> papermill with profile parameters -> ipynb + record.

Every override is checked against the notebook's declared parameters *before* a kernel
starts (papermill alone only warns). The executed notebook gets a banner from its run
record at the top and a "cite this chapter" block at the end, and is written atomically
together with the record. A failed run leaves ``<experiment>.failed.ipynb`` and
``<experiment>.failed.json`` beside, never over, the last good result.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, NoReturn

from .. import CellreproError
from .._io import atomic_path
from .params import apply_overrides
from .profile import overrides_for
from .project import Notebook, Project
from .record import (METRICS_ENV, PROTOCOL, banner_markdown, cpu_isa, git_state, machine_device, read_logged, source_hash,
                     uncommitted_sources, versions, write_record)

log = logging.getLogger(__name__)

KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
BANNER_TAG = "cellrepro-banner"
CITE_TAG = "cellrepro-cite"
PROFILE_ENV = "CELLREPRO_PROFILE"  # the profile a notebook runs in (report.py reads it: no verdicts in smoke)
TRACE_FRAMES = 4  # traceback frames a failure outside a cell reports


class NotebookFailed(CellreproError):
    """A notebook raised during execution; the message names the notebook, cell and error."""


@dataclass
class RunResult:
    notebook: Path
    record_path: Path
    record: dict[str, Any]


def default_out_dir(project: Project, profile: str, nb: Notebook) -> Path:
    """Where ``cellrepro run`` writes when ``--out`` is not given: ``_build/runs/<profile>/<paper>``.

    Published results under ``book/`` are written only by ``cellrepro book --profile book``
    or an explicit ``--out book/<paper>``.
    """
    return project.root / "_build" / "runs" / profile / nb.paper


def resolve_overrides(project: Project, nb: Notebook, profile: str, cli: dict[str, Any] | None) -> dict[str, Any]:
    """The profile's overrides, then the command line's, checked and coerced."""
    merged = overrides_for(project, profile, nb)
    merged.update(apply_overrides(nb.parameters, cli or {}, where=nb.key, source="-p"))
    return merged


def check_publishable(project: Project, nb: Notebook, out: Path) -> None:
    """Refuse a run into the book's published results from code a reader could not check out.

    A run whose output folder is inside ``book/`` needs every source it depends on committed:
    tracked files equal to the commit the record names, and no untracked file under
    ``cellrepro/`` or ``notebooks/`` (:func:`cellrepro.publish.record.uncommitted_sources`); the
    published outputs themselves (``book/*/*.ipynb``, ``*.record.json``) may differ. Outside a git
    checkout there is no commit to name, and the record says so.

    Raises:
        CellreproError: naming the files that differ from the commit.
    """
    try:
        inside = out.resolve().is_relative_to(project.book_dir.resolve())
    except OSError:
        inside = False
    if not inside:
        return
    changed = uncommitted_sources(project.root)
    if changed:
        shown = ", ".join(changed[:12]) + (f" and {len(changed) - 12} more" if len(changed) > 12 else "")
        raise CellreproError(
            f"{nb.key}: refusing to publish into {out}: these files differ from the commit the record would name, "
            f"so no reader could check out the code that made its numbers: {shown}. Commit them first, or run "
            "with --out outside book/.")


def run_notebook(
    project: Project,
    name: str,
    profile: str = "book",
    parameters: dict[str, Any] | None = None,
    out_dir: str | os.PathLike | None = None,
    git: dict[str, Any] | None = None,
    progress: bool = True,
) -> RunResult:
    """Execute notebook ``name`` (``paper/experiment`` or a path) in ``profile``.

    Args:
        project: the project holding the notebook and profiles.
        name: notebook key or path to its ``.md`` source.
        profile: ``smoke``, ``book`` or ``paper``; its overrides apply first.
        parameters: overrides on top of the profile (strings are parsed to the declared type).
        out_dir: folder for ``<experiment>.ipynb`` and ``<experiment>.record.json``.
        git: the checkout state to record; taken now when None (``cellrepro book`` takes it
            once before it starts writing results, which would make the tree look dirty).
        progress: show papermill's per-cell progress bar.

    Returns:
        The executed notebook's path, its record's path and the record.

    Raises:
        CellreproError: unknown notebook, profile or parameter, or a wrong type (nothing runs).
        NotebookFailed: a cell raised, or a step outside the cells failed (writing the source
            notebook, starting the kernel, executing, writing results): the message names the
            cell, or the step and the last frames of the traceback; the partial notebook and
            a failed record are kept.
    """
    import jupytext
    import nbformat
    import papermill

    nb = project.notebook(name)
    overrides = resolve_overrides(project, nb, profile, parameters)
    effective = {p.name: p.default for p in nb.parameters.values()} | overrides
    out = Path(out_dir) if out_dir is not None else default_out_dir(project, profile, nb)
    check_publishable(project, nb, out)
    record: dict[str, Any] = {
        "notebook": nb.key,
        "source": _relative(nb.source, project.root),
        "profile": profile,
        "parameters": effective,
        "overrides": overrides,
        "seed": effective.get("seed", effective.get("seeds")),
        "dataset": _dataset_text(effective),
        "versions": versions(),
        "git": git if git is not None else git_state(project.root),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source_hash": source_hash(nb.source, effective),
        "verdict_protocol": PROTOCOL,
    }
    with tempfile.TemporaryDirectory(prefix="cellrepro-run-") as tmp:
        src = Path(tmp) / f"{nb.experiment}.ipynb"
        executed = Path(tmp) / f"{nb.experiment}.out.ipynb"
        metrics_file = Path(tmp) / "metrics.jsonl"
        step = "writing the source notebook"
        t0 = time.perf_counter()
        try:
            source_nb = jupytext.read(nb.source)
            source_nb.metadata["kernelspec"] = KERNEL
            nbformat.write(source_nb, src)
            log.info("running %s (profile %s, overrides %s)", nb.key, profile, overrides or "none")
            step = "executing"
            t0 = time.perf_counter()
            cpu0 = _children_cpu_s()
            with _env(METRICS_ENV, str(metrics_file)), _env(PROFILE_ENV, profile), \
                    _env("PYTHONWARNINGS", _kernel_warnings()), kernel_environment(), \
                    _known_parameters(set(nb.parameters)):
                papermill.execute_notebook(
                    str(src), str(executed), parameters=overrides, kernel_name=KERNEL["name"],
                    progress_bar=progress, cwd=os.getcwd(), config=_kernel_config(Path(tmp)),
                )
            step = "writing results"
            record["wall_time_s"] = round(time.perf_counter() - t0, 2)
            cpu = _children_cpu_s()
            if cpu is not None and cpu0 is not None:
                record["cpu_time_s"] = round(cpu - cpu0, 1)
            logged = read_logged(metrics_file)
            record["device"] = logged.pop("device", None) or machine_device()
            record["cpu_isa"] = cpu_isa()
            record["metrics"] = logged
            record["status"] = "ok"
            result = nbformat.read(executed, as_version=4)
            decorate(result, record)
            nb_path = out / f"{nb.experiment}.ipynb"
            with atomic_path(nb_path, suffix=".ipynb") as tmp_nb:
                nbformat.write(result, tmp_nb)
            record_path = write_record(out / f"{nb.experiment}.record.json", record)
        except Exception as err:  # papermill raises its own, kernel and I/O errors; all fail the run
            record.setdefault("wall_time_s", round(time.perf_counter() - t0, 2))
            record.setdefault("metrics", read_logged(metrics_file))
            record.setdefault("device", machine_device())
            _fail(nb, out, record, executed, err, _step_of(err, step))
        for stale in (out / f"{nb.experiment}.failed.ipynb", out / f"{nb.experiment}.failed.json"):
            stale.unlink(missing_ok=True)
    return RunResult(nb_path, record_path, record)


def _children_cpu_s() -> float | None:
    """User + system CPU seconds of this process's finished children (the notebook's kernel once
    papermill has shut it down); None where ``resource`` does not exist (Windows).

    A record's ``cpu_time_s`` is the kernel's work independent of other load on the machine: a
    run whose kernel used at most N CPU seconds takes at most N seconds on one idle core.
    """
    try:
        import resource
    except ImportError:
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def kernel_environment() -> Iterator[None]:
    """What the kernel of an executed notebook runs with, beside the metrics and profile variables.

    * ``OMP_WAIT_POLICY``: the user's choice, else passive (:data:`cellrepro.THREAD_WAIT_POLICY`):
      torch's OpenMP threads do not spin for a core another job holds.
    * ``CELLREPRO_PROGRESS=0`` and ``TQDM_DISABLE=1``: no progress bars in a published page,
      neither the package's (:mod:`cellrepro.engine.progress`) nor a library's.
    """
    from .. import THREAD_WAIT_POLICY
    from ..engine import progress

    with _env("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", THREAD_WAIT_POLICY)), \
            _env(progress.ENV, "0"), _env("TQDM_DISABLE", "1"):
        yield


#: Parts of function names on a traceback that show the kernel was being started.
_KERNEL_START = ("start_new_kernel", "start_kernel", "launch_kernel", "wait_for_ready")
#: Warnings the kernel process must not print into chapters: tqdm.auto without ipywidgets.
KERNEL_WARNINGS = "ignore:IProgress not found:Warning"


def _kernel_warnings() -> str:
    """``$PYTHONWARNINGS`` for the kernel: the caller's filters plus :data:`KERNEL_WARNINGS`."""
    return ",".join(w for w in (os.environ.get("PYTHONWARNINGS"), KERNEL_WARNINGS) if w)


def _step_of(error: BaseException, step: str) -> str:
    """The step ``error`` interrupted: "starting the kernel" when a kernel-start frame is on its
    traceback (papermill starts the kernel and executes in one call), else ``step``."""
    if step == "executing" and not hasattr(error, "ename"):
        names = [frame.name for frame in traceback.extract_tb(error.__traceback__)]
        if any(part in name for name in names for part in _KERNEL_START):
            return "starting the kernel"
    return step


def _fail(nb: Notebook, out: Path, record: dict[str, Any], executed: Path, error: BaseException,
          step: str = "executing") -> NoReturn:
    """Keep a failed record (and the partial notebook) beside the last good result, then raise.

    A cell's error names the cell; any other error (kernel death, a missing file) names the
    step it interrupted and the last frames of its traceback, so "No such file or directory"
    comes with the call that raised it.
    """
    import nbformat

    if hasattr(error, "ename"):  # papermill.PapermillExecutionError
        where = f" in cell {error.cell_index} (execution count {error.exec_count}): {error.ename}: {error.evalue}"
    else:
        frames = "".join(traceback.format_list(traceback.extract_tb(error.__traceback__)[-TRACE_FRAMES:]))
        where = f" while {step}: {type(error).__name__}: {error}\ntraceback (last frames):\n{frames.rstrip()}"
    record.update(status="failed", error=where.lstrip(" :"))
    kept = ""
    if executed.is_file():
        partial = out / f"{nb.experiment}.failed.ipynb"
        with atomic_path(partial, suffix=".ipynb") as tmp_nb:
            nbformat.write(nbformat.read(executed, as_version=4), tmp_nb)
        kept = f"\npartial output: {partial}"
    write_record(out / f"{nb.experiment}.failed.json", record)
    raise NotebookFailed(f"notebook {nb.key} failed{where}{kept}") from error


def _kernel_config(folder: Path) -> Any:
    """Kernel-manager settings: IPC transport (Unix sockets in this run's own ``folder``, so
    concurrent runs never share one), so ipykernel does not warn that it runs over TCP
    without encryption; TCP where IPC is not available (Windows)."""
    from traitlets.config import Config

    config = Config()
    if os.name == "posix":
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(folder / "kernel")
    return config


class _DropValidatedUnknown(logging.Filter):
    """Drops papermill's "Passed unknown parameter: X" for parameters cellrepro already checked.

    papermill finds parameters with a regular expression that misses annotations such as
    ``data_root: str | None = None``; cellrepro's own parser reads them, and every override
    was checked against it before the kernel started, so the warning is false.
    """

    def __init__(self, known: set[str]):
        super().__init__()
        self.known = known

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (text.startswith(UNKNOWN_PARAMETER) and text[len(UNKNOWN_PARAMETER):].strip() in self.known)


UNKNOWN_PARAMETER = "Passed unknown parameter:"


@contextlib.contextmanager
def _known_parameters(names: set[str]) -> Iterator[None]:
    logger = logging.getLogger("papermill")
    filt = _DropValidatedUnknown(names)
    logger.addFilter(filt)
    try:
        yield
    finally:
        logger.removeFilter(filt)


def decorate(nb: Any, record: dict[str, Any]) -> None:
    """Insert the record banner below the title and append a cite block (both idempotent)."""
    import nbformat

    nb.cells = [c for c in nb.cells if BANNER_TAG not in c.metadata.get("tags", [])]
    banner = nbformat.v4.new_markdown_cell(banner_markdown(record), metadata={"tags": [BANNER_TAG]})
    first = nb.cells[0] if nb.cells else None
    at = 1 if first is not None and first.cell_type == "markdown" and "\n# " in "\n" + first.source else 0
    nb.cells.insert(at, banner)
    if not any(CITE_TAG in c.metadata.get("tags", []) or "{cite-this-chapter}" in c.source for c in nb.cells):
        nb.cells.append(nbformat.v4.new_markdown_cell("```{cite-this-chapter}\n```", metadata={"tags": [CITE_TAG]}))


def _dataset_text(params: dict[str, Any]) -> str:
    dataset, root = params.get("dataset"), params.get("data_root")
    if root:
        return f"{dataset or 'data'} at {root}"
    return f"{dataset} (synthetic stand-in)" if dataset else "synthetic stand-in"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old
