"""The camera demo, round 2 (issue 14): full disks, output paths, blocking sources and signals.

* A disk that fills up while ``camera --output`` writes (simulated for the native writer with
  ``RLIMIT_FSIZE``) is an error with exit 2 and nothing under the video's name: the file is opened
  again and its frames counted before the rename.
* Every output path is checked before the first frame (a ``--log`` that is a folder, the same file
  twice, the source itself), so nothing is processed and nothing is left.
* A FIFO as ``--source`` gives way to Ctrl-C at once.
* SIGINT and SIGTERM at random moments, over many runs, leave the summary, the video and the log
  agreeing frame for frame (or no output at all when the run was interrupted while starting).
* A folder holding undecodable pictures (bad EXIF, corrupt AVIF, PostScript) or a model that fails
  at run time never kills the loop.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from PIL import Image
from test_hardening_images import bad_exif_jpeg, corrupt_avif, eps_bytes
from test_hardening_models import RESNET8_ONNX, onnx_model

from cifar_edge.camera_demo.demo import DemoConfig, run_demo
from cifar_edge.camera_demo.sources import Frame, FrameSource, SourceSpec
from edge_sdk import Classifier
from cifar_edge.cli.errors import OutputError

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.*")


def picture_folder(folder: Path, n: int = 24, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def frames_in(video: Path) -> int:
    cap = cv2.VideoCapture(str(video))
    count = 0
    while cap.grab():
        count += 1
    cap.release()
    return count


# --------------------------------------------------------------------------- full disk
def _limit_file_size(limit: int):
    def apply() -> None:  # in the child: a write past ``limit`` bytes fails with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_full_disk_while_writing_the_video_is_exit_2_with_no_video(tmp_path, suffix):
    source = picture_folder(tmp_path / "pictures")
    video = tmp_path / "out" / f"annotated{suffix}"
    proc = subprocess.run([sys.executable, "-m", "cifar_edge.cli", "camera", "--headless", "--source", str(source),
                           "--output", str(video), "--json"], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, preexec_fn=_limit_file_size(40_000))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("cifar-edge camera: error: cannot write video"), proc.stderr
    assert "of 24 frames" in lines[0]
    assert not video.exists() and leftovers(video.parent) == []
    assert proc.stdout == ""  # no summary claims a finished video


REAL_VIDEO_WRITER = cv2.VideoWriter


class DroppingWriter:
    """A ``cv2.VideoWriter`` that, like OpenCV on a full disk, silently loses every frame after the second."""

    def __init__(self, *args):
        self._writer = REAL_VIDEO_WRITER(*args)
        self.written = 0

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return self._writer.isOpened()

    def write(self, image):
        self.written += 1
        if self.written <= 2:
            self._writer.write(image)

    def release(self):
        self._writer.release()


class CountingSource(FrameSource):
    """``n`` grey frames; counts the reads (zero reads: nothing was processed)."""

    def __init__(self, n: int = 8):
        super().__init__()
        self.spec = SourceSpec("video", "counting")
        self.n, self.reads = n, 0

    def read(self, timeout=None):
        self.reads += 1
        if self.reads > self.n:
            self._ended = True
            return None
        return Frame(self.reads - 1, float(self.reads), np.full((48, 64, 3), 10 * self.reads, np.uint8))


@pytest.fixture(scope="module")
def clf():
    with Classifier() as classifier:
        yield classifier


def test_a_video_missing_frames_is_refused_before_the_rename(tmp_path, monkeypatch, clf):
    monkeypatch.setattr(cv2, "VideoWriter", DroppingWriter)
    video, log = tmp_path / "v.mp4", tmp_path / "log.jsonl"
    with pytest.raises(OutputError, match=r"cannot write video .*v\.mp4: the written file holds 2 of 8 frames"):
        run_demo(DemoConfig(headless=True, output=str(video), log=str(log)), classifier=clf, source=CountingSource())
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither the video nor the log, no temporary file


# --------------------------------------------------------------------------- output paths checked first
@pytest.mark.parametrize("case", ["log-is-a-folder", "output-is-a-folder", "output-equals-log", "log-under-a-file",
                                  "output-is-the-source"])
def test_every_output_path_is_checked_before_the_first_frame(tmp_path, clf, case):
    folder = tmp_path / "existing"
    folder.mkdir()
    (tmp_path / "file.txt").write_text("x")
    source_video = tmp_path / "source.avi"
    source_video.write_bytes(b"video")
    video, log = str(tmp_path / "v.mp4"), str(tmp_path / "log.jsonl")
    config = {"log-is-a-folder": dict(output=video, log=str(folder)),
              "output-is-a-folder": dict(output=str(tmp_path / "existing.mp4"), log=log),
              "output-equals-log": dict(output=video, log=video),
              "log-under-a-file": dict(output=video, log=str(tmp_path / "file.txt" / "log.jsonl")),
              "output-is-the-source": dict(output=str(source_video), source=str(source_video))}[case]
    if case == "output-is-a-folder":
        (tmp_path / "existing.mp4").mkdir()
    source = CountingSource()
    with pytest.raises(OutputError):
        run_demo(DemoConfig(headless=True, **config), classifier=clf, source=source)
    assert source.reads == 0  # refused before the first frame
    assert not Path(video).exists() and not Path(log).exists() and leftovers(tmp_path) == []
    assert source_video.read_bytes() == b"video"


def test_cli_log_pointing_at_a_folder_fails_at_once_and_leaves_no_video(tmp_path):
    source = picture_folder(tmp_path / "pictures", n=4)
    (tmp_path / "logs").mkdir()
    video = tmp_path / "v.mp4"
    proc = subprocess.run([sys.executable, "-m", "cifar_edge.cli", "camera", "--headless", "--source", str(source),
                           "--output", str(video), "--log", str(tmp_path / "logs")], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "--log" in lines[0] and "is a folder" in lines[0]
    assert not video.exists() and leftovers(tmp_path) == []


# --------------------------------------------------------------------------- blocking sources
def test_a_fifo_source_gives_way_to_ctrl_c(tmp_path):
    fifo = tmp_path / "camera.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "cifar_edge.cli", "camera", "--headless", "--source", str(fifo)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = None
    try:
        deadline = time.monotonic() + 120
        while writer is None and time.monotonic() < deadline and proc.poll() is None:
            try:  # succeeds once the camera has the FIFO open for reading; then it waits for video data
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.05)
        assert writer is not None, "the camera never opened the FIFO"
        time.sleep(0.5)  # well inside the blocking read of the stream header
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)  # a hang guard, not a speed bar: before, it ignored Ctrl-C
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("camera ignored Ctrl-C while its FIFO source blocked")
    finally:
        if writer is not None:
            os.close(writer)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130 and err.strip().splitlines() == ["cifar-edge camera: interrupted"], err


# --------------------------------------------------------------------------- signals at random moments
DRIVER = r"""
import json, random, signal, sys, threading, time
from pathlib import Path
import cv2
from cifar_edge.camera_demo.demo import DemoConfig, run_demo
from edge_sdk import Classifier

folder, work, runs, seed = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def interrupt(signum, frame):  # as the CLI: SIGTERM outside a run is an interrupt, like Ctrl-C
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, interrupt)
rng = random.Random(seed)
clf = Classifier()
main = threading.main_thread().ident

def frames_in(path):
    cap = cv2.VideoCapture(str(path)); n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n

for run in range(runs):
    out = work / f"run{run:02d}"
    out.mkdir()
    video, log = out / ("v.mp4" if run % 2 else "v.avi"), out / "log.jsonl"
    sig = rng.choice([signal.SIGINT, signal.SIGTERM])
    delay = rng.uniform(0.0, 0.5)
    timer = threading.Timer(delay, signal.pthread_kill, (main, sig))
    record = {"run": run, "signal": signal.Signals(sig).name, "delay": round(delay, 3)}
    try:
        timer.start()
        summary = run_demo(DemoConfig(source=folder, headless=True, output=str(video), log=str(log)), classifier=clf)
        record.update(status="finished", frames=summary.frames, classified=summary.classified,
                      bad=summary.bad_frames, stopped_by=summary.stopped_by)
    except KeyboardInterrupt:
        record["status"] = "interrupted"
    while True:  # a signal that arrives after the run is the driver's, not the run's
        try:
            timer.join()
            time.sleep(0.02)
            break
        except KeyboardInterrupt:
            continue
    record["files"] = sorted(p.name for p in out.iterdir())
    record["video_frames"] = frames_in(video) if video.exists() else 0
    record["log_lines"] = len(log.read_text().splitlines()) if log.exists() else 0
    print(json.dumps(record), flush=True)
"""


def test_signals_at_random_moments_keep_summary_video_and_log_in_agreement(tmp_path):
    source = picture_folder(tmp_path / "pictures", n=40)
    work = tmp_path / "runs"
    work.mkdir()
    runs = 30
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(source), str(work), str(runs), "14"],
                          capture_output=True, text=True, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == runs
    disagreements = []
    for r in records:
        if r["status"] == "interrupted":  # interrupted while starting: nothing left behind
            ok = r["files"] == []
        else:
            video = "v.mp4" if r["run"] % 2 else "v.avi"
            ok = (r["video_frames"] == r["frames"] == r["log_lines"] == r["classified"] + r["bad"]
                  and r["files"] == sorted([video, "log.jsonl"] if r["frames"] else ["log.jsonl"]))
        if not ok:
            disagreements.append(r)
    assert disagreements == [], disagreements
    stopped = [r for r in records if r["status"] == "finished" and r["stopped_by"] == "signal"]
    assert {r["signal"] for r in stopped} == {"SIGINT", "SIGTERM"}  # both signals landed mid-run
    assert any(0 < r["frames"] < 40 for r in stopped)


# --------------------------------------------------------------------------- one bad picture, one failed call
def test_a_folder_with_undecodable_pictures_runs_to_the_end_with_its_log(tmp_path):
    folder = picture_folder(tmp_path / "pictures", n=3)
    (folder / "100_bad_exif.jpg").write_bytes(bad_exif_jpeg())
    (folder / "101_corrupt_avif.jpg").write_bytes(corrupt_avif())
    (folder / "102_postscript.jpg").write_bytes(eps_bytes())
    log = tmp_path / "log.jsonl"
    proc = subprocess.run([sys.executable, "-m", "cifar_edge.cli", "camera", "--headless", "--source", str(folder),
                           "--log", str(log), "--json"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["frames"] == summary["classified"] == 3 and summary["bad_frames"] == 3
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 3 and all("top_k" in r for r in records)


def test_a_model_failing_at_run_time_never_kills_the_camera_loop(tmp_path):
    folder = picture_folder(tmp_path / "pictures", n=3)
    model = tmp_path / "alloc.onnx"
    proto = onnx.load_from_string(onnx_model("alloc"))
    proto.metadata_props.extend(onnx.load(RESNET8_ONNX).metadata_props)
    onnx.save(proto, model)
    log = tmp_path / "log.jsonl"
    proc = subprocess.run([sys.executable, "-m", "cifar_edge.cli", "camera", "--headless", "--source", str(folder),
                           "--model", str(model), "--log", str(log), "--json"], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["frames"] == 3 and summary["classified"] == 0 and summary["bad_frames"] == 3
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 3 and all("onnxruntime failed to run the model" in r["error"] for r in records)
