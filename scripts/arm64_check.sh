#!/usr/bin/env bash
# Prove the SDK runs on Raspberry Pi OS Bookworm's userland (Debian 12 arm64, Python 3.11) on an
# x86_64 machine, under qemu-user, and that its predictions match this machine's.
#
#   scripts/arm64_check.sh [--data DIR] [--cpu cortex-a72,cortex-a76] [--per-class N]
#                          [--out DIR] [--mirror URL] [--rebuild]
#
# 1. Debian bookworm arm64 (minbase + python3) from the configured Debian mirror: `debootstrap
#    --foreign` (`--download-only` when not root), then every .deb unpacked with `dpkg-deb
#    --fsys-tarfile` (no emulated second stage). Needs qemu-user-static and debootstrap; they
#    are installed with apt-get (the only step that needs root) when missing.
# 2. A Raspberry Pi /proc/cpuinfo for the emulated CPU in ROOTFS/proc (qemu 7.2 otherwise shows
#    the guest the host's Intel cpuinfo, and onnxruntime and LiteRT crash at load).
# 3. aarch64 manylinux wheels of numpy, pillow, ai-edge-litert and onnxruntime (and their
#    dependencies) pinned to the versions in the host venv, installed by the host's pip into SITE.
#    The checkout's edge_sdk and cifar_edge.cli (pure Python; the smoke script reads the export-format
#    table, cifar_edge.cli.formats), the smoke script and the shipped models are copied
#    to a snapshot on every run, which both the host and the arm64 runs use.
# 4. scripts/arm64_smoke.py on the host, then under `qemu-aarch64-static -L ROOTFS` for every
#    --cpu (default: cortex-a72 = Raspberry Pi 4, cortex-a76 = Raspberry Pi 5): --per-class
#    (default 5) seeded test images per class through every model file (resnet8 and default;
#    float32 and int8; TFLite on LiteRT, ONNX on ONNX Runtime), then `compare`: top-1
#    predictions must be identical; the max probability difference is reported.
#
# ROOTFS and SITE are cached under ${ARM64_CACHE:-$HOME/.cache/cifar-edge/arm64}, keyed on the
# package versions. CIFAR-10 comes from --data or $CIFAR10_DIR. Exit status 0 only if every step
# and every comparison passed.
set -euo pipefail

T_START=$(date +%s.%N)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${ARM64_HOST_PYTHON:-$REPO/.venv/bin/python}
CACHE=${ARM64_CACHE:-$HOME/.cache/cifar-edge/arm64}
DATA=${CIFAR10_DIR:-}
CPUS=${QEMU_CPU:-cortex-a72,cortex-a76}
PER_CLASS=${ARM64_PER_CLASS:-5}
OUT=""
MIRROR=${DEBIAN_MIRROR:-}
REBUILD=0
SUITE=bookworm
QEMU_TIMEOUT=${ARM64_QEMU_TIMEOUT:-1800}
PLATFORMS=(manylinux2014_aarch64 manylinux_2_27_aarch64 manylinux_2_28_aarch64)
PACKAGES=(numpy pillow ai-edge-litert onnxruntime)
MODELS=(resnet8 default)

die() { echo "arm64_check: error: $*" >&2; exit 1; }
log() { echo "arm64_check: $*"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
trap 'rc=$?; echo "arm64_check: error: command failed (exit $rc) at line $LINENO: $BASH_COMMAND" >&2; exit $rc' ERR

while [ $# -gt 0 ]; do
  case "$1" in
    --data) [ $# -ge 2 ] || die "--data needs a directory"; DATA=$2; shift 2 ;;
    --data=*) DATA=${1#*=}; shift ;;
    --cpu) [ $# -ge 2 ] || die "--cpu needs a list"; CPUS=$2; shift 2 ;;
    --cpu=*) CPUS=${1#*=}; shift ;;
    --per-class) [ $# -ge 2 ] || die "--per-class needs a number"; PER_CLASS=$2; shift 2 ;;
    --per-class=*) PER_CLASS=${1#*=}; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift 2 ;;
    --out=*) OUT=${1#*=}; shift ;;
    --mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; MIRROR=$2; shift 2 ;;
    --mirror=*) MIRROR=${1#*=}; shift ;;
    --rebuild) REBUILD=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

# ------------------------------------------------------------------ checks
[ -n "$DATA" ] || die "set CIFAR10_DIR or pass --data DIR (the CIFAR-10 image-folder tree with test/<class>/)"
[ -d "$DATA/test" ] || die "no test/ folder in the CIFAR-10 tree '$DATA'"
DATA=$(cd "$DATA" && pwd)
[[ "$PER_CLASS" =~ ^[1-9][0-9]*$ ]] || die "--per-class must be a positive integer, got '$PER_CLASS'"
[ -x "$PY" ] || die "host Python $PY not found (create the venv: scripts/bootstrap.sh, or set ARM64_HOST_PYTHON)"
CPU_LIST=()
for cpu in ${CPUS//,/ }; do
  case "$cpu" in
    cortex-a53|cortex-a72|cortex-a76) CPU_LIST+=("$cpu") ;;
    *) die "unsupported CPU '$cpu': choose from cortex-a53 (Pi 3/Zero 2), cortex-a72 (Pi 4), cortex-a76 (Pi 5)" ;;
  esac
done
[ ${#CPU_LIST[@]} -gt 0 ] || die "no CPU given (--cpu cortex-a72,cortex-a76)"

# ------------------------------------------------------------------ step 0: tools
T0=$(date +%s.%N)
missing=()
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them; install them yourself"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}: run 'apt-get install -y qemu-user-static debootstrap' as root"
    SUDO=sudo
  fi
  log "installing ${missing[*]} with apt-get"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-user-static debootstrap \
    || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-user-static debootstrap; } \
    || die "apt-get could not install qemu-user-static and debootstrap"
fi
DEBOOTSTRAP=$(command -v debootstrap || echo /usr/sbin/debootstrap)
for tool in dpkg-deb tar flock timeout; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required"
done
QEMU_VERSION=$(qemu-aarch64-static --version | head -n1)

if [ -z "$MIRROR" ]; then
  # The first Debian mirror apt uses for $SUITE (deb822 .sources or one-line .list files).
  MIRROR=$(awk -v suite="$SUITE" '
    /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) { print uri; exit } }
    /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($(i + 1) == suite) { print $i; exit } } }
  ' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

# ------------------------------------------------------------------ cache keys
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
case "$CACHE/" in "$REPO"/*) die "the cache $CACHE lies inside the repository; set ARM64_CACHE elsewhere" ;; esac
exec 9>"$CACHE/.lock"
flock -w 3600 9 || die "another arm64_check holds $CACHE/.lock"

# Pins: the four packages and their dependency closure, at the host venv's versions.
PINS=$("$PY" - "${PACKAGES[@]}" <<'EOF'
import sys
from importlib import metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

todo, seen = list(sys.argv[1:]), {}
while todo:
    name = canonicalize_name(todo.pop())
    if name in seen:
        continue
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        sys.exit(f"the host venv lacks {name}: install the SDK with its litert and onnx extras")
    seen[name] = dist.version
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            todo.append(req.name)
print("\n".join(f"{n}=={v}" for n, v in sorted(seen.items())))
EOF
) || die "could not read the package versions from the host venv ($PY)"
SITE_KEY=$(printf '%s\n' "cp311" "${PLATFORMS[@]}" "$PINS" | sha256sum | cut -c1-12)
SITE=$CACHE/site-cp311-$SITE_KEY
# The rootfs is keyed on the python3.11 version apt knows for this suite (the mirror's package).
PY_DEB=$(apt-cache show --no-all-versions python3.11 2>/dev/null | awk '/^Version:/ { print $2; exit }' || true)
ROOTFS_KEY=$(printf '%s' "$SUITE-minbase-python3-${PY_DEB:-unknown}-$MIRROR" | sha256sum | cut -c1-8)
ROOTFS=$CACHE/rootfs-$SUITE-arm64-python3.11_${PY_DEB:-unknown}-$ROOTFS_KEY
LOGS=$CACHE/logs
OUT=${OUT:-$CACHE/results}
mkdir -p "$LOGS" "$OUT"
OUT=$(cd "$OUT" && pwd)
if [ "$REBUILD" = 1 ]; then rm -rf "$ROOTFS" "$SITE"; fi
T_TOOLS=$(elapsed "$T0")

# ------------------------------------------------------------------ step 1: rootfs
T0=$(date +%s.%N)
ROOTFS_STATE="cached"
if [ ! -f "$ROOTFS/.complete" ]; then
  ROOTFS_STATE="built"
  tmp="$ROOTFS.tmp"
  rm -rf "$tmp" "$ROOTFS"
  if [ "$(id -u)" -eq 0 ]; then stage=--foreign; else stage=--download-only; fi
  log "debootstrap $stage $SUITE arm64 minbase+python3 from $MIRROR (log: $LOGS/debootstrap.log)"
  "$DEBOOTSTRAP" "$stage" --arch=arm64 --variant=minbase --include=python3 "$SUITE" "$tmp" "$MIRROR" \
      >"$LOGS/debootstrap.log" 2>&1 \
    || { tail -n 20 "$LOGS/debootstrap.log" >&2; die "debootstrap failed (full log: $LOGS/debootstrap.log)"; }
  shopt -s nullglob
  debs=("$tmp"/var/cache/apt/archives/*.deb)
  shopt -u nullglob
  [ ${#debs[@]} -gt 0 ] || die "debootstrap downloaded no packages into $tmp/var/cache/apt/archives"
  log "unpacking ${#debs[@]} .debs with dpkg-deb --fsys-tarfile"
  for deb in "${debs[@]}"; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --keep-directory-symlink --no-same-owner \
      || die "cannot unpack $deb"
  done
  for deb in "${debs[@]}"; do basename "$deb"; done >"$tmp/.debs"
  rm -f "${debs[@]}"
  # --foreign leaves proc -> /proc (the host's): a real folder holds the emulated cpuinfo instead.
  if [ -L "$tmp/proc" ]; then rm "$tmp/proc"; fi
  mkdir -p "$tmp/proc"
  [ -x "$tmp/usr/bin/python3.11" ] || die "no usr/bin/python3.11 in the unpacked rootfs $tmp"
  mv "$tmp" "$ROOTFS"
  touch "$ROOTFS/.complete"
fi
GUEST_PY_DEB=$(sed -n 's/^python3\.11_\([^_]*\)_.*/\1/p' "$ROOTFS/.debs" | head -n1)
T_ROOTFS=$(elapsed "$T0")

# ------------------------------------------------------------------ step 3: site-packages
T0=$(date +%s.%N)
SITE_STATE="cached"
if [ ! -f "$SITE/.complete" ]; then
  SITE_STATE="built"
  tmp="$SITE.tmp"
  rm -rf "$tmp" "$SITE"
  printf '%s\n' "$PINS" >"$LOGS/pins.txt"
  platform_args=()
  for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
  log "pip install aarch64 wheels into $SITE (log: $LOGS/pip.log)"
  "$PY" -m pip install --disable-pip-version-check --no-input --only-binary=:all: \
      --python-version 3.11 --implementation cp --abi cp311 "${platform_args[@]}" \
      --target "$tmp" -c "$LOGS/pins.txt" $(printf '%s\n' "$PINS" | grep -iE "^($(IFS='|'; echo "${PACKAGES[*]}"))==") \
      >"$LOGS/pip.log" 2>&1 \
    || { grep -v "is ignored: it is neither" "$LOGS/pip.log" | tail -n 20 >&2; die "pip could not install the aarch64 wheels (full log: $LOGS/pip.log)"; }
  cp "$LOGS/pins.txt" "$tmp/.pins"
  mv "$tmp" "$SITE"
  touch "$SITE/.complete"
fi
# What is under test, frozen for this run: this checkout's edge_sdk and cifar_edge.cli (pure Python), the smoke
# script and the shipped model files. Host and arm64 runs both use this copy, so an edit to the
# checkout during the run cannot make them compare different code or models.
SNAP=$CACHE/snapshot
rm -rf "$SNAP"
mkdir -p "$SNAP/scripts"
cp -r "$REPO/edge_sdk" "$SNAP/edge_sdk"
mkdir -p "$SNAP/cifar_edge"  # a namespace package, as installed: cifar_edge/cli is the repository's cli/
cp -r "$REPO/cli" "$SNAP/cifar_edge/cli"
find "$SNAP" -name __pycache__ -type d -prune -exec rm -rf {} +
cp "$REPO/scripts/arm64_smoke.py" "$SNAP/scripts/"
for model in "${MODELS[@]}"; do
  mkdir -p "$SNAP/models/$model/export"
  for file in model_float32.tflite model_int8.tflite model_float32.onnx model_int8.onnx; do
    if [ ! -f "$REPO/models/$model/export/$file" ]; then
      case $file in  # models/default commits its int8 files only (.gitignore): its float32 ones are optional
        *int8*) die "shipped model file models/$model/export/$file is missing" ;;
        *) continue ;;
      esac
    fi
    cp "$REPO/models/$model/export/$file" "$SNAP/models/$model/export/"
  done
done
T_SITE=$(elapsed "$T0")

# ------------------------------------------------------------------ step 2: cpuinfo
write_cpuinfo() {  # write_cpuinfo CPU FILE: four cores of the Raspberry Pi with that CPU
  local features variant part revision model hw
  case "$1" in
    cortex-a53) features="fp asimd evtstrm crc32 cpuid"; variant=0x0; part=0xd03; revision=4
                model="Raspberry Pi 3 Model B Rev 1.2"; hw=a02082 ;;
    cortex-a72) features="fp asimd evtstrm crc32 cpuid"; variant=0x0; part=0xd08; revision=3
                model="Raspberry Pi 4 Model B Rev 1.4"; hw=c03114 ;;
    cortex-a76) features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
                variant=0x4; part=0xd0b; revision=1; model="Raspberry Pi 5 Model B Rev 1.0"; hw=c04170 ;;
  esac
  {
    for n in 0 1 2 3; do
      printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\n' "$n" "$features"
      printf 'CPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$variant" "$part" "$revision"
    done
    printf 'Revision\t: %s\nSerial\t\t: 0000000000000000\nModel\t\t: %s\n' "$hw" "$model"
  } >"$2"
}

# ------------------------------------------------------------------ step 4: smoke runs
T0=$(date +%s.%N)
log "host run: $PY scripts/arm64_smoke.py ($PER_CLASS images per class)"
SMOKE_ARGS=(run --data "$DATA" --per-class "$PER_CLASS" --models "$(IFS=,; echo "${MODELS[*]}")")
PYTHONPATH="$SNAP" PYTHONNOUSERSITE=1 OMP_NUM_THREADS=1 "$PY" "$SNAP/scripts/arm64_smoke.py" "${SMOKE_ARGS[@]}" \
    --out "$OUT/x86_64.json" \
  || die "the smoke test failed on the host"
T_HOST=$(elapsed "$T0")

declare -A T_CPU STATUS
failed=0
for cpu in "${CPU_LIST[@]}"; do
  T0=$(date +%s.%N)
  write_cpuinfo "$cpu" "$ROOTFS/proc/cpuinfo"
  log "arm64 run: QEMU_CPU=$cpu qemu-aarch64-static -L ROOTFS python3.11 scripts/arm64_smoke.py"
  rm -f "$OUT/arm64-$cpu.json" "$OUT/compare-$cpu.json"
  if timeout "$QEMU_TIMEOUT" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$HOME" LANG=C.UTF-8 \
      QEMU_CPU="$cpu" PYTHONPATH="$SITE:$SNAP" PYTHONNOUSERSITE=1 OMP_NUM_THREADS=1 \
      qemu-aarch64-static -L "$ROOTFS" "$ROOTFS/usr/bin/python3.11" \
      "$SNAP/scripts/arm64_smoke.py" "${SMOKE_ARGS[@]}" --out "$OUT/arm64-$cpu.json"; then
    if "$PY" "$SNAP/scripts/arm64_smoke.py" compare "$OUT/x86_64.json" "$OUT/arm64-$cpu.json" \
        --json "$OUT/compare-$cpu.json"; then
      STATUS[$cpu]=OK
    else
      STATUS[$cpu]="FAILED (predictions differ)"; failed=1
    fi
  else
    rc=$?
    if [ "$rc" -eq 124 ]; then why="timed out after ${QEMU_TIMEOUT}s"; else why="exit $rc"; fi
    echo "arm64_check: error: the emulated arm64 run on $cpu failed ($why)" >&2
    STATUS[$cpu]="FAILED (emulated run: $why)"; failed=1
  fi
  T_CPU[$cpu]=$(elapsed "$T0")
done

# ------------------------------------------------------------------ summary
echo
echo "== arm64_check summary =="
echo "qemu:      $QEMU_VERSION"
echo "guest:     Debian $SUITE arm64 minbase, python3.11 $GUEST_PY_DEB ($ROOTFS_STATE, ${T_ROOTFS}s) from $MIRROR"
echo "wheels:    $(printf '%s\n' "$PINS" | grep -iE "^($(IFS='|'; echo "${PACKAGES[*]}"))==" | tr '\n' ' ')(aarch64, $SITE_STATE, ${T_SITE}s)"
echo "cache:     $CACHE"
echo "results:   $OUT"
echo "host run:  ${T_HOST}s"
for cpu in "${CPU_LIST[@]}"; do
  echo "$cpu: ${STATUS[$cpu]} (${T_CPU[$cpu]}s)"
  if [ -f "$OUT/compare-$cpu.json" ]; then
    "$PY" - "$OUT/compare-$cpu.json" <<'EOF' || true
import json, sys
c = json.load(open(sys.argv[1]))
for f in c["files"]:
    a, b = f["accuracy"]
    top1 = "same" if not f["mismatches"] else f"{len(f['mismatches'])} differ"
    print(f"  {f['file']:<44} acc {a:.3f} / {b:.3f}  top-1 {top1:<9} max |dp| {f['max_prob_diff']:.2e}")
EOF
  fi
done
echo "wall time: $(elapsed "$T_START")s"
if [ "$failed" -ne 0 ]; then
  echo "arm64_check: FAILED" >&2
  exit 1
fi
echo "arm64_check: OK: the SDK runs on Debian $SUITE arm64 with predictions identical to $(uname -m)"
