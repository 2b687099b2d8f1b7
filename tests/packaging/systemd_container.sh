#!/usr/bin/env bash
# vgpud under a real systemd: systemd runs as PID 1 in a podman container
# (runc, cgroupfs) whose root is a private directory with this machine's /usr
# bind-mounted read-only, and manages the unit as configured
# (BUILD_DIR/packaging/vgpud.service, hardening included) with ExecStart
# pointed at the built vgpud on a simulated GPU (simgpu). Checks:
#   - `systemctl start` returns once vgpud is ready (Type=notify): the admin
#     API answers at once, the unit's status says what it serves;
#   - `systemctl reload` (SIGHUP) applies scheduler.quantum and a limits key
#     live, reports a key bound at start as waiting for a restart, keeps the
#     main pid; a broken file is refused and changes nothing;
#   - `systemctl stop` ends it cleanly and its sockets are gone.
#   usage: systemd_container.sh BUILD_DIR
# Exit 0: passed; 1: failed; 125: skipped (not root, or podman, runc or
# systemd missing: scripts/install-deps.sh installs them), with the reason.
set -uo pipefail
BUILD="$(cd "${1:?usage: systemd_container.sh BUILD_DIR}" && pwd)"
skip() { echo "skip: $*"; exit 125; }
[ "$(id -u)" -eq 0 ] || skip "podman runs a systemd container as root only here; not root"
for tool in podman runc; do command -v $tool >/dev/null || skip "$tool is not installed"; done
[ -x /lib/systemd/systemd ] || skip "systemd is not installed"
[ -x "$BUILD/bin/vgpud" ] && [ -x "$BUILD/bin/vgpuctl" ] || { echo "FAIL: build vgpud and vgpuctl first"; exit 1; }
[ -f "$BUILD/packaging/vgpud.service" ] || { echo "FAIL: $BUILD/packaging/vgpud.service missing"; exit 1; }

WORK="$(mktemp -d /tmp/vgpu-systemd-XXXXXX)"
NAME="vgpu-systemd-$$"
ROOT="$WORK/root"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
# podman with private configuration and storage (nothing of the machine's).
echo -e "[engine]\nevents_logger = \"file\"\nevents_logfile_path = \"$WORK/events.log\"" >"$WORK/containers.conf"
pm() {
  CONTAINERS_CONF="$WORK/containers.conf" timeout 60 podman --root "$WORK/storage" --runroot "$WORK/run" \
    --tmpdir "$WORK/tmp" --storage-driver vfs --cgroup-manager=cgroupfs --runtime runc "$@"
}
in_ct() { pm exec "$NAME" "$@"; }
cleanup() {
  pm rm -f -t 0 "$NAME" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
# Polls `cmd...` once per 0.1 s until it succeeds or `seconds` pass.
wait_for() {
  local seconds=$1; shift
  local end=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.1
  done
}

# The container's root: /usr from this machine, its own /etc, /run, /var.
mkdir -p "$ROOT"/{etc/vgpu,etc/systemd/system/vgpud.service.d,usr,run,tmp,var,proc,sys,dev,root} "$ROOT$BUILD"
for l in bin lib lib64 sbin; do ln -s "usr/$l" "$ROOT/$l"; done
cp /etc/passwd /etc/group "$ROOT/etc/"
ln -s ../usr/lib/os-release "$ROOT/etc/os-release"
: >"$ROOT/etc/machine-id"
config() {  # quantum, extra keys
  cat >"$ROOT/etc/vgpu/vgpud.yaml" <<EOF
socket: /run/vgpu/vgpud.sock
admin_socket: /run/vgpu/vgpud-admin.sock
state_dir: /var/lib/vgpu
scheduler: {quantum: $1}
enforcement: {bpf: "off"}
$2
tenants:
  - {name: a, token: systemd-tenant-a-token, memory: 1Gi, compute: {request: 30%}}
EOF
}
config 10ms ""
sed "s|^ExecStart=[^ ]*/vgpud |ExecStart=$BUILD/bin/vgpud |" "$BUILD/packaging/vgpud.service" \
  >"$ROOT/etc/systemd/system/vgpud.service"
echo -e "[Service]\nEnvironment=LD_LIBRARY_PATH=$BUILD/simgpu SIMGPU_STATE=systemd-test-$$" \
  >"$ROOT/etc/systemd/system/vgpud.service.d/simgpu.conf"

# The runtime may not raise limits past ours (no CAP_SYS_RESOURCE in some
# sandboxes): the container gets ours, capped at podman's defaults.
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] || [ "$nofile" -gt 1048576 ] && nofile=1048576
[ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
if ! out=$(pm run -d --name "$NAME" --network none --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
             -v /usr:/usr:ro -v "$BUILD:$BUILD:ro" --systemd=always --rootfs "$ROOT" /lib/systemd/systemd 2>&1); then
  fail "podman run of systemd: $out"; exit 1
fi
booted() { case "$(in_ct systemctl is-system-running 2>/dev/null)" in running|degraded) return 0 ;; esac; return 1; }
wait_for 60 booted || { fail "systemd did not boot in the container: $(pm logs "$NAME" 2>&1 | tail -20)"; exit 1; }
ok "systemd $(in_ct systemctl --version | head -1 | cut -d' ' -f2) is PID 1 in the container"

show() { in_ct systemctl show -p "$1" --value vgpud; }
journal() { in_ct journalctl --no-pager -u vgpud; }

# 1. Type=notify: start returns once vgpud is ready.
if ! out=$(in_ct systemctl start vgpud 2>&1); then
  fail "systemctl start vgpud: $out"; journal | tail -30; exit 1
fi
if in_ct "$BUILD/bin/vgpuctl" --socket /run/vgpu/vgpud-admin.sock status >/dev/null 2>&1; then
  ok "systemctl start returned with vgpud ready (the admin API answers at once)"
else
  fail "the admin API does not answer right after systemctl start"
fi
[ "$(show StatusText)" = "serving 1 tenants" ] || fail "status is '$(show StatusText)', expected 'serving 1 tenants'"
pid=$(show MainPID)

# 2. systemctl reload: live keys applied, a key bound at start reported.
config 7ms "limits: {max_connections_per_uid: 8}
metrics: 127.0.0.1:1"
in_ct systemctl reload vgpud || fail "systemctl reload vgpud"
has() { journal | grep -qF "$1"; }
for line in "reload: scheduler.quantum: 10ms -> 7ms" "reload: limits.max_connections_per_uid: 256 -> 8" \
            "metrics: (none) -> 127.0.0.1:1 changed; it takes effect when vgpud restarts"; do
  wait_for 20 has "$line" && ok "journal: $line" || fail "journal lacks '$line'"
done
status=$(show StatusText)
[ "$status" = "serving 1 tenants (reloaded; 1 changed keys wait for a restart)" ] || fail "status after reload: '$status'"
[ "$(show MainPID)" = "$pid" ] || fail "the main pid changed on reload ($pid -> $(show MainPID))"
[ "$(show ActiveState)" = active ] || fail "not active after reload: $(show ActiveState)"

# A broken file: refused, nothing changed, still serving.
config "lots" ""
in_ct systemctl reload vgpud || fail "systemctl reload vgpud (broken file)"
wait_for 20 has "reload refused, nothing changed" && ok "a broken file is refused" || fail "no refusal logged"
[ "$(show ActiveState)" = active ] || fail "not active after a refused reload"
case "$(show StatusText)" in "reload of /etc/vgpu/vgpud.yaml refused:"*) ;; *) fail "status: '$(show StatusText)'" ;; esac

# 3. systemctl stop: a clean stop, sockets gone.
in_ct systemctl stop vgpud || fail "systemctl stop vgpud"
[ "$(show Result)" = success ] || fail "stop result: $(show Result)"
if in_ct test -e /run/vgpu/vgpud.sock; then fail "the hook socket is left after the stop"; else ok "stopped cleanly, sockets gone"; fi

if [ "$failures" -ne 0 ]; then journal | tail -40; echo "$failures check(s) failed"; exit 1; fi
echo "vgpud under systemd: all checks passed"
