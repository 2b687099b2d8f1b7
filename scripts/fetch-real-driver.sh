#!/usr/bin/env bash
# Fetches NVIDIA's user-space CUDA driver (Debian non-free libcuda1, 535
# series, bookworm) and unpacks it into DESTDIR, without installing anything
# system-wide: apt runs under a private configuration (its own sources.list,
# state, cache and lists under DESTDIR/apt), `apt-get download` fetches the
# .deb into DESTDIR/debs (kept, so later runs need no network) and
# `dpkg-deb -x` unpacks it into DESTDIR/root.
#
# Usage: scripts/fetch-real-driver.sh DESTDIR
# Prints the directory holding libcuda.so.1 on its last line of stdout.
# Idempotent: when DESTDIR already holds the unpacked driver it only prints.
# Exit status: 0 on success; 2 when the package cannot be fetched (no network,
# mirror unreachable, package gone), with the reason on stderr.
#
# libcuda.so.1 needs only libc at load time (ldd); libnvidia-ptxjitcompiler
# is dlopened for PTX JIT only, which needs a GPU, so it is not fetched.
# Environment: VGPU_DEBIAN_MIRROR (default: the mirror this machine's apt
# sources use, else http://deb.debian.org/debian).
set -euo pipefail

dest="${1:?usage: fetch-real-driver.sh DESTDIR}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
libdir="$dest/root/usr/lib/x86_64-linux-gnu/nvidia/current"
# Tests run in parallel and each calls this script: one at a time per DESTDIR.
exec 9>"$dest/.lock"
flock 9

if [[ -e "$libdir/libcuda.so.1" && -f "$dest/version" ]]; then
  echo "$libdir"
  exit 0
fi

fail() { echo "fetch-real-driver: $*" >&2; exit 2; }

for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

mirror="${VGPU_DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  # Reuse the machine's Debian mirror (deb822 or one-line format).
  mirror="$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null |
    head -n1 | tr -d ' ' || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r "$keyring" ]] || fail "$keyring is missing (package debian-archive-keyring)"

apt_dir="$dest/apt"
mkdir -p "$apt_dir"/{state/lists/partial,cache/archives/partial,etc/apt.conf.d,etc/preferences.d,etc/sources.list.d} \
  "$dest/debs"
echo "deb [signed-by=$keyring] $mirror bookworm main contrib non-free non-free-firmware" >"$apt_dir/etc/sources.list"
apt_opts=(
  -o "Dir::State=$apt_dir/state" -o "Dir::State::status=$apt_dir/state/status"
  -o "Dir::Cache=$apt_dir/cache" -o "Dir::Etc=$apt_dir/etc"
  -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/etc/sources.list.d"
  -o "Dir::Etc::Parts=$apt_dir/etc/apt.conf.d" -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
  -o "APT::Architecture=amd64" -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1"
  -o "Acquire::Retries=2" -o "Acquire::http::Timeout=20"
)
touch "$apt_dir/state/status"

deb="$(ls "$dest"/debs/libcuda1_535.*_amd64.deb 2>/dev/null | head -n1 || true)"
if [[ -z "$deb" ]]; then
  apt-get "${apt_opts[@]}" -q update >"$apt_dir/update.log" 2>&1 ||
    fail "apt-get update from $mirror failed: $(tail -n3 "$apt_dir/update.log" | tr '\n' ' ')"
  version="$(apt-cache "${apt_opts[@]}" show libcuda1 2>/dev/null | sed -n 's/^Version: //p' | grep '^535\.' | head -n1 || true)"
  [[ -n "$version" ]] ||
    fail "no libcuda1 535.* from $mirror bookworm non-free: $(grep -E '^(Err|W|E):' "$apt_dir/update.log" | head -n2 | tr '\n' ' ')"
  (cd "$dest/debs" && apt-get "${apt_opts[@]}" -q download "libcuda1=$version" >"$apt_dir/download.log" 2>&1) ||
    fail "apt-get download libcuda1=$version failed: $(tail -n3 "$apt_dir/download.log" | tr '\n' ' ')"
  deb="$(ls "$dest"/debs/libcuda1_535.*_amd64.deb | head -n1)"
fi

rm -rf "$dest/root"
dpkg-deb -x "$deb" "$dest/root" || fail "dpkg-deb -x $deb failed"
[[ -e "$libdir/libcuda.so.1" ]] || fail "$deb holds no libcuda.so.1 in $libdir"
dpkg-deb -f "$deb" Version >"$dest/version"
echo "$libdir"
