"""Library code leaves process-wide state alone and imports on every platform (issue 13, item 6)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.sdk  # needs only the SDK's extras: scripts/test_sdk.sh runs it without TensorFlow

REPO = Path(__file__).resolve().parents[1]
INT8_TFLITE = REPO / "models" / "resnet8" / "export" / "model_int8.tflite"


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | env
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environ, capture_output=True, text=True,
                          timeout=120)


def test_edge_sdk_imports_and_runs_without_posix_only_modules():
    """Windows lacks resource, fcntl, pwd, grp and termios: the SDK path (and the benchmark) must not need them."""
    code = (
        "import sys\n"
        "for name in ('resource', 'fcntl', 'pwd', 'grp', 'termios'):\n"
        "    sys.modules[name] = None  # import of it now raises ImportError, as on Windows\n"
        "import numpy as np\n"
        "from edge_sdk import Classifier, LiveClassifier\n"
        "from cifar_edge.cli.benchmark import benchmark\n"
        f"clf = Classifier({str(INT8_TFLITE)!r})\n"
        "print(clf.classify(np.zeros((32, 32, 3), np.uint8)).top is not None)\n"
        f"print(benchmark({str(INT8_TFLITE)!r}, runs=2, warmup=0, batch=2)['peak_rss_mb'])\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "None"]


def test_importing_library_and_cli_modules_leaves_the_environment_alone():
    code = (
        "import json, os\n"
        "before = dict(os.environ)\n"
        "import edge_sdk, cifar_edge.cli.main, cifar_edge.cli.predict, cifar_edge.cli.benchmark, "
        "camera_demo.cli, convert.cli\n"
        "print(json.dumps(sorted(set(os.environ.items()) ^ set(before.items()))))\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_the_cli_quiets_tensorflow_when_it_runs():
    code = (
        "import os\n"
        "from cifar_edge.cli.main import main\n"
        "main(['--version'])\n"
    )
    done = run_python(code + "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    assert done.stdout.split()[-1] == "2"


@contextlib.contextmanager
def no_process_state_changes() -> Iterator[None]:
    """Make every call that changes process-wide state fail the test, inside the block only
    (pytest's own output capture needs ``os.dup2`` between test phases)."""

    def forbidden(name):
        def call(*args, **kwargs):
            raise AssertionError(f"library code called os.{name}{args}")
        return call

    names = ("umask", "dup", "dup2", "putenv", "unsetenv", "chdir")
    saved = {name: getattr(os, name) for name in names if hasattr(os, name)}
    try:
        for name in saved:
            setattr(os, name, forbidden(name))
        yield
    finally:
        for name, function in saved.items():
            setattr(os, name, function)


def test_atomic_writes_leave_the_umask_alone_and_give_the_usual_mode(tmp_path):
    from cifar_edge.cli.atomic import atomic_path, write_bytes_atomic, write_text_atomic

    with no_process_state_changes():
        write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01")
        write_text_atomic(tmp_path / "b.txt", "text")
        with atomic_path(tmp_path / "c.png") as tmp:
            assert tmp.name.startswith(".c.png.") and tmp.name.endswith(".part.png") and tmp.read_bytes() == b""
            tmp.write_bytes(b"png")
    with open(tmp_path / "plain", "w"):  # a file created the ordinary way: mode 0o666 less the umask
        pass
    usual = (tmp_path / "plain").stat().st_mode
    assert [(tmp_path / n).stat().st_mode for n in ("a.bin", "b.txt", "c.png")] == [usual] * 3
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01" and (tmp_path / "c.png").read_bytes() == b"png"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.png", "plain"]


def test_loading_and_running_a_model_touches_no_file_descriptor_or_environment():
    from edge_sdk import Classifier

    before = dict(os.environ)
    with no_process_state_changes():
        for _ in range(2):
            with Classifier(INT8_TFLITE) as clf:
                assert clf.classify(np.zeros((32, 32, 3), np.uint8)).top is not None
    assert dict(os.environ) == before


def test_camera_code_silences_ffmpeg_only_while_a_command_runs():
    from cifar_edge.camera_demo._cv2 import QUIET_NATIVE, quiet_native

    with no_process_state_changes():
        with quiet_native():  # called as a library: stderr stays as it is
            pass
        token = QUIET_NATIVE.set(True)  # what cifar-edge camera does for its run
        try:
            with pytest.raises(AssertionError, match="os.dup"):
                with quiet_native():
                    pass
        finally:
            QUIET_NATIVE.reset(token)
