#!/usr/bin/env bash
# Installs missing Debian packages, then configures and builds everything into
# build/. Extra arguments are passed to cmake's configure step
# (e.g. -DVGPU_ASAN=ON). JOBS overrides the parallelism (default 2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$ROOT/scripts/install-deps.sh"
cmake -S "$ROOT" -B "$ROOT/build" "$@"
cmake --build "$ROOT/build" -j "${JOBS:-2}"
