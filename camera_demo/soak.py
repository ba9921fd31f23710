"""Soak test of the headless camera pipeline: thousands of frames, memory at start and end, every error.

    python -m cifar_edge.camera_demo.soak [--frames 20000] [--data DIR] [--size 640x480] [--live] [--json]

Builds a synthetic video (CIFAR-10 test images from ``--data`` or ``$CIFAR10_DIR``, each
upscaled and held for ``--hold`` frames; random pictures when no data set is found), then runs
the demo exactly as ``cifar-edge camera --headless --log ... --output ...`` does over
``--frames`` frames: decode, classify, draw the overlay, encode the annotated video, write one
JSON line per frame. ``--live`` runs the live-stream path instead (a reader thread paced at the
video's ``--fps``, :class:`edge_sdk.LiveClassifier`): frames the pipeline is too slow for are
dropped, so fewer than ``--frames`` are shown.

It reports the resident set size (RSS) after ``--warmup`` frames and at the last frame, its
growth, the peak, a trace every 1,000 frames, FPS, and every exception: raised by the run,
escaping a thread, or logged at ERROR level. The exit status is 1 when an exception happened,
fewer frames ran than asked, or RSS grew by ``--max-growth-mb`` (default 5) or more.

Measured here: with ``--no-output`` RSS stays flat; writing the MP4 adds about 70 bytes per
frame, FFmpeg's in-memory sample index of the file being written (an MP4 or AVI index lives in
memory until the file is closed), i.e. about 1.4 MB over 20,000 frames.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.classifier import Classifier
from cifar_edge.cli.argtypes import dimensions, float_range, int_range, positive_int
from cifar_edge.cli.terminal import strict_json

from .demo import DemoConfig, run_demo
from .sources import open_source
from .synth import build_video, cifar_test_images

TRACE_EVERY = 1000
MB = 1024 * 1024


def rss_bytes() -> int:
    """Current resident set size of this process (Linux ``/proc``; elsewhere the peak, from ``getrusage``)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def synthetic_video(path: Path, frames: int, *, data: str | None, size: tuple[int, int], hold: int,
                    fps: float, seed: int = 0) -> dict[str, Any]:
    """Write a video of at least ``frames`` frames; CIFAR-10 test images when a data set is found."""
    pictures_needed = -(-frames // hold)
    root = data or os.environ.get("CIFAR10_DIR")
    if root and (Path(root) / "test").is_dir():
        pictures: list[Any] = cifar_test_images(root, per_class=-(-pictures_needed // 10))[:pictures_needed]
        origin = f"CIFAR-10 test images from {root}"
    else:
        rng = np.random.default_rng(seed)
        pictures = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(pictures_needed)]
        origin = "random 32x32 pictures (no CIFAR-10 folder found)"
    if len(pictures) * hold < frames:
        raise SystemExit(f"soak: only {len(pictures)} pictures found; raise --hold to reach {frames} frames")
    written = build_video(pictures, path, size=size, hold=hold, fps=fps)
    return {"path": str(path), "frames": written, "size": f"{size[0]}x{size[1]}", "pictures": origin}


class ErrorCollector(logging.Handler):
    """Keeps every ERROR record and every exception that escapes a thread; counts warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []
        self.warnings = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors.append(f"{record.name}: {record.getMessage()}")
        else:
            self.warnings += 1

    def thread_hook(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread else "?"
        self.errors.append(f"thread {name}: {args.exc_type.__name__}: {args.exc_value}")


class _Probe:
    """Forwards to a frame source; samples RSS after the warm-up, every ``TRACE_EVERY`` frames and at the last one."""

    def __init__(self, source: Any, warmup: int, last: int) -> None:
        self._source, self._warmup, self._last = source, warmup, last
        self.count = 0
        self.start: tuple[int, int, float] | None = None  # (frame, RSS bytes, perf_counter)
        self.end: tuple[int, int, float] | None = None
        self.trace: list[list[float]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def read(self, timeout: float | None = None) -> Any:
        frame = self._source.read(timeout)
        if frame is not None:
            self.count += 1
            if self.count == self._warmup:
                self.start = (self.count, rss_bytes(), time.perf_counter())
            if self.count % TRACE_EVERY == 0:
                self.trace.append([self.count, round(rss_bytes() / MB, 2)])
            if self.count == self._last:
                self.sample_end()
        elif self._source.ended:
            self.sample_end()
        return frame

    def sample_end(self) -> None:
        """RSS at the last frame read, before the outputs are finalized (once)."""
        if self.end is None:
            self.end = (self.count, rss_bytes(), time.perf_counter())


def soak(video: Path, frames: int, *, warmup: int, model: str | None, threads: int | None, live: bool,
         output: bool, workdir: Path) -> dict[str, Any]:
    """Run the headless demo over ``frames`` frames of ``video``; return the report."""
    errors = ErrorCollector()
    root = logging.getLogger()
    root.addHandler(errors)
    previous_hook = threading.excepthook
    threading.excepthook = errors.thread_hook
    exceptions: list[str] = []
    summary = probe = None
    model_name = backend = None
    started = time.perf_counter()
    try:
        with Classifier(model, num_threads=threads) as clf:
            model_name, backend = clf.model_name, clf.backend_name
            config = DemoConfig(source=str(video), headless=True, max_frames=frames, realtime=live,
                                log=str(workdir / "soak.jsonl"), output=str(workdir / "soak-annotated.mp4") if output else None)
            with open_source(config.source, realtime=live, max_reconnects=0) as source:
                probe = _Probe(source, warmup, frames)
                summary = run_demo(config, classifier=clf, source=probe)
    except BaseException as exc:  # every exception is a finding of the soak
        exceptions.append("".join(traceback.format_exception_only(type(exc), exc)).strip())
        if isinstance(exc, KeyboardInterrupt):
            raise
    finally:
        threading.excepthook = previous_hook
        root.removeHandler(errors)
    report: dict[str, Any] = {"frames_asked": frames, "warmup": warmup, "mode": "live" if live else "frame-by-frame",
                              "model": model_name, "backend": backend,
                              "wall_s": round(time.perf_counter() - started, 2)}
    if summary is not None:
        report.update(frames=summary.frames, classified=summary.classified, dropped=summary.dropped,
                      bad_frames=summary.bad_frames, incomplete=summary.incomplete, demo_seconds=summary.seconds,
                      fps=summary.fps, mean_inference_ms=summary.mean_inference_ms,
                      mean_latency_ms=summary.mean_latency_ms)
    if probe is not None and probe.start and probe.end:
        (f0, r0, t0), (f1, r1, t1) = probe.start, probe.end
        report.update(rss_start_mb=round(r0 / MB, 2), rss_start_frame=f0, rss_end_mb=round(r1 / MB, 2),
                      rss_end_frame=f1, rss_growth_mb=round((r1 - r0) / MB, 2),
                      fps_after_warmup=round((f1 - f0) / (t1 - t0), 2) if t1 > t0 else None,
                      rss_trace_mb=probe.trace)
    sampled = [s[1] for s in (probe.start, probe.end) if s] if probe is not None else []
    peak = max([peak_rss_bytes(), *sampled])  # getrusage and /proc round differently
    report.update(rss_peak_mb=round(peak / MB, 2), exceptions=exceptions + errors.errors,
                  warnings=errors.warnings)
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=positive_int, default=20_000, help="frames to run (default 20,000)")
    p.add_argument("--warmup", type=positive_int, default=500, help="frames before the starting RSS is taken (default 500)")
    p.add_argument("--video", help="use this video (built here when it does not exist; default: a temporary one)")
    p.add_argument("--data", help="CIFAR-10 folder for the video's pictures (default $CIFAR10_DIR)")
    p.add_argument("--size", type=dimensions(), default="640x480", help="WxH of a video built here (default 640x480)")
    p.add_argument("--hold", type=positive_int, default=10, help="frames each picture is held in a video built here")
    p.add_argument("--fps", type=float_range(0.0, 1000.0, lo_open=True), help="frame rate of a video built here (default 30; --live: 100)")
    p.add_argument("--model", help="model file (default: the bundled int8 model)")
    p.add_argument("--threads", type=int_range(1, 256), help="runtime threads")
    p.add_argument("--live", action="store_true", help="run the live-stream path (reader thread, frame dropping)")
    p.add_argument("--no-output", action="store_true", help="do not encode the annotated video")
    p.add_argument("--max-growth-mb", type=float_range(0.0), default=5.0, help="RSS growth that fails the soak (default 5)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = p.parse_args(argv)
    if args.frames < 1 or not 0 < args.warmup < args.frames:
        p.error("need --frames >= 1 and 0 < --warmup < --frames")
    logging.basicConfig(level=logging.WARNING, format="soak: %(levelname)s: %(name)s: %(message)s", stream=sys.stderr)
    w, h = args.size
    with tempfile.TemporaryDirectory(prefix="cifar-edge-soak-") as tmp:
        video = Path(args.video) if args.video else Path(tmp) / "soak.mp4"
        built = None
        if not video.exists():
            fps = args.fps or (100.0 if args.live else 30.0)  # the live path reads at this pace
            built = synthetic_video(video, args.frames, data=args.data, size=(w, h), hold=args.hold, fps=fps)
        report = soak(video, args.frames, warmup=args.warmup, model=args.model, threads=args.threads,
                      live=args.live, output=not args.no_output, workdir=Path(tmp))
    report["video"] = built or {"path": str(video)}
    report["max_growth_mb"] = args.max_growth_mb
    growth = report.get("rss_growth_mb")
    enough = report.get("frames", 0) >= (args.warmup + 1 if args.live else args.frames)  # live drops frames
    report["passed"] = not report["exceptions"] and enough and growth is not None and growth < args.max_growth_mb
    if args.json:
        print(strict_json(report))
    else:
        print(f"soak: {report.get('frames')} frames ({report['mode']}) in {report['wall_s']} s, "
              f"{report.get('fps')} FPS; RSS {report.get('rss_start_mb')} MB at frame {report.get('rss_start_frame')} "
              f"-> {report.get('rss_end_mb')} MB at frame {report.get('rss_end_frame')} "
              f"(growth {growth} MB, goal < {args.max_growth_mb}), peak {report['rss_peak_mb']} MB; "
              f"exceptions: {len(report['exceptions'])}; bad frames {report.get('bad_frames')}; "
              f"{'PASSED' if report['passed'] else 'FAILED'}")
        for line in report["exceptions"]:
            print(f"  exception: {line}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
