#!/usr/bin/env bash
# Set up (see bootstrap.sh) and run the whole test suite. Extra arguments go to pytest.
# Tests read CIFAR-10 from $CIFAR10_DIR (default: ../shared/datasets/cifar10 beside the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ -z "${CIFAR10_DIR:-}" ] && [ -d ../shared/datasets/cifar10 ]; then
  CIFAR10_DIR=$(cd ../shared/datasets/cifar10 && pwd)
  export CIFAR10_DIR
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
exec .venv/bin/python -m pytest "$@"
