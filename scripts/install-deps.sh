#!/usr/bin/env bash
# Installs the Debian packages the build, the tests and the demo need, and only
# those that are missing: on a machine that has them all it changes nothing and
# needs no network. Runs as root, or through sudo otherwise. Debian 12.
set -euo pipefail

PACKAGES=(
  # build
  cmake g++ make pkg-config binutils python3
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # vgpuctl's generated completion and man pages, run by cli_completion_test
  zsh groff-base
  # fuzzing (fuzz/run.sh, ctest fuzz_short): clang and its libFuzzer/sanitizer runtimes
  clang libclang-rt-14-dev
  # libraries of vgpud, vgpuctl and the tests
  libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libsystemd-dev
  # the device plugin's API server client (HTTPS with OpenSSL; the openssl command makes k8s_api_tls_test's certificates)
  libcurl4-openssl-dev openssl
  # packages (cpack -G DEB: dpkg-shlibdeps) and the unit check (systemd-analyze)
  dpkg-dev systemd
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc prometheus-cpp-dev
  # vgpud's eBPF driver probes: BPF compiler, skeleton generator, loader library,
  # kernel UAPI headers (asm/ptrace.h for pt_regs; no vmlinux.h is needed)
  clang bpftool libbpf-dev linux-libc-dev
  # the Kubernetes end-to-end test (k8s_podman_test): podman with runc runs a
  # container with the device plugin's CDI device on a busybox rootfs
  podman runc busybox-static
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null; then
  as_root=(sudo)
else
  echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}"
