"""``python -m cifar_edge.cli`` runs the ``cifar-edge`` command line."""

from .main import run

run()
