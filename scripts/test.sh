#!/usr/bin/env bash
# The whole test suite: installs missing packages, builds into build/, runs
# every test with ctest (2 at a time, each with a time limit) and ends with
# ctest's summary. Exit status is ctest's. Extra arguments go to ctest
# (e.g. -R simgpu_ to run a subset).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$ROOT/scripts/build.sh"
cd "$ROOT/build"
ctest --output-on-failure -j "${JOBS:-2}" --timeout "${TEST_TIMEOUT:-300}" "$@"
