"""Training on several devices or machines with TensorFlow's own engine, ``tf.distribute``.

``--distribute mirrored`` uses :class:`tf.distribute.MirroredStrategy` (every local GPU, or the
``--devices`` listed); ``--distribute multiworker`` uses
:class:`tf.distribute.MultiWorkerMirroredStrategy` across the machines ``TF_CONFIG`` names. Both
are synchronous data parallelism: every replica holds the whole model, gradients are summed by
all-reduce each step and every replica applies the same update.

- **Batch and learning rate.** ``--batch-size`` is the *global* batch: each of the ``R`` replicas
  gets ``batch / R`` images per step (it must divide evenly) and the loss is the mean over the
  global batch. The learning rate therefore belongs to the global batch and is *not* rescaled
  with the number of replicas: a run on 4 GPUs with ``--batch-size 512`` follows the same schedule
  as one device with ``--batch-size 512``. To keep each replica's batch as it was on one device,
  multiply ``--batch-size`` by ``R``; the recipe's learning rate then scales linearly with it
  unless ``--lr`` is given (:func:`cifar_edge.train.recipes.resolve`).
- **Sharding.** The images are decoded into memory on every worker, so there are no files to
  shard (``AutoShardPolicy.FILE`` fails and ``AUTO`` falls back to ``DATA`` with a warning) and
  ``OFF`` would train every worker on the same images. :data:`AUTO_SHARD_POLICY` is therefore
  ``DATA``: every worker runs the same seeded pipeline (same shuffle, same per-image augmentation
  seeds) and keeps its own slice of each global batch. The price is that each worker augments the
  whole global batch and drops ``(workers - 1) / workers`` of it, cheap next to the training step.
- **Roles.** Every worker runs the same code (collectives must match), but only the chief writes
  into ``--out``; the others write into a temporary folder removed when the run ends.
- **Failures.** TensorFlow's coordination service notices a worker that stops sending heartbeats
  (about 10 s) and aborts the collectives on the others, which end with
  :class:`~cifar_edge.train.errors.DistributedTrainingError`; ``--resume`` on every worker continues from
  the chief's last finished epoch (:func:`share_run_files` sends its files to the other workers).

Two Keras 3 caveats are handled here: its ``fit`` reduces whole ``(images, labels)`` batches and
scalar metrics with ``axis=0`` through ``Strategy.reduce``, which the multi-worker strategy rejects
(keras-team/keras#20585, :class:`_KerasFitReduce`); and Keras 3 keeps each
replica's BatchNorm moving statistics apart (aggregation ``"none"``, where tf.keras 2 averaged them
on read), so :class:`AverageMovingStatistics` sets them to their mean across replicas before each
validation and checkpoint, keeping every worker's weights identical.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from cifar_edge.cli.atomic import atomic_open
from .errors import DistributedTrainingError

from .tf_config import ClusterConfig

DISTRIBUTE_CHOICES = ("none", "mirrored", "multiworker")
#: How ``tf.data`` splits the input between workers (see the module docstring for why ``DATA``).
AUTO_SHARD_POLICY = tf.data.experimental.AutoShardPolicy.DATA
#: TensorFlow errors a collective raises when a peer is gone or the collectives were aborted.
_LOST_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                     tf.errors.CancelledError)


@dataclass(frozen=True)
class Distribution:
    """A strategy and this process's place in it."""

    strategy: tf.distribute.Strategy
    kind: str = "none"
    workers: int = 1
    task_index: int = 0
    is_chief: bool = True

    @property
    def replicas(self) -> int:
        """Replicas in sync across the whole cluster (devices x workers)."""
        return int(self.strategy.num_replicas_in_sync)

    def describe(self, global_batch: int) -> dict[str, Any]:
        """What the run records about its distribution (state.json and summary.json)."""
        return {"kind": self.kind, "workers": self.workers, "replicas": self.replicas, "global_batch": global_batch,
                "per_replica_batch": global_batch // self.replicas,
                "auto_shard_policy": AUTO_SHARD_POLICY.name if self.workers > 1 else None}


def local_distribution() -> Distribution:
    """No distribution: TensorFlow's default strategy (one device), this process the chief."""
    return Distribution(tf.distribute.get_strategy())


class _KerasFitReduce:
    """``Strategy.reduce`` as Keras 3's ``fit`` and ``evaluate`` call it (keras-team/keras#20585).

    Keras reduces the first ``(images, labels)`` batch in one nested call, only to learn its
    structure, shapes and dtypes for building the model: a collective reduce of it fails under
    the multi-worker strategy and whenever the batch splits unevenly (a small validation set), so
    a nested value gives the first local replica's part. Keras also reduces each scalar metric
    with ``axis=0``, which the multi-worker strategy rejects: a scalar is reduced without an axis.
    """

    def reduce(self, reduce_op, value, axis):
        if isinstance(value, (tuple, list, dict)):
            return tf.nest.map_structure(lambda leaf: self.experimental_local_results(leaf)[0], value)
        rank = self.experimental_local_results(value)[0].shape.rank
        return super().reduce(reduce_op, value, axis if rank else None)


class _MirroredStrategy(_KerasFitReduce, tf.distribute.MirroredStrategy):
    """:class:`tf.distribute.MirroredStrategy` with the reduce Keras 3 needs (:class:`_KerasFitReduce`)."""


class _MultiWorkerMirroredStrategy(_KerasFitReduce, tf.distribute.MultiWorkerMirroredStrategy):
    """:class:`tf.distribute.MultiWorkerMirroredStrategy` with the reduce Keras 3 needs (:class:`_KerasFitReduce`)."""


def make_distribution(kind: str, devices: Sequence[str] | None = None,
                      cluster: ClusterConfig | None = None) -> Distribution:
    """The strategy for ``--distribute kind``.

    ``devices`` (``mirrored`` only) lists local devices such as ``GPU:0``; by default every GPU (or
    the CPU). ``cluster`` (``multiworker`` only) is the parsed ``TF_CONFIG``. Creating a
    multi-worker strategy starts this process's gRPC server on its ``TF_CONFIG`` port and waits for
    every worker to start: a process-wide step that belongs to the command, done once per process.

    Raises :class:`DistributedTrainingError` for an unknown kind, an unknown device, devices given
    to another kind, or ``multiworker`` without a cluster.
    """
    if kind not in DISTRIBUTE_CHOICES:
        raise DistributedTrainingError(f"unknown --distribute {kind!r}; choose one of: {', '.join(DISTRIBUTE_CHOICES)}")
    if devices and kind != "mirrored":
        raise DistributedTrainingError("--devices applies to --distribute mirrored only "
                                       "(each multi-worker task uses every GPU of its machine)")
    if kind == "none":
        return local_distribution()
    if kind == "mirrored":
        return Distribution(_MirroredStrategy(devices=_check_devices(devices) if devices else None),
                            kind="mirrored")
    if cluster is None:
        raise DistributedTrainingError("--distribute multiworker needs the cluster's TF_CONFIG")
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster.cluster), task_type=cluster.task_type, task_id=cluster.task_index,
        rpc_layer="grpc", num_accelerators={"GPU": len(tf.config.list_physical_devices("GPU"))},
    )
    strategy = _MultiWorkerMirroredStrategy(cluster_resolver=resolver)
    return Distribution(strategy, kind="multiworker", workers=cluster.workers, task_index=cluster.task_index,
                        is_chief=cluster.is_chief)


def _check_devices(devices: Sequence[str]) -> list[str]:
    """Canonical names of ``devices``; raise :class:`DistributedTrainingError` for one TensorFlow does not have."""
    available = {tf.DeviceSpec.from_string(d.name).to_string(): d.name for d in tf.config.list_logical_devices()}
    names = []
    for device in devices:
        spec = tf.DeviceSpec.from_string(device if device.startswith("/") else f"/device:{device}")
        canonical = tf.DeviceSpec(device_type=spec.device_type, device_index=spec.device_index).to_string()
        if canonical not in available:
            raise DistributedTrainingError(
                f"--devices: no device {device!r} here; TensorFlow sees {', '.join(sorted(available)) or 'none'}"
            )
        names.append(available[canonical])
    if len(set(names)) != len(names):
        raise DistributedTrainingError(f"--devices lists a device twice: {', '.join(devices)}")
    return names


def check_batch_split(global_batch: int, distribution: Distribution) -> None:
    """Raise :class:`DistributedTrainingError` unless ``global_batch`` splits evenly across the replicas."""
    if global_batch % distribution.replicas:
        raise DistributedTrainingError(
            f"--batch-size {global_batch} does not split evenly across {distribution.replicas} replicas; "
            f"use a multiple of {distribution.replicas}"
        )


def distribute_input(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` (batched with the global batch) set to shard between workers with :data:`AUTO_SHARD_POLICY`."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = AUTO_SHARD_POLICY
    return dataset.with_options(options)


def fit_input(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """``dataset`` (one epoch of batches, reshuffled on each iteration) ready for ``Model.fit``:
    sharded by :func:`distribute_input`, after the same first read with or without a strategy.

    Under a strategy, Keras 3's ``fit`` first opens an iterator of its own and takes one batch to
    build the model; that iterator uses up the first of the seeded shuffle orders, so epoch ``k``
    trains on order ``k + 1``. Without a strategy Keras does not, so one batch is read here from a
    first iterator when no strategy is in scope: a run's data order (and its first-epoch loss, as a
    test holds) is then the same whatever ``--distribute``. It costs one batch of augmentation.
    """
    if not tf.distribute.has_strategy():
        next(iter(dataset))
    return distribute_input(dataset)


@contextlib.contextmanager
def run_folder(distribution: Distribution, out: str | Path) -> Iterator[Path]:
    """The folder this process writes its run into: ``out`` on the chief, a temporary folder
    (removed on exit, whatever happens) on every other worker."""
    if distribution.is_chief:
        yield Path(out)
        return
    tmp = Path(tempfile.mkdtemp(prefix=f"cifar-edge-worker{distribution.task_index}-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _replica_sum(strategy: tf.distribute.Strategy, chief_only: bool):
    """A function all-reducing a 1-D int64 array (SUM) across every replica of the cluster; with
    ``chief_only`` only global replica 0 (the chief's first device) contributes, so the sum is the
    chief's value: a broadcast."""

    def step(value):
        context = tf.distribute.get_replica_context()
        value = tf.identity(value)  # this replica's own tensor (all_reduce rejects the shared argument)
        if chief_only:
            value = tf.where(tf.equal(context.replica_id_in_sync_group, 0), value, tf.zeros_like(value))
        return context.all_reduce(tf.distribute.ReduceOp.SUM, value)

    @tf.function(reduce_retracing=True)
    def replica_sum(value):
        return strategy.run(step, args=(value,))

    return lambda array: strategy.experimental_local_results(replica_sum(tf.constant(array)))[0].numpy()


def broadcast_from_chief(distribution: Distribution, data: bytes | None) -> bytes | None:
    """The chief's ``data`` (``None``: nothing) on every worker; the others' argument is ignored.

    Every worker must call it at the same point (it is a collective).
    """
    if distribution.workers == 1:
        return data
    chief, chief_sum = distribution.is_chief, _replica_sum(distribution.strategy, True)
    size = np.array([(len(data) + 1 if data is not None else 0) if chief else 0], np.int64)
    n = int(chief_sum(size)[0]) - 1
    if n < 0:
        return None
    words = np.zeros(max(-(-n // 8), 1), np.int64)  # 8 bytes per int64 word: exact, whatever the bytes
    if chief:
        words.view(np.uint8)[:n] = np.frombuffer(data, np.uint8)
    return chief_sum(words).view(np.uint8)[:n].tobytes()


def check_same_run(distribution: Distribution, run: dict[str, Any]) -> None:
    """Raise :class:`DistributedTrainingError` on every worker unless each was started for the
    chief's run: ``run`` describes it (the resolved options, the image counts), without what may
    differ between machines (paths). Every worker must call it at the same point (collectives).

    Workers given different options would otherwise train different schedules, or wait for each
    other forever.
    """
    if distribution.workers == 1:
        return
    mine = json.loads(json.dumps(run, sort_keys=True, default=str))
    chief = json.loads(broadcast_from_chief(distribution, json.dumps(mine, sort_keys=True).encode()) or b"{}")
    differ = sorted(key for key in chief.keys() | mine.keys() if chief.get(key) != mine.get(key))
    if _replica_sum(distribution.strategy, False)(np.array([len(differ)], np.int64))[0]:
        here = f"; here {', '.join(f'{k}={mine.get(k)!r}' for k in differ)} against the chief's " \
               f"{', '.join(f'{k}={chief.get(k)!r}' for k in differ)}" if differ else ""
        raise DistributedTrainingError(
            f"the workers were not started for the same run{here}: start every worker with the same options "
            "and data"
        )


def share_run_files(distribution: Distribution, run_dir: Path, names: Iterable[str]) -> None:
    """Copy the chief's ``names`` in its ``run_dir`` into every other worker's ``run_dir`` (a file the
    chief lacks stays absent), so ``--resume`` continues on workers whose temporary folder is gone.
    Does nothing on a single worker."""
    if distribution.workers == 1:
        return
    for name in names:
        path = run_dir / name
        data = path.read_bytes() if distribution.is_chief and path.is_file() else None
        received = broadcast_from_chief(distribution, data)
        if not distribution.is_chief and received is not None:
            with atomic_open(path, "wb") as fh:
                fh.write(received)


class AverageMovingStatistics(keras.callbacks.Callback):
    """Before each validation (so before each checkpoint), set every BatchNorm moving mean and
    variance to its mean over all replicas: Keras 3 updates each replica's copy from its own slice
    of the batch only, so without this the workers' saved weights would differ."""

    def __init__(self, strategy: tf.distribute.Strategy) -> None:
        super().__init__()
        self.strategy = strategy
        self._average = None

    def on_train_begin(self, logs=None) -> None:
        variables = [w for w in self.model.weights if w.path.endswith(("moving_mean", "moving_variance"))]

        def step():
            context = tf.distribute.get_replica_context()
            return context.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in variables])

        @tf.function
        def average():
            means = self.strategy.run(step)
            for variable, mean in zip(variables, means):
                variable.assign(self.strategy.experimental_local_results(mean)[0])

        self._average = average if variables else None

    def on_test_begin(self, logs=None) -> None:
        if self._average is not None:
            self._average()


@contextlib.contextmanager
def lost_worker_errors(distribution: Distribution, epochs_done: Any = None) -> Iterator[None]:
    """Turn the error a collective raises when a peer is gone into :class:`DistributedTrainingError`.

    ``epochs_done`` is a callable giving the finished epochs to name in the message.
    """
    try:
        yield
    except tf.errors.OpError as exc:
        aborted = isinstance(exc, _LOST_PEER_ERRORS) or "Collective ops is aborted" in (exc.message or "")
        if distribution.workers == 1 or not aborted:
            raise
        tasks = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", exc.message or "")))
        who = f"{', '.join(tasks)} stopped responding" if tasks else "a worker stopped responding"
        done = f" after {epochs_done()} finished epoch(s)" if callable(epochs_done) else ""
        raise DistributedTrainingError(
            f"the training cluster lost a worker ({who}; {type(exc).__name__}){done}; "
            "start every worker again with --resume to continue from the chief's last finished epoch"
        ) from exc
