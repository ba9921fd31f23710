"""Render the suite's results (``results.json``) as ``RESULTS.md``."""

from __future__ import annotations

from typing import Any


def _table(header: list[str], rows: list[list[Any]], align: str) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _lat(t: dict[str, Any] | None) -> str:
    if not t:
        return ""
    lat = t["latency_ms"]
    return f"{lat['p50']:.3f} / {lat['p90']:.3f} / {lat['p99']:.3f}"


def model_rows(results: dict[str, Any]) -> list[list[Any]]:
    """One row per model file x runtime: size, load, latency per thread count, throughput, RSS, accuracy."""
    threads = [str(t) for t in results["settings"]["threads"]]
    rows = []
    for m in results["models"]:
        by = m["threads"]
        first = by[threads[0]]
        acc = f"{100 * m['accuracy']:.2f}%" if "accuracy" in m else ""
        rows.append([
            m["model"], m["format"], m["runtime"], f"{m['bytes'] / 1024:,.0f}", f"{first['load_ms']:.0f}",
            *[_lat(by.get(t)) for t in threads],
            " / ".join(f"{by[t]['throughput_images_per_s']:,.0f}" for t in threads if t in by),
            f"{first['peak_rss_mb']:.0f}", acc,
        ])
    return rows


PLOT_FILE = "latency_accuracy.png"


def latency_accuracy_points(results: dict[str, Any]) -> list[tuple[str, float, float]]:
    """``(model format runtime, latency p50 ms, accuracy)`` of every measured file with an accuracy,
    at the first thread count: the points of the report's plot."""
    t = str(results["settings"]["threads"][0])
    return [(f"{m['model']} {m['format']} ({m['runtime']})", m["threads"][t]["latency_ms"]["p50"], m["accuracy"])
            for m in results["models"] if "accuracy" in m and t in m["threads"]]


def overhead_rows(results: dict[str, Any]) -> list[list[Any]]:
    """SDK ``classify`` vs the runtime's own call, per SDK model file, at the first thread count."""
    t = str(results["settings"]["threads"][0])
    rows = []
    for m in results["models"]:
        r = m["threads"].get(t, {})
        if "runtime_latency_ms" not in r:
            continue
        us = r.get("sdk_overhead_us")
        rows.append([m["model"], m["format"], m["runtime"], _ms(r["latency_ms"]["p50"]),
                     _ms(r["runtime_latency_ms"]["p50"]), f"{r['sdk_overhead_ratio']:.3f}",
                     "-" if us is None else f"{us:+.1f}"])
    return rows


def render(results: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    mach = results["machine"]
    s = results["settings"]
    threads = s["threads"]
    acc_note = "all 10,000 test images" if not s["accuracy_limit"] else f"a stratified subset of {s['accuracy_limit']} test images"
    out = [
        "# Benchmark results",
        "",
        f"Written by `{results['command']}` on {results['started']} in {results['wall_s']:.0f} s.",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['arch']}, {mach['os']}, Python {mach['python']}.",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in mach["packages"].items()) + ".",
        "",
        f"Every figure is the median over {s['repeats']} fresh processes per configuration; latency is "
        f"{s['runs']} batch-1 calls on a 32x32 uint8 image after {s['warmup']} warm-up calls, throughput is "
        f"`classify_batch` of {s['batch']} images (Keras: a compiled `tf.function`, no SDK). Peak RSS is that of a "
        f"process holding only the SDK (or Keras) and that model. Accuracy: {acc_note} of the shared "
        "(lossy JPEG) CIFAR-10 copy, through the SDK from decoded pixels.",
        "",
        "## Models x formats x runtimes",
        "",
    ]
    header = ["model", "format", "runtime", "file KB", "load ms",
              *[f"latency ms p50 / p90 / p99, {t} thread{'s' if t > 1 else ''}" for t in threads],
              f"images/s at batch {s['batch']} ({' / '.join(map(str, threads))} thread{'s' if threads != [1] else ''})", "peak RSS MB", "test accuracy"]
    out += _table(header, model_rows(results), "lllrr" + "r" * len(threads) + "rrr")
    if results.get("plot"):
        out += [f"![batch-1 latency against test accuracy, {threads[0]} thread]({results['plot']})", ""]
    if not results.get("tflite_runtime_installed"):
        out += ["`tflite-runtime` is not installed here (its last release, 2.14, needs numpy < 2 and has no "
                "Python 3.11 ARM64 wheel), so it has no rows; the SDK uses it only as a fallback.", ""]
    out += [
        f"## SDK overhead ({threads[0]} thread{'s' if threads[0] > 1 else ''})",
        "",
        "`Classifier.classify` on a 32x32 uint8 array (validation, encoding, inference, dequantization, top-k) vs the "
        "runtime's own call (LiteRT `set_tensor` + `invoke` + `get_tensor`, ONNX Runtime `session.run`) on the same "
        "already-encoded tensor, in the same process, alternating blocks of the two; the overhead per call is "
        "the difference of the two medians. Goal: <= 1.10 for every shipped int8 file.",
        "",
    ]
    out += _table(["model", "format", "runtime", "classify p50 ms", "bare runtime p50 ms", "ratio", "overhead us"],
                  overhead_rows(results), "lllrrrr")
    if "before_after" in results:
        ba = results["before_after"]
        rows = []
        for label, key in (("before", "before"), ("after", "after")):
            r = ba[key]
            rows.append([f"{label} ({ba['ref'] if key == 'before' else 'this checkout'})", _ms(r["latency_ms"]["p50"]),
                         _ms(r["latency_ms"]["p99"]), _ms(r["runtime_latency_ms"]["p50"]), f"{r['sdk_overhead_ratio']:.3f}",
                         f"{r['throughput_images_per_s']:,.0f}"])
        out += [f"## Before / after: the SDK path, {ba['model']}", "",
                "Both measured in this run, interleaved: the older commit's `edge_sdk` against this checkout's.", ""]
        out += _table(["edge_sdk", "classify p50 ms", "classify p99 ms", "bare runtime p50 ms", "ratio",
                       f"images/s at batch {s['batch']}"], rows, "lrrrrr")
    out += ["## Import footprint", "",
            "A fresh interpreter per figure (the fastest of several): the import, then loading the model and "
            "classifying one image.", ""]
    rows = []
    for name, r in results["imports"].items():
        rows.append([name, f"{r['import_s']:.2f}", f"{r['rss_after_import_mb']:.0f}",
                     f"{1e3 * r['load_and_first_classify_s']:.0f}" if "load_and_first_classify_s" in r else "",
                     f"{r['rss_after_classify_mb']:.0f}" if "rss_after_classify_mb" in r else "",
                     "yes" if r["tensorflow_imported"] else "no"])
    out += _table(["what", "import s", "RSS after import MB", "load + first classify ms", "RSS after classify MB",
                   "TensorFlow imported"], rows, "lrrrrl")
    cam = results["camera"]
    out += ["## Camera pipeline", "",
            f"`python -m cifar_edge.camera_demo.bench_headless` on `{cam['video']}` (640x480, CIFAR test images upscaled): decode + "
            "preprocess + inference + overlay + MP4 encode, headless, bundled int8 default model on LiteRT.", ""]
    rows = [[r["threads"], r["frames"], f"{r['fps_median']:.1f}", f"{r['mean_inference_ms']:.2f}",
             f"{r['mean_latency_ms']:.2f}"] for r in cam["results"]]
    out += _table(["threads", "frames", "FPS (median)", "inference ms", "classify ms"], rows, "rrrrr")
    if results.get("real_photos"):
        from .real_photos import render as render_real_photos

        out += ["", "## Real photos", "",
                "Each bundled model on the real-photo folder (`python -m benchmarks.real_photos`): photos of its "
                "classes (top-1) and the held-back half of the photos of other things (`unknown/`, half 1: the "
                "half training did not see), through the SDK from the files, with the model's own framing, unknown score and "
                "unknown threshold.", "", render_real_photos(results["real_photos"]), ""]
    if results.get("frame_path"):
        f = results["frame_path"]
        mp = f.get("mediapipe_640x480_ms")
        out += ["## Camera-frame path", "",
                f"`python -m benchmarks.frame_path {f['model']}`: `classify` of a BGR frame vs the model's own input size, "
                f"1 thread, median of {f['runs']} calls (OpenCV {'present' if f['opencv'] else 'absent'}).", "",
                "| input | ms | x model input |", "|---|---:|---:|",
                *[f"| {k} | {v:.3f} | {f['ratio_to_model_input'][k]:.2f} |" for k, v in f["ms"].items()],
                *([f"| MediaPipe ImageClassifier, 640x480 ({f['mediapipe_file']}) | {mp:.3f} | - |"] if mp is not None
                  else []), ""]
    return "\n".join(out)
