"""The image tools of the command line: ``data make`` / ``data show``, ``eval``, ``blurmap`` and
``stack`` (the handlers; :mod:`cellrepro.cli` builds the parser and runs the project commands
``list``, ``run``, ``params``, ``verify`` and ``book``). Each handler takes the parsed arguments
and returns the exit status; errors a user can act on are :class:`~cellrepro.CellreproError`.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import CellreproError


def cmd_data_make(args: argparse.Namespace) -> int:
    from . import data

    fam = data.family(args.family)
    params = fam.params(n=args.n, size=args.size, seed=args.seed)
    if args.style is not None:
        if args.family != "mmcs":
            raise CellreproError(f"--style is for the mmcs family only, not {args.family}")
        params["style"] = args.style
    if args.param:
        import inspect

        import yaml

        known = set(inspect.signature(fam.module.generate).parameters) - {"n", "size", "seed"}
        for name, value in args.param:
            if name not in known:
                raise CellreproError(f"{args.family} has no generator parameter {name!r}; it takes "
                                     f"{', '.join(sorted(known))} (besides --n, --size and --seed)")
            params[name] = yaml.safe_load(value)
    out = data.make(args.family, args.out, **params)
    print(f"{args.family}: wrote {out} ({fam.format} format; {', '.join(f'{k}={v}' for k, v in params.items())})")
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    from .data.summary import format_summary, summarize

    summary = summarize(args.path, args.format)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ._io import atomic_write_json, atomic_write_text
    from .metrics import evaluate
    from .metrics.folders import pair_folders

    mode = args.mode or ("cellseg" if args.format == "cellseg" else "plain")
    table, summary = evaluate(pair_folders(args.gt, args.pred, args.format), threshold=args.iou, mode=mode)
    if args.format == "coco":
        from .metrics import coco_eval

        gt = json.loads(open(args.gt, encoding="utf-8").read())
        pred = json.loads(open(args.pred, encoding="utf-8").read())
        summary.update({f"mask_{k}": v for k, v in coco_eval(gt, pred["annotations"] if isinstance(pred, dict) else pred).items()})
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"\nsummary ({mode} mode, IoU >= {args.iou}):")
    for key, value in summary.items():
        print(f"  {key:<16} {value:.4f}" if isinstance(value, float) else f"  {key:<16} {value}")
    if args.out:
        if args.out.endswith(".json"):
            atomic_write_json(args.out, {"summary": summary, "images": table.to_dict("records")})
        else:
            atomic_write_text(args.out, table.to_csv(index=False))
        print(f"written: {args.out}")
    return 0


def cmd_blurmap(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from .data.files import read_image, write_image
    from .stacking import blur_map

    for name in args.images:
        image = read_image(name)
        if image.dtype.kind not in "uif" or not np.isfinite(image).all():
            raise CellreproError(f"{name}: expected a numeric image without NaN")
        result = blur_map(image, gradient=args.gradient, stride=args.stride, device=args.device, progress=True)
        out = Path(args.out) / f"{Path(name).stem}_blurmap.tif"
        write_image(out, result.astype(np.float32))
        print(f"{name}: mean {result.mean():.4f} -> {out}")
    return 0


def cmd_stack(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ._io import atomic_write_json
    from .data.files import write_image
    from .stacking import sbs_stack
    from .stacking.batch import as_type, find_stacks, read_stack_and_type, stack_all

    kwargs = {"gradient": args.gradient, "stride": args.stride, "device": args.device}
    stacks = find_stacks(args.zstack)
    if len(stacks) == 1 and stacks[0] == Path(args.zstack) and not Path(args.out).is_dir():
        stack, raw_type = read_stack_and_type(args.zstack)
        result = sbs_stack(stack, k=args.k, progress=True, **kwargs)
        write_image(args.out, as_type(result.image, raw_type if args.dtype == "input" else args.dtype, grey=stack))
        print(f"{args.zstack}: kept slices {sorted(result.indices.tolist())} of {len(stack)} -> {args.out}")
        if args.scores:
            atomic_write_json(args.scores, {"k": args.k, "selected": result.indices.tolist(),
                                            "scores": result.scores.tolist()})
            print(f"scores: {args.scores}")
        return 0
    out = Path(args.out)
    if out.suffix.lower() in (".tif", ".tiff") or (out.exists() and not out.is_dir()):
        raise CellreproError(f"{args.zstack} holds {len(stacks)} stacks: --out must be a folder, not {out}")
    out.mkdir(parents=True, exist_ok=True)
    batch = stack_all(stacks, args.k, out, skip_bad=args.skip_bad, dtype=args.dtype, **kwargs)
    for name, why in batch.skipped.items():
        print(f"skipped {name}: {why}", file=sys.stderr)
    print(f"{len(batch.written)} of {len(stacks)} stacks stacked (k={args.k}) -> {out}"
          + (f"; {len(batch.skipped)} skipped, listed above" if batch.skipped else ""))
    if args.scores:
        atomic_write_json(args.scores, batch.as_json(args.k))
        print(f"scores: {args.scores}")
    return 0
