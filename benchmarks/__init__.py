"""Benchmark suite: speed, size, memory and accuracy of every shipped model per format and runtime.

Run ``python -m benchmarks`` (see :mod:`benchmarks.suite`); results go to
``benchmarks/RESULTS.md`` and ``benchmarks/results.json``.
"""
