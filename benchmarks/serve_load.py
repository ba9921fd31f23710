"""Load test of ``cifar-edge serve`` on 127.0.0.1: concurrent clients posting real pictures to ``/v1/classify``.

    python -m benchmarks.serve_load [--clients 8] [--requests 500] [--model edge] [--source VIDEO] [--json]

Starts the server in its own process (``python -m cifar_edge.cli serve --port 0``), then ``--clients`` threads,
each on one keep-alive connection, post ``--requests`` JPEG pictures each (CIFAR-10 test images from
``$CIFAR10_DIR`` or ``--data``, cycled) with ``Content-Type: image/jpeg``. Prints the error count (any
answer but 200 with categories, or a failed connection), latency percentiles as the clients saw them,
throughput, the server's peak RSS (its VmHWM) and the CPU name. Only the standard library talks HTTP.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .host import cpu_name

START_TIMEOUT_S = 120.0
URL_LINE = re.compile(r"cifar-edge serve: (http://\S+/) ")


@dataclass
class ServerProcess:
    """A running ``cifar-edge serve``: its URL, process and every stderr line so far."""

    url: str
    process: subprocess.Popen
    stderr: list[str] = field(default_factory=list)

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", int(parts.port or 80)

    def peak_rss_mb(self) -> float | None:
        """The server's peak resident memory (VmHWM) in MiB; None where /proc is missing."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


@contextmanager
def start_server(args: Sequence[str], env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """Run ``cifar-edge serve --port 0 ARGS`` until the block ends (then SIGTERM); raises ``RuntimeError`` when it
    does not start (its stderr in the message)."""
    command = [sys.executable, "-m", "cifar_edge.cli", "serve", "--port", "0", *args]
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    lines: list[str] = []
    found = threading.Event()
    box: dict[str, str] = {}

    def drain() -> None:  # keeps the pipe from filling; notes the URL line
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            match = URL_LINE.search(line)
            if match and not found.is_set():
                box["url"] = match.group(1)
                found.set()
        found.set()

    threading.Thread(target=drain, name="serve-stderr", daemon=True).start()
    try:
        if not found.wait(START_TIMEOUT_S) or "url" not in box:
            raise RuntimeError(f"cifar-edge serve did not start: {' | '.join(lines[-10:]) or 'no output'}")
        yield ServerProcess(box["url"], proc, lines)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def load_pictures(data: str | os.PathLike[str], count: int) -> list[bytes]:
    """``count`` JPEG files' bytes from ``data/test/<class>/``, taken round-robin over the classes."""
    classes = sorted(p for p in (Path(data) / "test").iterdir() if p.is_dir())
    per_class = [sorted(c.glob("*.jpg"))[: count // len(classes) + 1] for c in classes]
    files = [f for group in zip(*per_class) for f in group][:count]
    if not files:
        raise FileNotFoundError(f"no JPEG test images under {data}/test/<class>/")
    return [f.read_bytes() for f in files]


def run_load(host: str, port: int, pictures: Sequence[bytes], clients: int, requests: int,
             token: str | None = None) -> dict[str, Any]:
    """``clients`` threads x ``requests`` POSTs each; latencies (ms) as the clients saw them and the errors."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[list[str]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(k: int) -> None:
        headers = {"Content-Type": "image/jpeg"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection(host, port, timeout=60)
        barrier.wait()
        for i in range(requests):
            body = pictures[(k * requests + i) % len(pictures)]
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/v1/classify", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                ok = response.status == 200 and json.loads(payload).get("categories")
                if not ok:
                    errors[k].append(f"HTTP {response.status}: {payload[:200]!r}")
            except (OSError, http.client.HTTPException, ValueError) as exc:
                errors[k].append(f"{type(exc).__name__}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
            latencies[k].append(1e3 * (time.perf_counter() - t0))
        conn.close()

    threads = [threading.Thread(target=client, args=(k,), name=f"load-{k}") for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    lat = np.array([x for per in latencies for x in per])
    all_errors = [e for per in errors for e in per]
    return {
        "clients": clients, "requests_per_client": requests, "requests": int(lat.size), "errors": len(all_errors),
        "error_examples": all_errors[:5], "wall_s": round(wall, 3),
        "throughput_rps": round(lat.size / wall, 1) if wall > 0 else None,
        "latency_ms": {q: round(float(np.percentile(lat, p)), 3) for q, p in (("p50", 50), ("p90", 90), ("p99", 99))}
        | {"max": round(float(lat.max()), 3)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--requests", type=int, default=500, help="requests per client (default 500)")
    p.add_argument("--model", default="default", help="bundled model name or file (default: default)")
    p.add_argument("--threads", type=int, help="runtime threads of the server's model")
    p.add_argument("--source", help="also run the live stream from this source while loading the API")
    p.add_argument("--pictures", type=int, default=200, help="distinct test pictures cycled (default 200)")
    p.add_argument("--data", default=os.environ.get("CIFAR10_DIR"), help="CIFAR-10 image folders (default $CIFAR10_DIR)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if not args.data:
        p.error("give --data or set CIFAR10_DIR (the pictures to post)")
    if args.clients < 1 or args.requests < 1:
        p.error("--clients and --requests must be >= 1")
    pictures = load_pictures(args.data, args.pictures)
    server_args = ["--model", args.model]
    if args.threads:
        server_args += ["--threads", str(args.threads)]
    if args.source:
        server_args += ["--source", args.source]
    with start_server(server_args) as server:
        host, port = server.host_port
        result = run_load(host, port, pictures, args.clients, args.requests)
        result["server_peak_rss_mb"] = server.peak_rss_mb()
    result |= {"model": args.model, "stream": args.source, "cpu": cpu_name(), "cpu_count": os.cpu_count(),
               "picture_bytes_mean": round(sum(map(len, pictures)) / len(pictures))}
    if args.json:
        print(json.dumps(result))
    else:
        lat = result["latency_ms"]
        rss = result["server_peak_rss_mb"]
        print(f"cifar-edge serve load test: {result['clients']} clients x {result['requests_per_client']} requests "
              f"= {result['requests']} POST /v1/classify (model {args.model}, ~{result['picture_bytes_mean']} B JPEG)"
              f"{', stream ' + args.source if args.source else ''}")
        print(f"errors          {result['errors']}" + (f"  e.g. {result['error_examples'][0]}" if result['errors'] else ""))
        print(f"latency         p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  max {lat['max']:.2f} ms")
        print(f"throughput      {result['throughput_rps']} requests/s over {result['wall_s']} s")
        print(f"server peak RSS {'unknown' if rss is None else f'{rss:.1f} MiB'}")
        print(f"CPU             {result['cpu']} ({result['cpu_count']} logical CPUs)")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
