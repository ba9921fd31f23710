"""``cifar-edge camera`` (live demo) and ``cifar-edge gui`` (image GUI).

Registration builds parsers only: OpenCV and Tk are imported when a command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cifar_edge.cli.main import add_json_flag, emit, quiet_runtime, summary
from cifar_edge.cli.predict import add_model_options
from cifar_edge.cli.argtypes import float_range, int_range, probability
from cifar_edge.cli.terminal import safe_text

MAX_SIDE = 8192  # mirrors demo.MAX_SIDE (no OpenCV import here)

EXIT_INCOMPLETE = 1  # the run ended early (truncated video, lost stream); its outputs were still written


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``camera`` and ``gui`` subcommands."""
    register_camera(subparsers)
    register_gui(subparsers)


def register_camera(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "camera",
        help=summary("camera"),
        description=(
            "Classify frames from a webcam, Raspberry Pi camera, RTSP/HTTP stream, video file, image or folder of "
            "images and show them annotated with the top-k labels, FPS, inference time, model and backend. Keys: q/ESC quit, "
            "space pause, s snapshot. Exit status: 0 done, 1 the source ended early (truncated video, stream "
            "lost after reconnecting; outputs are still written), 2 a source, model or output that cannot be opened."
        ),
    )
    p.add_argument("--source", default="0",
                   help="webcam index (default 0), /dev/videoN, picamera2 or picamera2:N (Raspberry Pi camera, "
                        "needs python3-picamera2 from apt), video file, rtsp:// or http(s):// URL, image file or "
                        "folder of images")
    add_model_options(p)
    p.add_argument("--top-k", type=int_range(1, 1000), default=3, help="labels shown per frame (default 3)")
    p.add_argument("--score-threshold", type=probability, default=0.0,
                   help="hide labels below this probability, in [0, 1] (default 0)")
    p.add_argument("--width", type=int_range(16, MAX_SIDE),
                   help=f"camera capture width to request (and the canvas width for still images), 16 to {MAX_SIDE}")
    p.add_argument("--height", type=int_range(16, MAX_SIDE),
                   help=f"camera capture height to request (and the canvas height for still images), 16 to {MAX_SIDE}")
    p.add_argument("--headless", action="store_true", help="open no window (servers, a Pi without a screen, CI)")
    p.add_argument("--output", metavar="VIDEO", help="write the annotated frames to this .mp4 or .avi")
    p.add_argument("--log", metavar="JSONL", help="write one JSON line per classified frame "
                   "(frame, timestamp_ms, top_k, latency_ms)")
    p.add_argument("--max-frames", type=int_range(1), metavar="N", help="stop after N frames")
    p.add_argument("--realtime", action="store_true",
                   help="play a video file at its own frame rate through the live path (drops frames when slow)")
    p.add_argument("--output-fps", type=float_range(0.0, 1000.0, lo_open=True),
                   help="frame rate of --output, in (0, 1000] (default: the source's)")
    p.add_argument("--snapshot-dir", default=".", help="where the s key saves snapshots (default: current folder)")
    p.add_argument("--reconnects", type=int_range(0, 1000), default=5,
                   help="live sources: reconnect attempts after a read failure, with doubling back-off (default 5)")
    p.add_argument("--interval", type=float_range(0.0, 3600.0), default=1.0,
                   help="seconds the window shows each still image (default 1)")
    add_json_flag(p)
    p.set_defaults(func=run_camera)


def run_camera(args: argparse.Namespace) -> int:
    from edge_sdk.classifier import Classifier

    from ._cv2 import QUIET_NATIVE
    from .demo import DemoConfig, run_demo

    config = DemoConfig(
        source=args.source, model=args.model, backend=args.backend, threads=args.threads, top_k=args.top_k,
        score_threshold=args.score_threshold, width=args.width, height=args.height, headless=args.headless,
        output=args.output, log=args.log, max_frames=args.max_frames, realtime=args.realtime,
        output_fps=args.output_fps, snapshot_dir=args.snapshot_dir, reconnects=args.reconnects,
        interval_s=args.interval,
    )
    quiet = QUIET_NATIVE.set(True)  # FFmpeg's chatter hidden while the command runs (see camera_demo._cv2)
    try:
        config.validate()  # bad options and unwritable outputs before the model loads
        with quiet_runtime(args):
            clf = Classifier(config.model, backend=config.backend, num_threads=config.threads, top_k=config.top_k,
                             score_threshold=config.score_threshold)
        with clf:
            summary = run_demo(config, classifier=clf)
    except ValueError as exc:  # bad option values (the parser cannot check combinations)
        print(f"cifar-edge camera: error: {safe_text(str(exc))}", file=sys.stderr)
        return 2
    finally:
        QUIET_NATIVE.reset(quiet)
    emit(summary.to_dict(), args.json, _render)
    if summary.incomplete:
        print(f"cifar-edge camera: error: {safe_text(summary.incomplete)} ({summary.frames} frames processed and "
              "written)", file=sys.stderr)
        return EXIT_INCOMPLETE
    return 0


def _render(s: dict[str, Any]) -> str:
    lat = (f"mean inference {s['mean_inference_ms']:.2f} ms, latency {s['mean_latency_ms']:.2f} ms"
           if s["mean_inference_ms"] is not None else "no frame classified")
    lines = [
        (f"{s['frames']} frames from {s['source']} ({s['kind']}) in {s['seconds']:.2f} s: {s['fps']:.1f} FPS; "
         f"{lat}; model {s['model']} on {s['backend']}"),
        (f"classified {s['classified']}, dropped {s['dropped']}, bad frames {s['bad_frames']}, "
         f"stopped by {s['stopped_by']}"),
    ]
    if s["output"]:
        lines.append(f"video  {s['output']}")
    if s["log"]:
        lines.append(f"log    {s['log']}")
    lines.extend(f"snapshot {p}" for p in s["snapshots"])
    return "\n".join(lines)


def register_gui(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("gui", help=summary("gui"))
    p.add_argument("image", nargs="?", metavar="IMAGE", help="an image to open (and classify) at start")
    add_model_options(p)
    p.add_argument("--screenshot", metavar="PNG",
                   help="open IMAGE, classify it, save a screenshot of the window and exit")
    p.set_defaults(func=run_gui_command)


def run_gui_command(args: argparse.Namespace) -> int:
    from edge_sdk.classifier import Classifier

    from .gui import TOP_K, run_gui

    if args.screenshot and not args.image:
        print("cifar-edge gui: error: --screenshot needs an IMAGE", file=sys.stderr)
        return 2
    with quiet_runtime(args):
        clf = Classifier(args.model, backend=args.backend, num_threads=args.threads, top_k=TOP_K)
    try:
        return run_gui(clf, args.image, args.screenshot)
    finally:
        clf.close()
