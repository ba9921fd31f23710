#!/usr/bin/env bash
# Set up (see bootstrap.sh) and run the whole test suite. Extra arguments go to pytest.
# Tests read CIFAR-10 from $CIFAR10_DIR (default: ../shared/datasets/cifar10 beside the repository).
set -euo pipefail
source "$(dirname "$0")/common.sh"
exec .venv/bin/python -m pytest "$@"
