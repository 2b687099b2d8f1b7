#!/usr/bin/env bash
# Builds the Debian packages from a configured, built tree (cpack), checks
# their names, contents and dependencies, checks `cmake --install` lays out
# the same tree, verifies the systemd unit, and runs the product demo from
# the packages' files unpacked into a private root (simgpu, no GPU).
#   usage: check_packages.sh BUILD_DIR
# Exit 0: all checks passed; 1: a check failed (each failure is printed).
set -uo pipefail
BUILD="$(cd "${1:?usage: check_packages.sh BUILD_DIR}" && pwd)"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$(mktemp -d /tmp/vgpu-packages-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# 1. Packages, built into a private directory.
if ! (cd "$BUILD" && cpack -G DEB -B "$WORK/debs" >"$WORK/cpack.log" 2>&1); then
  cat "$WORK/cpack.log"; fail "cpack -G DEB"; exit 1
fi
for pkg in vgpu vgpud vgpuctl; do
  deb=$(ls "$WORK"/debs/${pkg}_*.deb 2>/dev/null | head -1)
  [ -n "$deb" ] || { fail "no ${pkg}_*.deb built"; continue; }
  name=$(dpkg-deb -f "$deb" Package)
  [ "$name" = "$pkg" ] || fail "$deb: Package is '$name', expected '$pkg'"
  dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$WORK/$pkg.files"
  dpkg-deb -f "$deb" Depends >"$WORK/$pkg.depends"
  dpkg-deb -x "$deb" "$WORK/root"
  ok "$pkg: $(wc -l <"$WORK/$pkg.files") entries, Depends: $(cat "$WORK/$pkg.depends")"
done
expect_file() {  # package path
  grep -qx "$2" "$WORK/$1.files" || fail "$1 lacks $2"
}
expect_dep() {  # package regex
  grep -Eq "$2" "$WORK/$1.depends" || fail "$1 does not depend on $2 (Depends: $(cat "$WORK/$1.depends"))"
}
expect_no_dep() {
  grep -Eq "$2" "$WORK/$1.depends" && fail "$1 depends on $2 (Depends: $(cat "$WORK/$1.depends"))"
}
expect_file vgpu /usr/lib/vgpu/libvgpu.so
expect_file vgpu /usr/lib/vgpu/libvgpu-core.so
expect_dep vgpu '(^|, )libc6'
expect_dep vgpu 'libstdc\+\+6'
for lib in yaml grpc protobuf prometheus bpf systemd; do expect_no_dep vgpu "lib$lib"; done
expect_file vgpud /usr/bin/vgpud
expect_file vgpud /etc/vgpu/vgpud.yaml
expect_file vgpud /lib/systemd/system/vgpud.service
expect_file vgpud /usr/share/doc/vgpu/operations.md
expect_dep vgpud 'vgpu \(= '
expect_dep vgpud 'libyaml-cpp'
expect_dep vgpud 'libgrpc\+\+'
expect_dep vgpud 'libbpf'
expect_dep vgpud 'libsystemd0'
expect_file vgpuctl /usr/bin/vgpuctl
expect_dep vgpuctl 'libgrpc\+\+'
ctrl="$WORK/ctrl"; mkdir -p "$ctrl"
dpkg-deb -e "$(ls "$WORK"/debs/vgpud_*.deb | head -1)" "$ctrl"
grep -qx /etc/vgpu/vgpud.yaml "$ctrl/conffiles" 2>/dev/null || fail "vgpud: /etc/vgpu/vgpud.yaml is not a conffile"
[ -x "$ctrl/postinst" ] || fail "vgpud: no executable postinst"
sh -n "$ctrl/postinst" && sh -n "$ctrl/prerm" && sh -n "$ctrl/postrm" || fail "vgpud: maintainer scripts do not parse"

# 2. The libraries the unpacked binaries need all resolve on this machine
#    (what apt installs from Depends).
for bin in usr/bin/vgpud usr/bin/vgpuctl usr/lib/vgpu/libvgpu.so usr/lib/vgpu/libvgpu-core.so; do
  missing=$(ldd "$WORK/root/$bin" 2>&1 | grep "not found")
  [ -z "$missing" ] || fail "$bin: $missing"
done
ldd "$WORK/root/usr/lib/vgpu/libvgpu.so" | awk '{print $1}' | grep -Ev '^(linux-vdso|/lib64/ld-linux|libc\.so|libstdc\+\+|libm\.so|libgcc_s|libdl|libpthread)' \
  | grep . && fail "libvgpu.so links more than libc/libstdc++"
# The preload stub, loaded into every process of a container, links libc alone.
ldd "$WORK/root/usr/lib/vgpu/libvgpu.so" | awk '{print $1}' | grep -Ev '^(linux-vdso|/lib64/ld-linux|libc\.so)' \
  | grep . && fail "libvgpu.so (the preload stub) links more than libc"
ldd "$WORK/root/usr/lib/vgpu/libvgpu-core.so" | awk '{print $1}' | grep -Ev '^(linux-vdso|/lib64/ld-linux|libc\.so|libstdc\+\+|libm\.so|libgcc_s|libdl|libpthread)' \
  | grep . && fail "libvgpu-core.so links more than libc/libstdc++"

# 3. `cmake --install` lays out the same files.
DESTDIR="$WORK/installed" cmake --install "$BUILD" --prefix /usr >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "cmake --install"; }
for f in usr/bin/vgpud usr/bin/vgpuctl usr/lib/vgpu/libvgpu.so usr/lib/vgpu/libvgpu-core.so etc/vgpu/vgpud.yaml lib/systemd/system/vgpud.service; do
  [ -e "$WORK/installed/$f" ] || fail "cmake --install did not install /$f"
done

# 4. The unit file is valid for this machine's systemd.
if command -v systemd-analyze >/dev/null; then
  unit="$WORK/root/lib/systemd/system/vgpud.service"
  # verify resolves ExecStart's binary: point it at the unpacked one.
  sed "s|/usr/bin/vgpud|$WORK/root/usr/bin/vgpud|" "$unit" >"$WORK/vgpud.service"
  if out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$WORK/vgpud.service" 2>&1 | grep -v "ConditionPathExists\|Failed to prepare filename\|/etc/vgpu/vgpud.yaml"); [ -n "$out" ]; then
    fail "systemd-analyze verify vgpud.service: $out"
  else
    ok "systemd-analyze verify vgpud.service"
  fi
  grep -q '^Type=notify' "$unit" || fail "vgpud.service is not Type=notify"
else
  echo "skip: systemd-analyze not installed; unit not verified"
fi

# 5. The demo runs from the unpacked packages.
if DEMO_PREFIX="$WORK/root" DEMO_SKIP_BUILD=1 DEMO_SECONDS="${DEMO_SECONDS:-3}" \
     bash "$ROOT/scripts/demo.sh" >"$WORK/demo.log" 2>&1; then
  ok "demo from the packages' files"
else
  tail -40 "$WORK/demo.log"; fail "demo from the packages' files"
fi

# 6. docs/operations.md followed with what the packages install.
if python3 "$ROOT/tests/docs/run_doc_commands.py" --prefix "$WORK/root" "$BUILD" "$ROOT/docs/operations.md" \
     >"$WORK/docs.log" 2>&1; then
  ok "docs/operations.md with the packages' vgpud, vgpuctl and libvgpu.so"
else
  cat "$WORK/docs.log"; fail "docs/operations.md with the packages' files"
fi

if [ "$failures" -ne 0 ]; then echo "$failures check(s) failed"; exit 1; fi
echo "all package checks passed"
