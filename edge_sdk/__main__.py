"""``python -m edge_sdk`` runs the ``cifar-edge`` command line."""

from .cli import run

run()
