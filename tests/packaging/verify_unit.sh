#!/usr/bin/env bash
# Checks packaging/systemd/vgpud.service as the build configured it
# (BUILD_DIR/packaging/vgpud.service) with this machine's systemd:
# `systemd-analyze verify` must print nothing (it exits 0 on unknown keys and
# bad values, so any output is a failure), and the unit must keep what
# vgpud relies on (Type=notify, reload by SIGHUP, the installed binary).
# verify needs ExecStart's binary to exist: a copy of the unit points it at
# the built vgpud. A deliberately broken copy must be reported, so the check
# is shown to be able to fail.
#   usage: verify_unit.sh BUILD_DIR
# Exit 0: passed; 1: failed; 125: systemd-analyze is not installed (skipped).
set -uo pipefail
BUILD="$(cd "${1:?usage: verify_unit.sh BUILD_DIR}" && pwd)"
UNIT="$BUILD/packaging/vgpud.service"
if ! command -v systemd-analyze >/dev/null; then
  echo "skip: systemd-analyze is not installed (Debian: apt-get install systemd); the unit is not verified"
  exit 125
fi
[ -f "$UNIT" ] || { echo "FAIL: $UNIT missing (configure the build first)"; exit 1; }
[ -x "$BUILD/bin/vgpud" ] || { echo "FAIL: $BUILD/bin/vgpud missing (build the vgpud target)"; exit 1; }
WORK="$(mktemp -d /tmp/vgpu-unit-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# verify prints what it finds at warning level and above; a clean unit prints nothing.
verify() {  # unit file -> its findings on stdout
  SYSTEMD_LOG_LEVEL=info SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no "$1" 2>&1
}

exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$UNIT")
case "$exec_start" in
  /*/bin/vgpud) ok "ExecStart runs the installed vgpud ($exec_start)" ;;
  *) fail "ExecStart is '$exec_start', expected <prefix>/bin/vgpud" ;;
esac
mkdir -p "$WORK/good" "$WORK/bad"
sed "s|^ExecStart=$exec_start|ExecStart=$BUILD/bin/vgpud|" "$UNIT" >"$WORK/good/vgpud.service"
if out=$(verify "$WORK/good/vgpud.service"); [ -n "$out" ]; then
  fail "systemd-analyze verify vgpud.service: $out"
else
  ok "systemd-analyze verify vgpud.service ($(systemd-analyze --version | head -1))"
fi

# What vgpud's behaviour depends on (scheduler/main.cc).
grep -qx 'Type=notify' "$UNIT" || fail "vgpud.service is not Type=notify (vgpud sends READY=1)"
grep -qx 'NotifyAccess=main' "$UNIT" || fail "vgpud.service lacks NotifyAccess=main"
grep -Eq '^ExecReload=/bin/kill -(HUP|s HUP) \$MAINPID$' "$UNIT" || fail "vgpud.service does not reload with SIGHUP"
grep -q '^ExecStart=.* --config ' "$UNIT" || fail "vgpud.service does not pass --config"

# The check itself: a misspelt key and a bad value must be reported.
sed "s|^ProtectSystem=|ProtectSystm=|; s|^Type=notify|Type=notifyy|" "$WORK/good/vgpud.service" >"$WORK/bad/vgpud.service"
out=$(verify "$WORK/bad/vgpud.service")
if grep -q ProtectSystm <<<"$out" && grep -q notifyy <<<"$out"; then
  ok "a broken copy of the unit is reported"
else
  fail "systemd-analyze did not report a broken copy of the unit (output: $out)"
fi

if [ "$failures" -ne 0 ]; then echo "$failures check(s) failed"; exit 1; fi
echo "vgpud.service verified"
