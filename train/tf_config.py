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
#: a longer TF_CONFIG is refused unread (a 1,000-worker cluster takes about 25,000 characters)
MAX_TF_CONFIG_CHARS = 1 << 20
#: tasks per job at most
MAX_TASKS = 10_000
EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


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

    Raises :class:`DistributedTrainingError` naming the field when it is missing or empty, too large or
    too deeply nested, not JSON, has no ``worker`` addresses, names a job other than ``chief``/``worker``,
    gives an address that is not ``host:port`` (a port from 1 to 65535), or its ``task`` (a string
    ``type`` and an integer ``index``) is not one of the cluster's tasks.
    """
    if not text or not text.strip():
        raise DistributedTrainingError(
            f"--distribute multiworker needs the {TF_CONFIG_ENV} environment variable: a JSON object such as "
            f"{EXAMPLE}"
        )
    if len(text) > MAX_TF_CONFIG_CHARS:
        raise DistributedTrainingError(f"{TF_CONFIG_ENV} is {len(text):,} characters long, over the "
                                       f"{MAX_TF_CONFIG_CHARS:,} allowed; it should look like {EXAMPLE}")
    try:
        data = json.loads(text)
    except RecursionError:
        raise DistributedTrainingError(f"{TF_CONFIG_ENV} is nested too deeply; it should look like {EXAMPLE}") from None
    except json.JSONDecodeError as exc:
        raise DistributedTrainingError(f"{TF_CONFIG_ENV} is not valid JSON: {exc}") from exc
    if not (isinstance(data, dict) and isinstance(data.get("cluster"), dict) and isinstance(data.get("task"), dict)):
        raise DistributedTrainingError(f'{TF_CONFIG_ENV} must be a JSON object with "cluster" and "task" objects, '
                                       f"such as {EXAMPLE}")
    cluster: dict[str, list[str]] = {}
    for job, addresses in data["cluster"].items():
        if job not in TRAINING_JOBS:
            raise DistributedTrainingError(
                f"{TF_CONFIG_ENV} names a {job[:80]!r} job; only {' and '.join(TRAINING_JOBS)} tasks are supported "
                "(synchronous training: every task trains)"
            )
        if not isinstance(addresses, list) or len(addresses) > MAX_TASKS:
            raise DistributedTrainingError(f'{TF_CONFIG_ENV}: cluster "{job}" must be a list of at most {MAX_TASKS} '
                                           '"host:port" strings')
        for address in addresses:
            _check_address(address, job)
        cluster[job] = list(addresses)
    if not cluster.get("worker") and not cluster.get("chief"):
        raise DistributedTrainingError(f'{TF_CONFIG_ENV}: the cluster lists no "worker" addresses')
    if len(cluster.get("chief", [])) > 1:
        raise DistributedTrainingError(f'{TF_CONFIG_ENV}: a cluster has at most one "chief"')
    task_type, task_index = data["task"].get("type"), data["task"].get("index", 0)
    if not isinstance(task_type, str):
        raise DistributedTrainingError(f'{TF_CONFIG_ENV}: "task" "type" must be a string ("worker" or "chief"), '
                                       f"got {_show(task_type)}")
    if not isinstance(task_index, int) or isinstance(task_index, bool):
        raise DistributedTrainingError(f'{TF_CONFIG_ENV}: "task" "index" must be an integer, got {_show(task_index)}')
    if task_type not in cluster or not 0 <= task_index < len(cluster[task_type]):
        raise DistributedTrainingError(
            f'{TF_CONFIG_ENV}: "task" {_show(data["task"])} is not one of the cluster\'s tasks '
            f"({', '.join(f'{job} 0-{len(a) - 1}' for job, a in cluster.items())})"
        )
    return ClusterConfig(cluster, task_type, task_index)


def _check_address(address: object, job: str) -> None:
    """Raise :class:`DistributedTrainingError` unless ``address`` is ``"host:port"`` with a port of 1-65535."""
    host, _, port = address.rpartition(":") if isinstance(address, str) else ("", "", "")
    if not (host and port.isascii() and port.isdigit() and 1 <= int(port) <= 65535 and len(address) <= 1024):
        raise DistributedTrainingError(f'{TF_CONFIG_ENV}: cluster "{job}" address {_show(address)} is not '
                                       '"host:port" with a port from 1 to 65535')


def _show(value: object) -> str:
    """``value`` as JSON for a message, cut to 80 characters."""
    text = json.dumps(value) if isinstance(value, (str, int, float, bool, type(None))) else (
        json.dumps(value) if len(repr(value)) < 200 else type(value).__name__)
    return text if len(text) <= 80 else text[:77] + "..."
