"""``cifar_edge.cli``: the ``cifar-edge`` command and what the tools share around it.

The command (:mod:`cifar_edge.cli.main`, entry point ``cifar-edge`` and ``python -m cifar_edge.cli``),
its argument types (:mod:`~cifar_edge.cli.argtypes`), terminal-safe text and strict JSON
(:mod:`~cifar_edge.cli.terminal`), progress bars (:mod:`~cifar_edge.cli.progress`), atomic writes
(:mod:`~cifar_edge.cli.atomic`), the export-format table (:mod:`~cifar_edge.cli.formats`) and the errors
only the tools raise (:mod:`~cifar_edge.cli.errors`). The SDK's own subcommands (``predict``,
``benchmark``, ``models``) live here too and import nothing heavier than :mod:`edge_sdk`, so they run on
an SDK-only install; ``edge_sdk`` imports nothing from ``cifar_edge``.
"""
