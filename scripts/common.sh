# Sourced by main.sh and test.sh: set up .venv (see bootstrap.sh) and default CIFAR10_DIR.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
# ../shared/datasets/cifar10 beside the repository is this team's data location; users set
# CIFAR10_DIR, pass --data, or let the commands use the cache or download.
if [ -z "${CIFAR10_DIR:-}" ] && [ -d ../shared/datasets/cifar10 ]; then
  CIFAR10_DIR=$(cd ../shared/datasets/cifar10 && pwd)
  export CIFAR10_DIR
fi
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
