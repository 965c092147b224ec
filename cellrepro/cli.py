"""The ``cellrepro`` command: list notebooks, run one with parameters, build the book.

    cellrepro list
    cellrepro run organoid/pipeline --profile smoke -p epochs 2 --out /tmp/run
    cellrepro book --profile smoke          # execute into a staging copy, then build HTML
    cellrepro book --no-execute             # build HTML from the committed notebooks
    cellrepro data make organoid --out /tmp/organoids --n 4
    cellrepro data show /tmp/organoids --json
    cellrepro eval --gt labels/ --pred predictions/ --out scores.csv
    cellrepro route images/ --pipeline ckpt/ --out routes.csv      # multimodal pipeline, no model loaded
    cellrepro predict images/ --pipeline ckpt/ --out predictions/   # <stem>_label.tiff, scored by eval
    cellrepro sweep organoid/pipeline --grid epochs=5,10 --seeds 0,1,2 --profile smoke --collect

Errors a user can act on print one message and exit with status 2 (a failing notebook: 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from typing import Any, Callable

from . import PAPERS, CellreproError, __version__
from .publish.project import PROFILES, Project
from .cli_tools import cmd_blurmap, cmd_data_make, cmd_data_show, cmd_eval, cmd_stack

# Choices spelled out here so that `cellrepro --help` imports neither torch nor scipy (it stays
# under a second); tests/test_cli.py checks each against the module that owns it.
GRADIENTS = ("sobel", "roberts")  # cellrepro.stacking.GRADIENTS
EVAL_MODES = ("cellseg", "plain")  # cellrepro.metrics.MODES
EVAL_FORMATS = ("cellseg", "cellpose", "coco")  # cellrepro.metrics.folders.FORMATS
DATA_FAMILIES = ("dic-spheroid", "multimodal", "mmcs", "brightfield-overlap", "organoid")  # cellrepro.data.FAMILIES
DATA_FORMATS = ("cellseg", "cellpose", "livecell", "zstack", "organoid", "fields")  # cellrepro.data.summary.FORMATS

Handler = Callable[[argparse.Namespace], int]

_ROLE = re.compile(r":[\w.:+-]+:`~?(?:([^`<]*?)\s*<[^`>]*>|([^`]*))`")  # :func:`x`, :ref:`text <target>`
_LITERAL = re.compile(r"``(.+?)``")  # ``x``
_INTERPRETED = re.compile(r"(?<![\w`])`([^`]+)`(?![\w`])")  # `x`


def plain_help(text: str | None) -> str | None:
    """Help text without reST markup: the descriptions come from docstrings written for Sphinx.

    ``x`` and `x` become 'x'; :func:`a.b` becomes a.b (:ref:`text <target>` its text).

    >>> plain_help("The ``cellrepro`` command (see :func:`~cellrepro.cli.main`, `cellrepro list`)")
    "The 'cellrepro' command (see cellrepro.cli.main, 'cellrepro list')"
    """
    if not text:
        return text
    text = _ROLE.sub(lambda m: (m.group(1) if m.group(1) is not None else m.group(2)).strip(), text)
    text = _LITERAL.sub(r"'\1'", text)
    return _INTERPRETED.sub(r"'\1'", text)


class _PlainFormatter(argparse.HelpFormatter):
    """Descriptions and argument help through :func:`plain_help`."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(plain_help(text) or "")

    def _expand_help(self, action: argparse.Action) -> str:
        return plain_help(super()._expand_help(action)) or ""


class _Parser(argparse.ArgumentParser):
    """The command's parser: help without reST markup; subcommands' parsers are of this class
    too (argparse makes them with the parent's class), so every ``--help`` is plain."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _PlainFormatter)
        super().__init__(*args, **kwargs)


def _printing(lines: Callable[[argparse.Namespace], Any]) -> Handler:
    """A command from a generator of output lines (whose return value is the exit status): the
    lines are printed as they come, here, where the package prints."""
    def run(args: argparse.Namespace) -> int:
        gen = lines(args)
        while True:
            try:
                print(next(gen), flush=True)
            except StopIteration as done:
                return int(done.value or 0)
    return run


def _project(args: argparse.Namespace) -> Project:
    return Project(args.root) if args.root else Project.find()


def cmd_list(args: argparse.Namespace) -> int:
    from .publish.record import published, read_record

    project = _project(args)
    notebooks = project.notebooks()
    rows: list[dict[str, Any]] = []
    for nb in notebooks.values():
        last: dict[str, dict[str, Any]] = {}
        for path in project.record_paths(nb):
            rec = read_record(path)
            prof = rec.get("profile", "?")
            if prof not in last or rec.get("started", "") > last[prof].get("started", ""):
                last[prof] = {k: rec.get(k) for k in ("status", "started", "wall_time_s", "device")} | {"record": str(path)}
        rows.append({
            "notebook": nb.key,
            "source": str(nb.source.relative_to(project.root)) if nb.source.is_relative_to(project.root) else str(nb.source),
            "parameters": [{"name": p.name, "type": p.type_name, "default": p.default, "help": p.help,
                            **({"choices": list(p.choices)} if p.choices else {})}
                           for p in nb.parameters.values()],
            "last_run": last,
            "published": published(project, nb),
        })
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    papers = list(dict.fromkeys([*PAPERS, *(nb.paper for nb in notebooks.values())]))
    for paper in papers:
        mine = [r for r in rows if r["notebook"].split("/")[0] == paper]
        print(f"{paper}" + ("" if mine else "  (no notebooks yet)"))
        for r in mine:
            print(f"  {r['notebook']}  ({r['source']})")
            params = ", ".join(f"{p['name']}: {p['type']} = {p['default']!r}" for p in r["parameters"])
            print(f"    parameters: {params or '(none)'}")
            runs = []
            for prof in PROFILES:
                run = r["last_run"].get(prof)
                if run:
                    runs.append(f"{prof} {run['status']} {str(run['started'])[:16]} ({run['wall_time_s']} s)")
                else:
                    runs.append(f"{prof} never run")
            print("    last runs: " + " | ".join(runs))
            if pub := r["published"]:
                state = ("up to date" if not pub["stale"] else "STALE (code or parameters changed since it ran)"
                         if pub["source_hash"] else "STALE (run before source hashes were recorded)")
                print(f"    published: {pub['profile']} {str(pub['started'])[:16]} source {pub['source_hash'] or '?'} {state}")
                if pub["stale_verdicts"]:
                    print(f"      STALE verdicts (registration changed since the run): {', '.join(pub['stale_verdicts'])}")
                notes = []
                if pub["dirty"]:
                    notes.append("ran from uncommitted changes")
                if pub["package_changed"]:
                    notes.append(f"the package changed since it ran (commit {str(pub['commit'])[:10]})")
                if notes:
                    print("      note: " + "; ".join(notes))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .publish.runner import run_notebook

    overrides: dict[str, str] = {}
    for name, value in args.param or []:
        overrides[name] = value
    result = run_notebook(_project(args), args.notebook, profile=args.profile, parameters=overrides,
                          out_dir=args.out, progress=not args.quiet)
    rec = result.record
    print(f"{rec['notebook']}: {rec['status']} in {rec['wall_time_s']} s on {rec['device']}")
    print(f"  executed notebook: {result.notebook}")
    print(f"  run record:        {result.record_path}")
    for key, value in rec.get("metrics", {}).items():
        print(f"  {key} = {_show(value)}")
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    """Print a notebook's parameters in a profile (and ``-p`` overrides) as YAML, for papermill ``-f``."""
    import yaml

    from .publish.runner import resolve_overrides

    project = _project(args)
    nb = project.notebook(args.notebook)
    overrides = resolve_overrides(project, nb, args.profile, dict(args.param or []))
    values = overrides if not args.all else {p.name: p.default for p in nb.parameters.values()} | overrides
    print(yaml.safe_dump(values, sort_keys=False, default_flow_style=None, width=100).rstrip() if values else "{}")
    return 0


def _show(value: Any) -> str:
    """A logged metric for the terminal: floats to 4 decimals (a missing one "n/a"), a verdict
    entry in one line."""
    if isinstance(value, float):
        return f"{value:.4f}" if value == value else "n/a"
    if isinstance(value, dict) and "verdict" in value:
        from .publish.verdicts import effect_text

        effect, interval = effect_text(value)
        return f"{value['verdict']} ({value.get('metric') or 'effect'} {effect}, {interval}; profile {value.get('profile')})"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def cmd_verify(args: argparse.Namespace) -> int:
    from .publish.verify import verify

    out = verify(_project(args), args.notebook, tolerance=args.tolerance, progress=not args.quiet)
    diffs = out["differences"]
    print(f"{out['notebook']}: re-run at commit {out['commit'][:10]} in {out['wall_time_s']} s: "
          + ("every logged number came back" if not diffs else f"{len(diffs)} logged values differ"))
    if out["same_cpu_isa"] is False and diffs:
        print("  note: this CPU's instruction set differs from the publishing run's (float kernels round differently)")
    for d in diffs:
        print(f"  {d['key']}: published {_show(d['published'])}, re-run {_show(d['rerun'])}")
    return 1 if diffs else 0


def cmd_book(args: argparse.Namespace) -> int:
    from .publish.book import build_book

    html = build_book(_project(args), profile=args.profile, execute=not args.no_execute, jobs=args.jobs)
    print(f"book built: {html / 'index.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cellrepro", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"cellrepro {__version__}")
    parser.add_argument("--root", help="project root (default: found from the current folder upwards)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="papers, notebooks, their parameters and last runs")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("params", help="a notebook's parameters in a profile, as YAML (for papermill -f)")
    p.add_argument("notebook", help="paper/experiment (see `cellrepro list`) or a path to its .md source")
    p.add_argument("--profile", choices=PROFILES, default="book", help="profile whose overrides to print")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="an override on top of the profile, checked like `cellrepro run -p`")
    p.add_argument("--all", action="store_true", help="every parameter, defaults included (not only overrides)")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("run", help="execute one notebook with a profile and parameters")
    p.add_argument("notebook", help="paper/experiment (see `cellrepro list`) or a path to its .md source")
    p.add_argument("--profile", choices=PROFILES, default="book",
                   help="parameter overrides to apply first (default: book, the notebook's own defaults)")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="override a parameter (repeatable); checked against the notebook's declared types")
    p.add_argument("--out", help="output folder (default: _build/runs/<profile>/<paper>)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-cell progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("verify", help="re-run a published section from its record; exit 1 if a number differs")
    p.add_argument("notebook", help="paper/experiment with a published record in book/")
    p.add_argument("--tolerance", type=float, default=0.0, help="absolute difference allowed per number (default 0)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-cell progress bar")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("book", help="execute every notebook of the TOC in a profile, then build the HTML")
    p.add_argument("--profile", choices=PROFILES, default="book",
                   help="book: into book/<paper>/ (published); smoke/paper: into a staging copy")
    p.add_argument("--no-execute", action="store_true", help="only build the HTML from the committed notebooks")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run N notebooks at once (each in its own kernel); all run, failures are listed at the end")
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("blurmap", help="HiFST blur maps of images (higher = sharper)")
    p.add_argument("images", nargs="+", help="image files (grey or RGB)")
    p.add_argument("--out", required=True, help="folder for <stem>_blurmap.tif")
    p.add_argument("--gradient", choices=GRADIENTS, default="sobel", help="sobel (HiFST) or roberts (spheroid paper)")
    p.add_argument("--stride", type=int, default=1, help="evaluate every N-th pixel (1 = exact)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.set_defaults(func=cmd_blurmap)

    p = sub.add_parser("stack", help="SBS-Stacking: focus-stack the k most in-focus slices of z-stacks")
    p.add_argument("zstack", help="a multi-page TIFF (Z, H, W), a folder of slice images, or a folder of such stacks; "
                                  "colour slices become grey")
    p.add_argument("--k", type=int, required=True, help="slices to keep (the paper uses 8 of 15)")
    p.add_argument("--out", required=True, help="output image (.tif) for one stack; a folder for a folder of stacks")
    p.add_argument("--scores", help="write the per-slice scores and the selection as JSON")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out stacks that cannot be stacked (each is named); without it they stop the run "
                        "before anything is written")
    p.add_argument("--gradient", choices=GRADIENTS, default="sobel", help="sobel (HiFST) or roberts (spheroid paper)")
    p.add_argument("--stride", type=int, default=1, help="evaluate the blur map at every N-th pixel (1 = exact)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--dtype", choices=("input", "float32", "float64", "uint8", "uint16"), default="input",
                   help="data type of the stacked image: the input's (rounded and clipped for integers), or one named")
    p.set_defaults(func=cmd_stack)

    p = sub.add_parser("eval", help="score a folder of predicted instances against ground truth")
    p.add_argument("--gt", required=True, help="ground-truth folder (or COCO JSON)")
    p.add_argument("--pred", required=True, help="prediction folder (or COCO results JSON)")
    p.add_argument("--format", choices=EVAL_FORMATS, default="cellseg",
                   help="layout of both folders: NeurIPS-CellSeg, Cellpose or COCO JSON (default cellseg)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU a match needs (default 0.5)")
    p.add_argument("--mode", choices=EVAL_MODES, help="cellseg: the challenge's official evaluation (default for "
                   "--format cellseg); plain: no frame removal, rounding or tiling (default otherwise)")
    p.add_argument("--out", help="write the per-image table (.csv) or table and summary (.json)")
    p.set_defaults(func=cmd_eval)

    data = sub.add_parser("data", help="make synthetic data sets, summarise any data set").add_subparsers(
        dest="data_command", required=True)
    p = data.add_parser("make", help="write a synthetic set in its family's real on-disk format")
    p.add_argument("family", choices=DATA_FAMILIES, help="which synthetic family to generate")
    p.add_argument("--out", required=True, help="output folder (replaced atomically if it exists)")
    p.add_argument("--n", type=int, help="number of images/stacks/fields (default: the book-profile size)")
    p.add_argument("--size", type=int, help="image side in pixels (organoid: width; height is 3/4 of it)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0); the same seed gives the same set")
    p.add_argument("--style", choices=("dataset1", "external", "pretrain"),
                   help="mmcs only: the challenge-like set (default), the external family, the pretraining family")
    p.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="another generator parameter, e.g. -p scene 256 -p bits 8 for the stacking section's "
                        "dic-spheroid stand-in (VALUE is read as YAML: null, numbers, [lists])")
    p.set_defaults(func=cmd_data_make)
    p = data.add_parser("show", help="summarise a data set in any supported format, synthetic or real")
    p.add_argument("path", help="data folder (or a COCO .json for LIVECell)")
    p.add_argument("--format", choices=DATA_FORMATS, help="default: detected from the layout")
    p.add_argument("--json", action="store_true", help="print JSON (with n_images and n_instances)")
    p.set_defaults(func=cmd_data_show)
    from .chapters.multimodal.commands import add_parsers as add_multimodal_parsers
    from .sweep.command import add_parsers as add_sweep_parsers

    add_multimodal_parsers(sub, _printing)
    add_sweep_parsers(sub, _printing)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .sweep.command import split_passthrough

    parser = build_parser()
    argv, passthrough = split_passthrough(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(argv)
    if passthrough and args.command != "sweep":
        parser.error(f"arguments after '--' are for `cellrepro sweep` (Snakemake's), not `{args.command}`")
    args.snakemake_args = passthrough
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from .data.types import DataError  # after parsing: `--help` must not import torch or papermill
    from .publish.runner import NotebookFailed
    from .stacking import StackError

    try:
        return args.func(args)
    except NotebookFailed as err:
        print(f"cellrepro: {err}", file=sys.stderr)
        return 1
    except (CellreproError, DataError, StackError) as err:
        print(f"cellrepro: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
