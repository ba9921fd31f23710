"""Smoke test of the benchmark suite on a tiny budget: it runs end to end and its figures are coherent.

The figures themselves are not asserted (speed depends on the machine); their structure and
their internal consistency are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.suite import FILES

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, cifar10_dir) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench")
    temp = tmp_path_factory.mktemp("system-temp")  # TMPDIR of the suite: it must stay empty
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(out), "--data", str(cifar10_dir),
         "--baseline-ref", "HEAD"],
        capture_output=True, text=True, cwd=REPO, timeout=900, env={**os.environ, "TMPDIR": str(temp)},
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["RESULTS.md", "latency_accuracy.png", "results.json"]
    # ONNX Runtime's own telemetry leaves a 51-byte session-id file ".ses" in the temporary folder at
    # import (microsoft/onnxruntime#32476): not the suite's to remove; nothing else may appear there.
    assert [p.name for p in temp.iterdir() if p.name != ".ses"] == [], "the benchmark suite wrote outside --out"
    return json.loads((out / "results.json").read_text()), (out / "RESULTS.md").read_text()


def test_latency_accuracy_plot_is_linked_and_drawn(quick_run, tmp_path):
    from PIL import Image

    results, md = quick_run
    assert results["plot"] == "latency_accuracy.png" and "](latency_accuracy.png)" in md
    path = Path(results["plot_path"])
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 400
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colors) > 20  # points, labels and axes, not a blank canvas


def test_every_format_of_the_model_is_measured(quick_run):
    results, _ = quick_run
    rows = {(m["model"], m["format"]) for m in results["models"]}
    assert rows == {("resnet8", fmt) for fmt in FILES}
    for m in results["models"]:
        figures = m["threads"]["1"]
        lat = figures["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"], m["format"]
        assert figures["throughput_images_per_s"] > 0 and figures["peak_rss_mb"] > 10 and figures["load_ms"] > 0
        assert m["bytes"] == Path(m["path"]).stat().st_size
        assert m["accuracy_images"] == 200 and 0.6 < m["accuracy"] <= 1.0, m  # a real classifier, not noise
        if m["runtime"] != "keras":
            bare = figures["runtime_latency_ms"]["p50"]
            assert bare > 0 and figures["sdk_overhead_ratio"] == pytest.approx(lat["p50"] / bare, rel=0.5)
            # microseconds per call: the ratio's excess times the bare call (medians of the same repeats)
            assert figures["sdk_overhead_us"] == pytest.approx(1e3 * bare * (figures["sdk_overhead_ratio"] - 1),
                                                               rel=0.5, abs=20)


def test_sdk_processes_stay_free_of_tensorflow_and_keras_does_not(quick_run):
    results, _ = quick_run
    keras = next(m for m in results["models"] if m["format"] == "keras")
    litert = next(m for m in results["models"] if m["format"] == "tflite-int8")
    # the SDK process holds no TensorFlow, so it is far smaller than the Keras one
    assert litert["threads"]["1"]["peak_rss_mb"] < keras["threads"]["1"]["peak_rss_mb"] / 3
    imports = results["imports"]
    assert all(not r["tensorflow_imported"] for name, r in imports.items() if name.startswith("edge_sdk"))
    assert imports["tensorflow"]["tensorflow_imported"]


def test_report_has_every_section_and_camera_and_before_after(quick_run):
    results, md = quick_run
    assert results["camera"]["results"][0]["frames"] == 30 and results["camera"]["results"][0]["fps_median"] > 0
    ba = results["before_after"]
    assert ba["before"]["latency_ms"]["p50"] > 0 and ba["after"]["latency_ms"]["p50"] > 0
    for heading in ("## Models x formats x runtimes", "## SDK overhead", "## Before / after", "## Import footprint",
                    "## Camera pipeline", "## Real photos", "## Camera-frame path"):
        assert heading in md
    real = {r["model"]: r for r in results["real_photos"]}
    assert set(real) == {"default", "edge"} and all(r["photos"] > 50 and 0 <= r["accuracy"] <= 1 for r in real.values())
    assert all(0 <= r["open_set"]["auroc"] <= 1 and r["open_set"]["unknown_half"] == 1 for r in real.values())
    frames = results["frame_path"]["ms"]
    assert set(frames) == {"32x32", "640x480", "1920x1080"} and all(v > 0 for v in frames.values())
    assert results["machine"]["cores"] >= 1 and results["machine"]["cpu"] in md
    for fmt in FILES:
        assert f"| resnet8 | {fmt} |" in md
