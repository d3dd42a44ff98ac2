#!/usr/bin/env bash
# Sets up esapn on a fresh Debian machine with Swift; safe to run again.
#   1. installs the Debian packages it needs (OpenMPI, OpenBLAS, pkg-config…);
#   2. builds the release binary (.build/release/esapn), and with --tests the tests too;
#   3. fetches real MovieLens-100k into data/ml-100k (scripts/fetch-ml100k.sh).
# Options: --tests (also build the test bundle), --no-data (skip the fetch).
set -euo pipefail
cd "$(dirname "$0")/.."

build_tests=0
fetch_data=1
for arg in "$@"; do
  case "$arg" in
    --tests) build_tests=1 ;;
    --no-data) fetch_data=0 ;;
    *) echo "setup.sh: unknown option '$arg' (known: --tests, --no-data)" >&2; exit 2 ;;
  esac
done

# 1. Debian packages. libopenmpi-dev does not pull in pkg-config.
packages=(libopenmpi-dev openmpi-bin libopenblas-dev pkg-config ca-certificates)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
# The tests make hosts out of network namespaces (scripts/netns-hosts.sh): ip.
((build_tests)) && packages+=(iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH; install Swift 6 first (https://swift.org/install)" >&2; exit 1; }

# 2. Build.
if ((build_tests)); then
  echo "setup: building esapn and its tests (release)"
  swift build -c release --build-tests
else
  echo "setup: building esapn (release)"
  swift build -c release --product esapn
fi

# Python packages for scripts/plot.py (Debian's own python3 refuses a plain
# pip install into the system: PEP 668, hence the second form).
if ! python3 -c "import matplotlib" >/dev/null 2>&1; then
  echo "setup: installing matplotlib (scripts/requirements.txt)"
  python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r scripts/requirements.txt
fi

# 3. Data.
if ((fetch_data)); then
  bash scripts/fetch-ml100k.sh
fi
echo "setup: done (binary: .build/release/esapn)"
