"""The standard ``TF_CONFIG`` of a multi-worker run, parsed and checked without TensorFlow.

``TF_CONFIG`` is a JSON object naming every task of the cluster and the task this process is::

    {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
     "task": {"type": "worker", "index": 0}}

The command reads it from the environment (the library never sets it) and parses it before the
slow TensorFlow import, so a malformed value fails in a second with a message naming the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .errors import DistributedTrainingError

TF_CONFIG_ENV = "TF_CONFIG"
#: Jobs that train (synchronous data parallelism); ``ps`` and ``evaluator`` jobs are not supported.
TRAINING_JOBS = ("chief", "worker")


@dataclass(frozen=True)
class ClusterConfig:
    """Every task's ``host:port`` by job, and which task this process is."""

    cluster: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def workers(self) -> int:
        """Number of training processes (the chief included)."""
        return sum(len(self.cluster.get(job, [])) for job in TRAINING_JOBS)

    @property
    def is_chief(self) -> bool:
        """The ``chief`` task, or worker 0 when the cluster has no ``chief`` job (TensorFlow's rule)."""
        if "chief" in self.cluster:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0


def parse_tf_config(text: str | None) -> ClusterConfig:
    """Parse a ``TF_CONFIG`` value.

    Raises :class:`DistributedTrainingError` when it is missing or empty, not JSON, has no
    ``worker`` addresses, names a job other than ``chief``/``worker``, or its ``task`` is not one
    of the cluster's tasks.
    """
    if not text or not text.strip():
        raise DistributedTrainingError(
            f"--distribute multiworker needs the {TF_CONFIG_ENV} environment variable: a JSON object such as "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DistributedTrainingError(f"{TF_CONFIG_ENV} is not valid JSON: {exc}") from exc
    if not (isinstance(data, dict) and isinstance(data.get("cluster"), dict) and isinstance(data.get("task"), dict)):
        raise DistributedTrainingError(f'{TF_CONFIG_ENV} must be a JSON object with "cluster" and "task" objects')
    cluster: dict[str, list[str]] = {}
    for job, addresses in data["cluster"].items():
        if job not in TRAINING_JOBS:
            raise DistributedTrainingError(
                f"{TF_CONFIG_ENV} names a {job!r} job; only {' and '.join(TRAINING_JOBS)} tasks are supported "
                "(synchronous training: every task trains)"
            )
        if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses):
            raise DistributedTrainingError(f'{TF_CONFIG_ENV}: cluster "{job}" must be a list of "host:port" strings')
        cluster[job] = list(addresses)
    if not cluster.get("worker") and not cluster.get("chief"):
        raise DistributedTrainingError(f'{TF_CONFIG_ENV}: the cluster lists no "worker" addresses')
    if len(cluster.get("chief", [])) > 1:
        raise DistributedTrainingError(f'{TF_CONFIG_ENV}: a cluster has at most one "chief"')
    task_type, task_index = data["task"].get("type"), data["task"].get("index", 0)
    if task_type not in cluster or not isinstance(task_index, int) or not 0 <= task_index < len(cluster[task_type]):
        raise DistributedTrainingError(
            f'{TF_CONFIG_ENV}: "task" {data["task"]} is not one of the cluster\'s tasks '
            f"({', '.join(f'{job} 0-{len(a) - 1}' for job, a in cluster.items())})"
        )
    return ClusterConfig(cluster, task_type, task_index)
