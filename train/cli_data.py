"""``cifar-edge data``: look at a data set (statistics and an image grid)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cifar_edge.cli.main import add_json_flag, check_output_folder, emit, summary
from cifar_edge.cli.argtypes import int_range, non_negative_int
from cifar_edge.cli.terminal import safe_text

from .cli_options import add_data_options, source_from_args
from .data.dataset import ImageSet


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` subcommand and its ``stats`` and ``grid`` actions."""
    parser = subparsers.add_parser("data", help=summary("data"))
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    stats = actions.add_parser("stats", help="images per class, pixel statistics, label order")
    add_data_options(stats)
    stats.add_argument("--split", help="only this split (default: every split)")
    add_json_flag(stats)
    stats.set_defaults(func=run_stats)

    grid = actions.add_parser("grid", help="save a PNG grid of sample images with their class names")
    add_data_options(grid)
    grid.add_argument("--out", required=True, metavar="PNG", help="output PNG file")
    grid.add_argument("--n", type=int_range(1, 10_000), default=36, help="number of images, 1 to 10000 (default 36)")
    grid.add_argument("--split", default="train", help="split to sample (default train)")
    grid.add_argument("--seed", type=non_negative_int, default=0, help="sampling seed (default 0)")
    add_json_flag(grid)
    grid.set_defaults(func=run_grid)


def _report_skipped(data: ImageSet) -> list[dict[str, str]]:
    if data.skipped:
        print(f"skipped {len(data.skipped)} unreadable file(s) in split '{safe_text(data.split)}':", file=sys.stderr)
        for s in data.skipped:  # file names are untrusted: escaped, one line each
            print(f"  {safe_text(s.path)}: {safe_text(s.reason)}", file=sys.stderr)
    return [{"path": s.path, "reason": s.reason} for s in data.skipped]


def run_stats(args: argparse.Namespace) -> int:
    from .data.explore import label_order_report, split_stats
    from .data.image_folder import labels_in_file_order

    source = source_from_args(args)
    splits = [args.split] if args.split else source.splits()
    result: dict[str, Any] = {"source": str(source.path), "format": source.kind, "origin": source.origin}
    per_split: dict[str, Any] = {}
    class_names: tuple[str, ...] = ()
    for split in splits:
        data = source.load(split)
        class_names = data.class_names
        per_split[split] = split_stats(data)
        per_split[split]["skipped"] = _report_skipped(data)
        if source.kind == "image-folder":  # the arrays hold one class after another: show the files' own order
            head = labels_in_file_order(source.path, split, data.class_names, len(per_split[split]["first_labels"]))
            per_split[split]["first_labels"] = head
            per_split[split]["first_label_names"] = [data.class_names[i] for i in head]
        per_split[split]["first_labels_order"] = ("file name across class folders" if source.kind == "image-folder"
                                                  else "batch order")
    result["label_order"] = label_order_report(class_names)
    result["splits"] = per_split
    emit(result, args.json, _render_stats)
    return 0


def _render_stats(result: dict[str, Any]) -> str:
    order = result["label_order"]
    names = order["class_names"]
    lines = [
        f"data: {result['source']} ({result['format']}, from {result['origin']})",
        "classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(names)),
        "label order: "
        + ("official CIFAR-10 order" if order["official_cifar10_order"] else "not CIFAR-10's official order"),
    ]
    splits = result["splits"]
    header = f"{'class':<12}" + "".join(f"{s:>10}" for s in splits)
    lines += ["", header]
    for name in names:
        lines.append(f"{name:<12}" + "".join(f"{splits[s]['per_class'].get(name, 0):>10,}" for s in splits))
    lines.append(f"{'total':<12}" + "".join(f"{splits[s]['images']:>10,}" for s in splits))
    for split, st in splits.items():
        px = st["pixels"]
        lines += [
            "",
            f"[{split}] shape {tuple(st['shape'])} {st['dtype']}, pixels {px['min']}..{px['max']}",
            f"  mean (R,G,B) {', '.join(f'{v:.2f}' for v in px['mean'])}   std {', '.join(f'{v:.2f}' for v in px['std'])}",
            f"  first labels ({st['first_labels_order']}): {' '.join(map(str, st['first_labels']))}",
            f"                {' '.join(st['first_label_names'])}",
            f"  skipped files: {st['skipped_files']}",
        ]
    return "\n".join(lines)


def run_grid(args: argparse.Namespace) -> int:
    from .data.explore import image_grid, save_png

    check_output_folder(Path(args.out).parent, f"--out {args.out}")
    source = source_from_args(args)
    data = source.load(args.split)
    skipped = _report_skipped(data)
    grid = image_grid(data, args.n, seed=args.seed)
    save_png(grid, args.out)
    result = {"out": args.out, "images": min(args.n, len(data)), "split": args.split, "size": list(grid.size), "skipped": skipped}
    emit(result, args.json, lambda r: f"wrote {r['out']}: {r['images']} images from split '{r['split']}', {r['size'][0]}x{r['size'][1]} px")
    return 0
