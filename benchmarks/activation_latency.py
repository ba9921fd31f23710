"""int8 LiteRT latency of the airbench-shaped nets with ReLU against GELU (issue 12's choice).

    python -m benchmarks.activation_latency [--runs 300] [--threads 1]

Builds each net with random weights (latency does not depend on the values), converts it to
full-integer TFLite calibrated on random images, and times batch-1 ``invoke`` of the two files
interleaved in one process, so the ratio holds whatever else the machine is doing. Also prints
each file's ops and how many XNNPACK partitions the graph splits into (a GELU is not delegated
in int8: every one splits the graph). Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time

import numpy as np

from .host import cpu_name

VARIANTS = {  # label -> (widths, activation)
    "airbench94 relu": ((64, 256, 256), "relu"),
    "airbench94 gelu": ((64, 256, 256), "gelu"),
}


def int8_file(widths: tuple[int, int, int], activation: str) -> bytes:
    from cifar_edge.convert import export
    from cifar_edge.train.airbench import build_airbench

    model = build_airbench(widths=widths, activation=activation)
    calibration = np.random.default_rng(0).random((32, 32, 32, 3), dtype=np.float32)
    return export.tflite_int8(model, calibration)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # a script's own process: before TensorFlow loads
    from ai_edge_litert.interpreter import Interpreter

    interpreters, op_counts = {}, {}
    for label, (widths, activation) in VARIANTS.items():
        it = Interpreter(model_content=int8_file(widths, activation), num_threads=args.threads)
        it.allocate_tensors()
        ops = collections.Counter(op["op_name"] for op in it._get_ops_details())
        op_counts[label] = ops
        interpreters[label] = it
    x = np.zeros((1, 32, 32, 3), np.int8)
    times: dict[str, list[float]] = {label: [] for label in interpreters}
    for _ in range(args.runs):
        for label, it in interpreters.items():
            it.set_tensor(it.get_input_details()[0]["index"], x)
            start = time.perf_counter()
            it.invoke()
            times[label].append((time.perf_counter() - start) * 1000)
    print(f"CPU: {cpu_name()}, {args.threads} thread(s), {args.runs} runs each, interleaved")
    base = statistics.median(times["airbench94 relu"])
    for label, values in times.items():
        p50 = statistics.median(values)
        ops = op_counts[label]
        listing = ", ".join(f"{k} {v}" for k, v in sorted(ops.items()) if k != "DELEGATE")
        print(f"{label:<18} p50 {p50:6.3f} ms (x{p50 / base:.2f}), XNNPACK partitions {ops.get('DELEGATE', 0)}; ops: {listing}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
