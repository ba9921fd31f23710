"""Progress bars on long steps: on stderr when it is a terminal, never under --json (issue 15 item 5)."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from cifar_edge.cli.progress import NullBar, progress_bar

REPO = Path(__file__).resolve().parents[1]
EDGE_INT8 = REPO / "models" / "edge" / "export" / "model_int8.tflite"


def test_bar_draws_on_the_given_stream_only_when_enabled():
    pytest.importorskip("tqdm")
    stream = io.StringIO()
    with progress_bar(4, "steps", True, file=stream, leave=True) as bar:
        for _ in range(4):
            bar.update()
    assert "steps" in stream.getvalue() and "4/4" in stream.getvalue()
    off = progress_bar(4, "steps", False, file=stream)
    assert isinstance(off, NullBar)
    with off as bar:
        bar.update(3)  # a no-op, never an error


def test_image_folder_decode_shows_a_bar(tmp_path, capfd):
    pytest.importorskip("tqdm")
    from builders import make_image_tree

    from cifar_edge.train.data.image_folder import load_image_folder_split

    root = tmp_path / "tree"
    make_image_tree(root, classes=("a", "b"), per_class=3)
    load_image_folder_split(root, "train", progress=True)
    assert "decoding train" in capfd.readouterr().err
    load_image_folder_split(root, "train", progress=False)
    assert capfd.readouterr().err == ""


def _stderr_through_a_terminal(args: list[str], cache: Path) -> tuple[int, str]:
    """Run ``cifar-edge ARGS`` with stderr on a pseudo-terminal; return (exit status, what it drew there)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    env = {**os.environ, "CIFAR_EDGE_CACHE": str(cache)}
    proc = subprocess.Popen([sys.executable, "-m", "cifar_edge.cli", *args], stdout=subprocess.PIPE, stderr=slave,
                            cwd=REPO, env=env)
    os.close(slave)
    drawn = b""
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        if not ready:
            proc.kill()
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        drawn += chunk
    proc.stdout.read()
    status = proc.wait(timeout=60)
    os.close(master)
    return status, drawn.decode("utf-8", "replace")


def test_evaluate_draws_a_bar_on_a_terminal_but_not_under_json(cifar10_dir, session_cache):
    pytest.importorskip("tqdm")
    common = ["evaluate", str(EDGE_INT8), "--data", str(cifar10_dir), "--limit", "300", "--batch-size", "100"]
    status, drawn = _stderr_through_a_terminal(common, session_cache)
    assert status == 0 and "evaluating" in drawn, drawn
    status, drawn = _stderr_through_a_terminal([*common, "--json"], session_cache)
    assert status == 0 and "evaluating" not in drawn and "decoding" not in drawn, drawn
