"""What every benchmark reports about the machine and the processes it measures."""

from __future__ import annotations

import platform
from pathlib import Path

#: Source of ``rss_mb()`` (resident memory in MB, from /proc/self/status) for the probes that
#: benchmarks run in fresh interpreters (``python -c``).
RSS_MB_SOURCE = r'''
def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
'''


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
