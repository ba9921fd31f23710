"""The command line, round 2 (issue 14): option ranges, terminal-safe text, strict JSON, one-line errors.

* Every numeric option is range-checked by argparse: one line on stderr, exit 2, before any work
  (``predict --top-k 0``, ``train --lr nan``, ``evaluate --limit 0``, ``camera --width 200000``...).
* Untrusted strings (labels from model metadata, file and folder names) cannot put escape sequences
  or extra lines on the terminal in any text output; ``--json`` keeps them exact.
* JSON output is strict (no bare ``NaN``); Pillow's own ``ERROR:`` log line stays off stderr.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders import make_image_tree
from PIL import Image
from test_bad_inputs import FLOAT_ONNX, _edit_spec, _onnx_with

from cifar_edge.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
KERAS = REPO / "models" / "resnet8" / "best.keras"
UNSAFE = ("\x1b", "\r", "\x07", "\u202e", "\x9b")  # ESC, CR, BEL, right-to-left override, 8-bit CSI


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cifar_edge.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def strict_loads(text: str):
    """``json.loads`` as a strict parser: NaN and Infinity are errors."""
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------- numeric options
OUT_OF_RANGE = [
    (["predict", "a.jpg", "--top-k", "0"], "--top-k"),
    (["predict", "a.jpg", "--top-k", "-3"], "--top-k"),
    (["predict", "a.jpg", "--score-threshold", "2"], "--score-threshold"),
    (["predict", "a.jpg", "--score-threshold", "nan"], "--score-threshold"),
    (["predict", "a.jpg", "--score-threshold", "inf"], "--score-threshold"),
    (["predict", "a.jpg", "--score-threshold", "-0.5"], "--score-threshold"),
    (["predict", "a.jpg", "--threads", "0"], "--threads"),
    (["benchmark", "--runs", "0"], "--runs"),
    (["benchmark", "--batch", "0"], "--batch"),
    (["benchmark", "--warmup", "-1"], "--warmup"),
    (["benchmark", "--threads", "-2"], "--threads"),
    (["camera", "--width", "200000", "--height", "200000"], "--width"),
    (["camera", "--width", "640", "--height", "0"], "--height"),
    (["camera", "--max-frames", "0"], "--max-frames"),
    (["camera", "--output-fps", "nan"], "--output-fps"),
    (["camera", "--output-fps", "0"], "--output-fps"),
    (["camera", "--reconnects", "-1"], "--reconnects"),
    (["camera", "--interval", "nan"], "--interval"),
    (["camera", "--top-k", "0"], "--top-k"),
    (["camera", "--score-threshold", "1.5"], "--score-threshold"),
    (["gui", "--threads", "0"], "--threads"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--lr", "inf"], "--lr"),
    (["train", "--lr", "0"], "--lr"),
    (["train", "--lr", "-0.1"], "--lr"),
    (["train", "--momentum", "nan"], "--momentum"),
    (["train", "--momentum", "1.5"], "--momentum"),
    (["train", "--weight-decay", "-1"], "--weight-decay"),
    (["train", "--warmup-epochs", "nan"], "--warmup-epochs"),
    (["train", "--label-smoothing", "1"], "--label-smoothing"),
    (["train", "--pad", "-1"], "--pad"),
    (["train", "--bias-lr-scale", "inf"], "--bias-lr-scale"),
    (["train", "--cutout", "-1"], "--cutout"),
    (["train", "--distill-temperature", "0"], "--distill-temperature"),
    (["train", "--distill-alpha", "1.5"], "--distill-alpha"),
    (["train", "--val-size", "-1"], "--val-size"),
    (["train", "--val-size", "0"], "--val-size"),
    (["train", "--limit", "0"], "--limit"),
    (["train", "--patience", "0"], "--patience"),
    (["train", "--seed", "-1"], "--seed"),
    (["evaluate", "m.keras", "--limit", "0"], "--limit"),
    (["evaluate", "m.keras", "--batch-size", "0"], "--batch-size"),
    (["compare", "--out", "x", "--epochs", "0"], "--epochs"),
    (["compare", "--out", "x", "--epochs", "5,0"], "--epochs"),
    (["compare", "--out", "x", "--batch-size", "0"], "--batch-size"),
    (["compare", "--out", "x", "--lr", "nan"], "--lr"),
    (["convert", "m.keras", "--out", "x", "--calib-size", "0"], "--calib-size"),
    (["convert", "m.keras", "--out", "x", "--limit", "0"], "--limit"),
    (["convert", "m.keras", "--out", "x", "--seed", "-1"], "--seed"),
    (["parity", "m.keras", "d", "--limit", "0"], "--limit"),
    (["parity", "m.keras", "d", "--min-agreement", "1.5"], "--min-agreement"),
    (["parity", "m.keras", "d", "--min-int8-agreement", "nan"], "--min-int8-agreement"),
    (["parity", "m.keras", "d", "--max-prob-diff", "nan"], "--max-prob-diff"),
    (["parity", "m.keras", "d", "--max-prob-diff", "-1"], "--max-prob-diff"),
    (["parity", "m.keras", "d", "--max-accuracy-drop", "2"], "--max-accuracy-drop"),
    (["data", "grid", "--out", "g.png", "--n", "0"], "--n"),
    (["data", "grid", "--out", "g.png", "--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("argv, option", OUT_OF_RANGE, ids=[" ".join(a[0:1] + a[-2:]) for a, _ in OUT_OF_RANGE])
def test_out_of_range_numeric_options_are_refused_by_the_parser_in_one_line(capsys, argv, option):
    with pytest.raises(SystemExit) as info:
        cli.build_parser().parse_args(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    command = " ".join(argv[:2]) if argv[0] == "data" else argv[0]
    assert len(lines) == 1 and lines[0].startswith(f"cifar-edge {command}: error: {option} must "), captured.err
    assert captured.out == ""


def test_in_range_values_still_parse():
    args = cli.build_parser().parse_args(["predict", "a.jpg", "--top-k", "1", "--score-threshold", "1"])
    assert args.top_k == 1 and args.score_threshold == 1.0
    args = cli.build_parser().parse_args(["train", "--lr", "0.05", "--momentum", "0", "--label-smoothing", "0",
                                          "--cutout", "0", "--val-size", "1", "--epochs", "1"])
    assert args.lr == 0.05 and args.epochs == 1 and args.val_size == 1 and args.momentum == 0.0
    args = cli.build_parser().parse_args(["compare", "--out", "x", "--epochs", "5,10"])
    assert args.epochs == [5, 10]


@pytest.mark.parametrize("argv", [
    ["predict", "{png}", "--top-k", "0"],
    ["train", "--lr", "nan", "--out", "{tmp}/run", "--data", "{tree}"],
    ["train", "--epochs", "0", "--out", "{tmp}/run", "--data", "{tree}"],
    ["train", "--batch-size", "0", "--out", "{tmp}/run", "--data", "{tree}"],
    ["evaluate", "{keras}", "--limit", "0", "--data", "{tree}"],
    ["parity", "{keras}", "{tmp}/export", "--limit", "0", "--data", "{tree}"],
    ["camera", "--headless", "--source", "{png}", "--width", "200000", "--height", "200000",
     "--output", "{tmp}/run/v.mp4"],
    ["benchmark", "--runs", "0"],
], ids=["predict-top-k", "train-lr-nan", "train-epochs-0", "train-batch-0", "evaluate-limit-0", "parity-limit-0",
        "camera-width", "benchmark-runs"])
def test_bad_option_values_end_the_command_in_one_line_and_write_nothing(tmp_path, argv):
    make_image_tree(tmp_path / "tree", classes=("cat", "dog"), per_class=2)
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    values = {"{png}": str(tmp_path / "a.png"), "{tmp}": str(tmp_path), "{tree}": str(tmp_path / "tree"),
              "{keras}": str(KERAS)}
    filled = []
    for arg in argv:
        for key, value in values.items():
            arg = arg.replace(key, value)
        filled.append(arg)
    proc = run_cli(*filled)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"cifar-edge {argv[0]}: error: --") and " must " in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("module, argv", [
    ("cifar_edge.camera_demo.soak", ["--size", "640by480"]),
    ("cifar_edge.camera_demo.soak", ["--threads", "0"]),
    ("cifar_edge.camera_demo.bench_headless", ["--size", "8x8"]),
    ("cifar_edge.camera_demo.bench_headless", ["--repeats", "0"]),
])
def test_the_camera_tools_range_check_their_options_too(module, argv):
    proc = subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"error: argument {argv[0]}" in proc.stderr.strip().splitlines()[-1]


# --------------------------------------------------------------------------- terminal-safe text
HOSTILE_LABELS = [
    "\x1b[2J\x1b[Hairplane",  # clear the screen, cursor home
    "automobile\ntruck.png: cat 0.999  [0.10 ms]",  # a forged result line
    "\x1b]0;owned\x07bird",  # OSC: set the terminal title
    "cat\r",
    "\u202edeer",  # right-to-left override
    "dog\x9b31m",
    "frog",
    "horse",
    "ship",
    "truck",
]


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "labels.onnx"
    path.write_bytes(_onnx_with(_edit_spec(labels=HOSTILE_LABELS)))
    return path


def _assert_terminal_safe(text: str) -> None:
    for char in UNSAFE:
        assert char not in text, f"{char!r} reached the terminal: {text!r}"


def test_labels_from_an_untrusted_model_are_escaped_in_text_and_exact_in_json(hostile_model, tmp_path):
    pictures = []
    for i in range(3):
        pictures.append(tmp_path / f"p{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(pictures[-1])
    text = run_cli("predict", *map(str, pictures), "--model", str(hostile_model), "--top-k", "10")
    assert text.returncode == 0, text.stderr
    _assert_terminal_safe(text.stdout)
    lines = text.stdout.splitlines()
    assert len(lines) == 1 + len(pictures), text.stdout  # the header, then exactly one line per picture
    assert "\\x1b[2J\\x1b[Hairplane" in text.stdout and "automobile\\ntruck.png: cat 0.999" in text.stdout
    assert "\\u202edeer" in text.stdout and "cat\\r" in text.stdout

    as_json = run_cli("predict", *map(str, pictures), "--model", str(hostile_model), "--top-k", "10", "--json")
    labels = {c["label"] for r in strict_loads(as_json.stdout)["results"] for c in r["categories"]}
    assert labels == set(HOSTILE_LABELS)  # --json keeps the exact strings


def test_file_names_are_escaped_in_results_and_in_the_one_error_line(tmp_path):
    good = tmp_path / "good\x1b[31m\nforged: airplane 1.000.png"
    Image.new("RGB", (32, 32), (5, 90, 200)).save(good, format="PNG")
    bad = tmp_path / "bad\nname\x1b]0;x\x07.jpg"
    bad.write_bytes(b"not a picture")
    proc = run_cli("predict", str(good), str(bad))
    assert proc.returncode == 2
    _assert_terminal_safe(proc.stdout + proc.stderr)
    assert len(proc.stdout.splitlines()) == 2 and "good\\x1b[31m\\nforged" in proc.stdout
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("cifar-edge predict: error: ") and "bad\\nname" in errors[0]


def test_camera_and_data_text_outputs_escape_folder_and_file_names(tmp_path):
    folder = tmp_path / "cam\x1b[2Jera"
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (32, 32), (i * 90, 40, 200)).save(folder / f"{i}.png")
    (folder / "x\n\x1b[2Jbroken.png").write_bytes(b"garbage")
    camera = run_cli("camera", "--headless", "--source", str(folder))
    assert camera.returncode == 0, camera.stderr
    _assert_terminal_safe(camera.stdout + camera.stderr)
    assert "cam\\x1b[2Jera" in camera.stdout
    assert all(line.startswith("cifar-edge") for line in camera.stderr.splitlines()), camera.stderr

    tree = tmp_path / "tree"
    make_image_tree(tree, classes=("cat", "d\x1b[2Jog"), per_class=2)
    (tree / "test" / "cat" / "b\nroken\x1b[5m.png").write_bytes(b"garbage")
    stats = run_cli("data", "stats", "--data", str(tree), "--split", "test", "--cache-dir", str(tmp_path / "cache"))
    assert stats.returncode == 0, stats.stderr
    _assert_terminal_safe(stats.stdout + stats.stderr)
    assert "d\\x1b[2Jog" in stats.stdout
    skipped = [line for line in stats.stderr.splitlines() if "roken" in line]
    assert len(skipped) == 1 and "b\\nroken\\x1b[5m.png" in skipped[0]  # the one file on one line


def test_pillows_own_error_log_line_stays_off_stderr(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (10, 12), (1, 2, 3)).save(buf, "TIFF")
    data = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for entry in range(ifd + 2, ifd + 2 + 12 * struct.unpack_from("<H", data, ifd)[0], 12):
        if struct.unpack_from("<H", data, entry)[0] == 277:  # SamplesPerPixel: 9999 makes Pillow log an ERROR
            struct.pack_into("<H", data, entry + 8, 9999)
    picture = tmp_path / "samples.tif"
    picture.write_bytes(bytes(data))
    proc = run_cli("predict", str(picture))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("cifar-edge predict: error: cannot decode image")


# --------------------------------------------------------------------------- strict JSON
def test_json_output_is_strict_even_for_non_finite_numbers(capsys):
    cli.emit({"loss": float("nan"), "rows": [float("inf"), -float("inf"), 1.5], "name": "x"}, True, str)
    assert strict_loads(capsys.readouterr().out) == {"loss": None, "rows": [None, None, 1.5], "name": "x"}

    from edge_sdk.metadata import ModelMetadata
    from edge_sdk.spec import PreprocessSpec

    text = ModelMetadata(spec=PreprocessSpec(), model_name="m", model_version="1", format="tflite",
                         extra={"val_accuracy": float("nan")}).to_json()
    assert strict_loads(text)["extra"] == {"val_accuracy": None}
