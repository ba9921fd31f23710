"""Distributed training (issue 16): TF_CONFIG, the CLI's checks, mixed precision, a mirrored run
against an undistributed one, and two real workers on 127.0.0.1 (a full run, then a lost worker
and --resume). Every process the tests start is bounded by a timeout and killed at the end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cifar_edge.train.errors import DistributedTrainingError
from cifar_edge.train.tf_config import parse_tf_config

RUN_TIMEOUT_S = 240  # a whole two-worker run; about 50 s on 2 busy cores
LOST_WORKER_TIMEOUT_S = 60  # the survivor must give up well within this after the kill (~10 s heartbeat)
TINY = ["--model", "resnet8", "--limit", "256", "--eval-limit", "256", "--batch-size", "64", "--warmup-epochs", "0",
        "--lookahead"]


# ---------------------------------------------------------------------------------------- TF_CONFIG


def test_tf_config_two_workers_first_is_chief():
    text = json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}})
    config = parse_tf_config(text)
    assert (config.workers, config.task_type, config.task_index, config.is_chief) == (2, "worker", 1, False)
    assert parse_tf_config(text.replace('"index": 1', '"index": 0')).is_chief


def test_tf_config_chief_job_is_the_chief():
    config = parse_tf_config(json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:2"]},
                                         "task": {"type": "worker", "index": 0}}))
    assert config.workers == 2 and not config.is_chief


@pytest.mark.parametrize("text, fragment", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}}', 'with "cluster" and "task"'),
    ('{"cluster": {"ps": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}', "'ps' job"),
    ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', '"host:port"'),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}', "not one of the cluster"),
])
def test_tf_config_errors_name_the_problem(text, fragment):
    with pytest.raises(DistributedTrainingError) as info:
        parse_tf_config(text)
    assert fragment in str(info.value)


def run_cli(*args: str, env_extra: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**{k: v for k, v in os.environ.items() if k != "TF_CONFIG"}, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "cifar_edge.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.mark.parametrize("args, env, fragment", [
    (["--distribute", "multiworker"], {}, "needs the TF_CONFIG environment variable"),
    (["--distribute", "multiworker"], {"TF_CONFIG": "{"}, "TF_CONFIG is not valid JSON"),
    (["--devices", "GPU:0"], {}, "--devices applies to --distribute mirrored only"),
])
def test_cli_refuses_a_bad_cluster_before_loading_tensorflow(tmp_path, args, env, fragment):
    start = time.monotonic()
    proc = run_cli("train", "--out", str(tmp_path / "run"), *args, env_extra=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("cifar-edge train: error: ") and fragment in proc.stderr
    assert time.monotonic() - start < 20 and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_mixed_precision_is_refused_on_a_cpu_only_machine(tmp_path, cifar10_dir):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: mixed precision is accepted here")
    proc = run_cli("train", "--mixed-precision", "--data", str(cifar10_dir), "--out", str(tmp_path / "run"),
                   "--limit", "64", "--eval-limit", "64", "--epochs", "1")
    assert proc.returncode == 2 and "--mixed-precision needs a GPU" in proc.stderr, proc.stderr
    assert "only slower" in proc.stderr and not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------ library level


def test_batch_must_split_evenly_across_replicas():
    from types import SimpleNamespace

    from cifar_edge.train.distribute import Distribution, check_batch_split

    two = Distribution(SimpleNamespace(num_replicas_in_sync=2))
    check_batch_split(64, two)
    with pytest.raises(DistributedTrainingError, match="--batch-size 65 does not split evenly across 2 replicas"):
        check_batch_split(65, two)


def test_unknown_device_is_named():
    from cifar_edge.train.distribute import make_distribution

    with pytest.raises(DistributedTrainingError, match="no device 'GPU:7' here; TensorFlow sees .*CPU:0"):
        make_distribution("mirrored", ["GPU:7"])


def test_mixed_precision_model_has_float32_output_and_float32_copy():
    import keras

    from cifar_edge.train import models
    from cifar_edge.train.precision import MIXED_POLICY, float32_copy, with_float32_output

    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(MIXED_POLICY)  # process-wide, restored below
        model = with_float32_output(models.build_model("resnet8"))
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.layers[-2].dtype_policy.compute_dtype == "float16"
    assert model.layers[-1].dtype_policy.name == "float32"
    images = np.random.default_rng(0).random((2, 32, 32, 3), np.float32)
    assert keras.ops.convert_to_numpy(model(images)).dtype == np.float32
    copy = float32_copy(model)
    assert all(layer.dtype_policy.name == "float32" for layer in copy.layers)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), copy.get_weights()))
    assert float32_copy(copy) is copy


@pytest.mark.slow
def test_mixed_precision_run_saves_a_float32_best_model_and_resumes_only_mixed(tmp_path, cifar10_dir, session_cache):
    """The library under the policy the command sets (on this CPU only because the library, unlike
    the command, does not refuse it): a loss-scale optimizer, float32 output and best.keras."""
    import keras

    from edge_sdk.errors import EdgeSDKError
    from cifar_edge.train.precision import MIXED_POLICY
    from cifar_edge.train.training import TrainConfig, load_keras_model, train

    config = TrainConfig(model="resnet8", out=str(tmp_path / "run"), data=str(cifar10_dir),
                         cache_dir=str(session_cache), epochs=1, limit=64, eval_limit=64, batch_size=32,
                         lookahead=True)
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(MIXED_POLICY)  # process-wide, restored below
        summary = train(config)
        last = load_keras_model(tmp_path / "run" / "last.keras", compile=True)
        assert type(last.optimizer).__name__ == "LossScaleOptimizer"
    finally:
        keras.config.set_dtype_policy(previous)
    assert summary["distribution"]["dtype_policy"] == MIXED_POLICY and summary["epochs"] == 1
    assert last.layers[-1].dtype_policy.name == "float32" and last.layers[-2].dtype_policy.name == MIXED_POLICY
    best = load_keras_model(tmp_path / "run" / "best.keras")
    assert {layer.dtype_policy.name for layer in best.layers} == {"float32"}
    with pytest.raises(EdgeSDKError, match="trained with the mixed_float16 dtype policy.*with --mixed-precision"):
        train(config, resume=True)


@pytest.mark.slow
def test_mirrored_on_one_cpu_gives_the_same_first_epoch_loss(tmp_path, cifar10_dir, session_cache):
    from cifar_edge.train.distribute import make_distribution
    from cifar_edge.train.training import TrainConfig, train

    losses = {}
    for kind in ("none", "mirrored"):
        config = TrainConfig(model="resnet8", out=str(tmp_path / kind), data=str(cifar10_dir),
                             cache_dir=str(session_cache), epochs=1, limit=256, eval_limit=256, batch_size=64, seed=3)
        summary = train(config, distribution=make_distribution(kind))
        assert summary["distribution"]["kind"] == kind and summary["distribution"]["replicas"] == 1
        losses[kind] = json.loads((tmp_path / kind / "history.json").read_text())[0]["loss"]
    assert losses["mirrored"] == pytest.approx(losses["none"], rel=1e-6)


# --------------------------------------------------------------------------------- two real workers


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """Worker processes on 127.0.0.1, each with its TF_CONFIG, output files and a private TMPDIR."""

    def __init__(self, root: Path, cache: Path, n: int = 2) -> None:
        self.root, self.cache, self.n = root, cache, n
        self.ports = free_ports(n)
        self.procs: list[subprocess.Popen] = []
        self.tag = ""

    def tmpdir(self, index: int) -> Path:
        return self.root / f"tmp{index}"

    def out(self, index: int) -> Path:
        return self.root / f"out{index}"

    def start(self, *args: str, tag: str, extra: dict[int, list[str]] | None = None) -> None:
        """Start every worker with ``args`` (worker ``i`` also with ``extra[i]``)."""
        self.procs, self.tag = [], tag
        for index in range(self.n):
            self.tmpdir(index).mkdir(exist_ok=True)
            tf_config = {"cluster": {"worker": [f"127.0.0.1:{p}" for p in self.ports]},
                         "task": {"type": "worker", "index": index}}
            env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CIFAR_EDGE_CACHE": str(self.cache),
                   "TMPDIR": str(self.tmpdir(index))}
            with open(self.root / f"{tag}{index}.out", "w") as out, open(self.root / f"{tag}{index}.err", "w") as err:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "cifar_edge.cli", "train", "--distribute", "multiworker", "--json",
                     "--out", str(self.out(index)), *args, *(extra or {}).get(index, [])],
                    env=env, stdout=out, stderr=err))

    def wait(self, index: int, timeout: float) -> int:
        try:
            return self.procs[index].wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            pytest.fail(f"worker {index} still running after {timeout:.0f} s:\n{self.stderr(index, self.tag)[-3000:]}")

    def output(self, index: int, tag: str) -> dict:
        return json.loads((self.root / f"{tag}{index}.out").read_text())

    def stderr(self, index: int, tag: str) -> str:
        return (self.root / f"{tag}{index}.err").read_text()

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def cluster(tmp_path, session_cache, cifar10_dir) -> Iterator[Cluster]:
    from cifar_edge.train.data import load_split

    for split in ("train", "test"):  # decode once here, not in two workers at the same time
        load_split(split, cifar10_dir, cache_dir=session_cache)
    nodes = Cluster(tmp_path, session_cache)
    yield nodes
    nodes.kill_all()


def worker_folders(cluster: Cluster, index: int) -> list[str]:
    return [p.name for p in cluster.tmpdir(index).iterdir() if p.name.startswith("cifar-edge-worker")]


@pytest.mark.slow
def test_two_workers_train_one_model(cluster, cifar10_dir):
    from cifar_edge.train.data import load_split
    from cifar_edge.train.evaluation import classification_metrics, keras_probabilities
    from cifar_edge.train.training import RUN_FILES, load_keras_model, load_spec_beside, weights_sha256

    start = time.monotonic()
    cluster.start(*TINY, "--epochs", "2", "--data", str(cifar10_dir), tag="run")
    codes = [cluster.wait(i, RUN_TIMEOUT_S) for i in range(2)]
    wall = time.monotonic() - start
    assert codes == [0, 0], cluster.stderr(0, "run")[-2000:] + cluster.stderr(1, "run")[-2000:]
    chief, worker = cluster.output(0, "run"), cluster.output(1, "run")

    # only the chief's run folder holds artifacts; the other worker's temporary folder is gone
    assert sorted(p.name for p in cluster.out(0).iterdir()) == sorted(RUN_FILES)
    assert not cluster.out(1).exists() and worker_folders(cluster, 1) == []
    assert worker["role"] == "worker" and worker["epochs"] == chief["epochs"] == 2
    assert chief["distribution"] == {"kind": "multiworker", "workers": 2, "replicas": 2, "global_batch": 64,
                                     "per_replica_batch": 32, "auto_shard_policy": "DATA", "dtype_policy": "float32"}
    # the same final weights on both workers (bit for bit)
    assert worker["final_weights_sha256"] == chief["final_weights_sha256"] == worker["chief_final_weights_sha256"]
    last = load_keras_model(cluster.out(0) / "last.keras")
    assert weights_sha256(last) == chief["final_weights_sha256"]

    # the trained model is better than chance on 2,000 test images it never saw
    model = load_keras_model(cluster.out(0) / "best.keras")
    test = load_split("test", cifar10_dir, cache_dir=cluster.cache)
    pick = np.random.default_rng(0).choice(len(test), 2000, replace=False)
    metrics = classification_metrics(keras_probabilities(model, test.images[pick], load_spec_beside(
        cluster.out(0) / "best.keras")), test.labels[pick], test.class_names)
    assert metrics["accuracy"] > 0.13, metrics["accuracy"]  # chance: 0.10 +- 0.007 on 2,000 images
    print(f"two-worker run: {wall:.1f} s wall, test accuracy {metrics['accuracy']:.3f}")


@pytest.mark.slow
def test_lost_worker_stops_the_other_and_resume_continues(cluster, cifar10_dir):
    cluster.start(*TINY, "--epochs", "2", "--data", str(cifar10_dir), tag="run")
    state = cluster.out(0) / "state.json"
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and cluster.procs[0].poll() is None:
        if state.is_file() and json.loads(state.read_text()).get("epochs_done", 0) >= 1:
            break
        time.sleep(0.1)
    cluster.procs[1].send_signal(signal.SIGKILL)  # a crashed machine: no clean-up
    killed = time.monotonic()
    code = cluster.wait(0, LOST_WORKER_TIMEOUT_S)
    waited = time.monotonic() - killed
    last_line = cluster.stderr(0, "run").strip().splitlines()[-1]
    assert code == 2, cluster.stderr(0, "run")[-3000:]
    assert last_line.startswith("cifar-edge train: error: the training cluster lost a worker"), last_line
    assert "/job:worker/replica:0/task:1" in last_line and "--resume" in last_line
    done = json.loads(state.read_text())["epochs_done"]
    assert done == 1, "the worker should have been killed during the second of two epochs"
    before = json.loads((cluster.out(0) / "history.json").read_text())
    leftover = worker_folders(cluster, 1)
    assert len(leftover) == 1  # SIGKILL leaves the killed worker no chance to remove its temporary folder

    cluster.start("--resume", tag="resume")
    codes = [cluster.wait(i, RUN_TIMEOUT_S) for i in range(2)]
    assert codes == [0, 0], cluster.stderr(0, "resume")[-2000:] + cluster.stderr(1, "resume")[-2000:]
    history = json.loads((cluster.out(0) / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    assert history[:done] == before  # the finished epochs are kept, the others trained again
    chief, worker = cluster.output(0, "resume"), cluster.output(1, "resume")
    assert chief["epochs"] == worker["epochs"] == 2
    assert worker["final_weights_sha256"] == chief["final_weights_sha256"]
    assert not cluster.out(1).exists() and worker_folders(cluster, 1) == leftover  # the resumed run's is removed
    print(f"lost worker detected after {waited:.1f} s; resumed from epoch {done + 1}")


@pytest.mark.slow
def test_workers_started_with_different_options_all_refuse(cluster, cifar10_dir):
    cluster.start(*TINY, "--data", str(cifar10_dir), tag="run", extra={0: ["--epochs", "2"], 1: ["--epochs", "3"]})
    codes = [cluster.wait(i, RUN_TIMEOUT_S) for i in range(2)]
    assert codes == [2, 2]
    for index, here, chief in ((0, 2, 2), (1, 3, 2)):
        line = cluster.stderr(index, "run").strip().splitlines()[-1]
        assert line.startswith("cifar-edge train: error: the workers were not started for the same run"), line
        if index == 1:
            assert f"here epochs={here} against the chief's epochs={chief}" in line
    assert not cluster.out(0).exists() and not cluster.out(1).exists()  # refused before anything was written
