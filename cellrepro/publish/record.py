"""Run records: what produced a number, saved as JSON beside each executed notebook.

A record holds the notebook, profile, parameters (all of them, and which were overridden),
seed, dataset, package versions, git commit and dirtiness, device, start time, wall time,
status and the metrics the notebook logged. The book shows a banner rendered from it at
the top of the chapter, so a reader always knows what produced a number.

Inside a notebook, :func:`log_metrics` sends values to the record of the run in progress
(the runner passes the file through ``$CELLREPRO_METRICS``); outside a run it does nothing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from .._io import atomic_write_json

log = logging.getLogger(__name__)

METRICS_ENV = "CELLREPRO_METRICS"
VERSIONED = ("cellrepro", "torch", "torchvision", "monai", "kornia", "lightning-fabric", "numpy")
SCHEMA = 1
PROTOCOL = 2  # verdict protocol of new records: registered rules, gates, decide() (cellrepro.publish.verdicts.judge)


def log_metrics(**metrics: Any) -> None:
    """Record named values (floats, ints, strings, small lists) in the current run's record.

    Called from notebooks, usually through :func:`cellrepro.publish.report.glue`. The special key
    ``device`` names the device the notebook computed on. Outside ``cellrepro run`` (plain
    papermill or Jupyter) there is no record and the call only logs at debug level.
    """
    target = os.environ.get(METRICS_ENV)
    clean = {k: _plain(v) for k, v in metrics.items()}
    if not target:
        log.debug("no run record in progress; metrics not recorded: %s", clean)
        return
    with open(target, "a", encoding="utf-8") as fh:  # one JSON object per line; appends are atomic enough
        fh.write(json.dumps(clean) + "\n")


def read_logged(path: str | os.PathLike) -> dict[str, Any]:
    """Merge the JSON lines a run logged (later values win)."""
    merged: dict[str, Any] = {}
    p = Path(path)
    if p.is_file():
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                merged.update(json.loads(line))
    return merged


def _plain(value: Any) -> Any:
    """NumPy/torch scalars to Python, tuples and arrays to lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape results (None: not installed)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(root: str | os.PathLike) -> dict[str, Any]:
    """``{"commit", "dirty", "package_tree"}`` of the checkout at ``root``.

    Dirty means tracked files differ from the commit, other than the published outputs
    (:data:`PUBLISHED_OUTPUTS`): a chapter published right after another, before that one's results
    are committed, ran from the same code. ``package_tree`` is the git tree hash of
    ``cellrepro/`` at the commit (what ``cellrepro list`` compares to say that the package changed
    since a chapter ran). Outside a git checkout (an sdist, a copied folder) all are None.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", os.fspath(root), *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = any(line.strip() and not _published_output(line[3:].strip('"'))
                    for line in git("status", "--porcelain", "--untracked-files=no").splitlines())
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None, "package_tree": None}
    return {"commit": commit, "dirty": dirty, "package_tree": package_tree(root)}


def package_tree(root: str | os.PathLike, rev: str = "HEAD") -> str | None:
    """The git tree hash of ``cellrepro/`` at ``rev`` in the checkout at ``root`` (None: not there)."""
    try:
        out = subprocess.run(["git", "-C", os.fspath(root), "rev-parse", f"{rev}:cellrepro"], capture_output=True,
                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return out or None


#: Files a run into ``book/`` writes itself: they may differ from the commit while it publishes.
PUBLISHED_OUTPUTS = ("book/*/*.ipynb", "book/*/*.record.json")
#: Where an untracked file changes what a run computes (a new module, a new notebook).
SOURCE_DIRS = ("cellrepro/", "notebooks/")


def sources_changed_since(root: str | os.PathLike, commit: str) -> list[str] | None:
    """Files that differ between ``commit`` and ``HEAD`` other than published outputs (a published
    record names the commit before the one that adds it); None when ``commit`` is not in this clone."""
    try:
        out = subprocess.run(["git", "-C", os.fspath(root), "diff", "--name-only", commit, "HEAD"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return sorted(p for p in out.splitlines() if p and not _published_output(p))


def _published_output(path: str) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(path, pattern) for pattern in PUBLISHED_OUTPUTS)


def uncommitted_sources(root: str | os.PathLike) -> list[str] | None:
    """Files that make the checkout at ``root`` differ from its commit, as far as a run's results go.

    Tracked files that differ from ``HEAD`` (staged or not), and untracked, not ignored files
    under :data:`SOURCE_DIRS`, except the published outputs (:data:`PUBLISHED_OUTPUTS`). None
    outside a git checkout.

    >>> uncommitted_sources("/") is None
    True
    """
    try:
        out = subprocess.run(["git", "-C", os.fspath(root), "status", "--porcelain=v1", "-z", "--untracked-files=all"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    changed = []
    entries = out.split("\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        status, path = entry[:2], entry[3:]
        if status[0] in "RC":  # a rename names its source next: skip it, the new path counts
            i += 1
        if status == "??" and not path.startswith(SOURCE_DIRS):
            continue
        if _published_output(path):
            continue
        changed.append(path)
    return sorted(changed)


def device_name(device: str | None = None) -> str:
    """A readable name for ``device`` ("auto"/None: CUDA if available, else the CPU), for records."""
    if device in (None, "auto"):
        return machine_device()
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return _cpu_name()


@functools.lru_cache(maxsize=1)
def machine_device() -> str:
    """A name for the best device on this machine: the CUDA GPU if torch sees one, else the CPU.

    Used when a notebook did not log the device it computed on.
    """
    try:
        import importlib.util

        if importlib.util.find_spec("torch") is not None:
            import torch

            if torch.cuda.is_available():
                return torch.cuda.get_device_name(0)
    except Exception:  # a broken CUDA install must not lose the record
        log.debug("torch device query failed", exc_info=True)
    return _cpu_name()


#: Instruction-set flags that change which float kernels torch and oneDNN run on a CPU.
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "asimd", "sve")


def cpu_isa() -> list[str]:
    """The :data:`ISA_FLAGS` this CPU has (from ``/proc/cpuinfo``; empty where it cannot be read).

    Runs are bit-reproducible on one kind of CPU, not across them: another instruction set picks
    other kernels, whose sums round differently (organoid/pipeline re-run on an AVX2 EPYC gives
    every published number back; on a CPU with AVX-512 it gave F1 0.8236 for 0.8227). Records
    store these flags so that a reader, and ``cellrepro verify``, can tell the two apart.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            have = set(line.split(":", 1)[1].split())
            return [f for f in ISA_FLAGS if f in have]
    return []


def _cpu_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU ({cpu}, {os.cpu_count()} cores)"


def source_hash(source: str | os.PathLike, parameters: dict[str, Any]) -> str:
    """A short hash of a notebook's code and effective parameters: what a run's numbers depend on.

    Hashes the source text of the code cells of the jupytext ``source`` (markdown cells,
    front matter and narrative edits do not count) and ``parameters`` as canonical JSON.

    >>> import tempfile, pathlib
    >>> md = pathlib.Path(tempfile.mkdtemp()) / "x.md"
    >>> _ = md.write_text("# Title\\n\\n```{code-cell} ipython3\\nx = 1\\n```\\n")
    >>> a = source_hash(md, {"n": 1})
    >>> _ = md.write_text("# Other title\\n\\n```{code-cell} ipython3\\nx = 1\\n```\\n")
    >>> source_hash(md, {"n": 1}) == a, source_hash(md, {"n": 2}) == a
    (True, False)
    """
    import jupytext

    nb = jupytext.read(source)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    text = json.dumps({"code": code, "parameters": _plain(parameters)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def stale(project: Any, nb: Any, record: dict[str, Any]) -> bool:
    """Whether ``record`` was made from other code or parameters than ``nb`` would run with now.

    The expected hash is that of the notebook's current code cells and the parameters its
    current defaults and the record's profile give it (``project`` and ``nb`` are a
    :class:`cellrepro.publish.project.Project` and :class:`~cellrepro.publish.project.Notebook`). A record
    without a ``source_hash`` (written before it existed) or from a run with ``-p``
    overrides beyond the profile's counts as stale: rebuilding the book would not reproduce it.
    """
    from .profile import overrides_for
    from .project import PROFILES

    recorded = record.get("source_hash")
    if not recorded or record.get("profile") not in PROFILES:
        return True
    effective = {p.name: p.default for p in nb.parameters.values()} | overrides_for(project, record["profile"], nb)
    return source_hash(nb.source, effective) != recorded


def published(project: Any, nb: Any) -> dict[str, Any] | None:
    """The published result of ``nb`` (``book/<paper>/<experiment>.record.json``), or None.

    Keys: ``record`` (its path), ``profile``, ``started``, ``source_hash``, ``stale`` (:func:`stale`:
    its code or parameters changed), ``stale_verdicts`` (claims judged under a registration that
    has changed since), ``dirty`` (it ran from uncommitted changes), ``commit`` and
    ``package_changed`` (the package's tree at HEAD differs from the one it ran with: information,
    not staleness; None when the record predates package trees).
    """
    from .claims import VERDICT_KEY, registration_hash

    path = project.book_dir / nb.paper / f"{nb.experiment}.record.json"
    if not path.is_file():
        return None
    rec = read_record(path)
    git = rec.get("git") or {}
    stale_verdicts = sorted(key[len(VERDICT_KEY):] for key, e in (rec.get("metrics") or {}).items()
                            if key.startswith(VERDICT_KEY) and isinstance(e, dict) and e.get("registration")
                            and e["registration"] != registration_hash(key[len(VERDICT_KEY):]))
    tree = git.get("package_tree")
    return {"record": str(path), "profile": rec.get("profile"), "started": rec.get("started"),
            "source_hash": rec.get("source_hash"), "stale": stale(project, nb, rec), "stale_verdicts": stale_verdicts,
            "dirty": git.get("dirty"), "commit": git.get("commit"), "verdict_protocol": rec.get("verdict_protocol", 1),
            "package_changed": None if not tree else tree != package_tree(project.root)}


def lock_hash() -> str | None:
    """``sha256:<hex>`` of the checkout's ``requirements.lock`` (the exact environment the
    published book was built with), None when cellrepro is not run from a checkout."""
    import hashlib

    lock = Path(__file__).resolve().parents[2] / "requirements.lock"
    return f"sha256:{hashlib.sha256(lock.read_bytes()).hexdigest()}" if lock.is_file() else None


def write_record(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``record`` atomically as JSON, with ``lock``: the :func:`lock_hash` of requirements.lock."""
    return atomic_write_json(path, {"schema": SCHEMA, "lock": lock_hash(), **record})


def read_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read a record written by :func:`write_record`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def format_duration(seconds: float) -> str:
    """``75.3`` -> ``"1 min 15 s"``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def banner_markdown(record: dict[str, Any]) -> str:
    """The MyST admonition shown at the top of an executed chapter.

    It names the profile (and any overrides), device, wall time, commit, date, seed, dataset
    and the source hash (:func:`source_hash`; ``cellrepro list`` says when it no longer
    matches the notebook); the CSS class ``cellrepro-banner`` lets tests and styles find it.
    """
    commit = record.get("git", {}).get("commit")
    dirty = record.get("git", {}).get("dirty")
    commit_text = "no git checkout" if not commit else f"`{commit[:10]}`" + (" (uncommitted changes)" if dirty else "")
    overrides = record.get("overrides") or {}
    over_text = ", ".join(f"`{k}={v!r}`" for k, v in overrides.items())
    dataset = record.get("dataset") or "synthetic stand-in"
    lines = [
        ":::{admonition} How this page was produced",
        ":class: note cellrepro-banner",
        f"**Profile** `{record.get('profile')}`" + (f" with {over_text}" if over_text else "")
        + f" · **device** {record.get('device')}"
        + f" · **wall time** {format_duration(record.get('wall_time_s', 0.0))}"
        + (f" (kernel CPU {format_duration(record['cpu_time_s'])})" if record.get("cpu_time_s") is not None else ""),
        f"**Commit** {commit_text} · **run on** {str(record.get('started', ''))[:10]}"
        + f" · **seed** {record.get('seed')} · **data** {dataset}"
        + (f" · **source** `{record['source_hash']}`" if record.get("source_hash") else ""),
        "",
        "Numbers on this page come from this run; the paper's own numbers are labelled as such. "
        "The run record (JSON) beside the notebook holds every parameter and package version.",
        ":::",
    ]
    return "\n".join(lines)
