// Podman for the device plugin's end-to-end tests (issue 10): the
// K8sPlugin fixture (k8s_fake_kubelet.h: real vgpud on simgpu, the real
// build/bin/vgpu-device-plugin, a fake kubelet) plus Debian's podman (4.3,
// runc, cgroupfs, as root) starting containers with the plugin's CDI device
// on a busybox rootfs built here: busybox, the test programs
// (k8s_container_probe, vgpu-workload), simgpu's libraries and every shared
// library they and the shim need, copied from the host with their paths.
//
// Isolation: podman runs with a private containers.conf (CONTAINERS_CONF),
// private storage (--root/--runroot/--tmpdir under the test's directory), no
// network. Podman 4.3 reads CDI specs only from /etc/cdi and /var/run/cdi
// (containers.conf has no cdi_spec_dirs before containers-common 0.51), so
// either
//  * private_cdi(): podman runs in a mount namespace of its own
//    (`unshare --mount`) where the plugin's private --cdi-dir is bind-mounted
//    on /run/cdi -- the plugin keeps its default domain (vgpu.io), and no
//    other plugin's specs are in its directory; or
//  * the plugin writes to /var/run/cdi under a domain unique to the test.
//
// Why `--pid=host`: simgpu keeps one process table for the node in shared
// memory, keyed by pid; a process in another pid namespace would record pids
// the other processes cannot see (a real driver has no such table). The
// shim's identity does not depend on it: vgpud takes the peer from
// SO_PEERCRED, which the kernel translates between pid namespaces.
// Why CUDA_VISIBLE_DEVICES: it stands in for NVIDIA's runtime, which exposes
// only the allocation's GPU (the nvidia.com/gpu CDI device) to the container.
//
// SetUp skips, with the reason, when not root or when podman, runc or
// busybox is missing; CI runs as root with all installed
// (scripts/install-deps.sh). Header-only, like the other k8s test fakes.
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "k8s_fake_kubelet.h"

namespace vgpu::test::k8s {

// The absolute path of `name` on PATH, or "".
inline std::string on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty() && access((d + "/" + name).c_str(), X_OK) == 0) return d + "/" + name;
  return "";
}

// Runs a shell command; its exit status (-1 if it did not exit normally).
inline int sh(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A value `key=<value>` from a probe's output ("" if absent).
inline std::string field(const std::string& out, const std::string& key) {
  size_t p = out.find(key + "=");
  if (p == std::string::npos) return "";
  p += key.size() + 1;
  return out.substr(p, out.find_first_of(" \n", p) - p);
}

class K8sPodman : public K8sPlugin {
 protected:
  static constexpr const char* kSystemCdiDir = "/var/run/cdi";

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "podman runs CDI containers as root only here; not root";
    podman = on_path("podman");
    if (podman.empty()) GTEST_SKIP() << "podman is not installed (scripts/install-deps.sh installs it)";
    if (on_path("runc").empty()) GTEST_SKIP() << "runc is not installed (scripts/install-deps.sh installs it)";
    busybox = on_path("busybox");
    if (busybox.empty()) GTEST_SKIP() << "busybox is not installed (busybox-static, scripts/install-deps.sh)";
    K8sPlugin::SetUp();
    if (HasFatalFailure()) return;
    base = vgpud.dir() + "/podman";
    build_rootfs();
  }

  void TearDown() override {
    if (!podman.empty() && !base.empty()) {
      // Containers a failed test left behind, then the CDI specs of a test domain.
      sh("timeout 60 " + podman_prefix() + " rm -a -f -t 0 >/dev/null 2>&1");
      if (!domain.empty() && domain != "vgpu.io")
        sh("rm -f " + std::string(kSystemCdiDir) + "/" + domain + "-gpu-*.json");
    }
    K8sPlugin::TearDown();
  }

  // Podman will read the plugin's own --cdi-dir (`cdi`) through a private
  // mount namespace; skips if this machine cannot make one.
  void private_cdi() {
    if (on_path("unshare").empty()) GTEST_SKIP() << "unshare (util-linux) is missing";
    ASSERT_EQ(sh("mkdir -p /run/cdi " + quote(cdi)), 0);
    if (sh("unshare --mount --propagation private sh -c " + quote("mount --bind " + quote(cdi) + " /run/cdi") +
           " >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "cannot bind-mount over /run/cdi in a private mount namespace (unshare --mount)";
    podman_cdi_dir = cdi;
  }

  // The plugin writes to /var/run/cdi under a domain no one else uses.
  void system_cdi_with_test_domain() {
    domain = "t" + std::to_string(getpid()) + ".vgpu.test";
    ASSERT_EQ(sh(std::string("mkdir -p ") + kSystemCdiDir), 0);
    plugin.reset();
    start_plugin({"--cdi-dir", kSystemCdiDir, "--domain", domain});
  }

  void build_rootfs() {
    rootfs = base + "/rootfs";
    std::string r = quote(rootfs);
    ASSERT_EQ(sh("mkdir -p " + r + "/bin " + r + "/opt/test " + r + "/opt/simgpu " + r + "/etc " + r + "/dev/shm " +
                 r + "/run " + r + "/tmp " + r + "/release " + quote(base + "/release")),
              0);
    ASSERT_EQ(sh("cp -L " + quote(busybox) + " " + r + "/bin/busybox && ln -s busybox " + r + "/bin/sh"), 0);
    std::string workload = vgpu::test::bin_dir() + "/vgpu-workload";
    ASSERT_EQ(access(workload.c_str(), X_OK), 0) << workload << " is not built";
    ASSERT_EQ(sh("cp -L " + quote(program("k8s_container_probe")) + " " + quote(workload) + " " + r + "/opt/test/"), 0);
    std::string sim = vgpu::test::simgpu_dir();
    ASSERT_EQ(sh("cp -L " + quote(sim + "/libcuda.so.1") + " " + quote(sim + "/libnvidia-ml.so.1") + " " + r +
                 "/opt/simgpu/"),
              0);
    // The shim's files the plugin mounts at /usr/lib/vgpu.
    std::string lib = vgpu::test::lib_dir();
    ASSERT_EQ(sh("mkdir -p " + quote(host + "/lib") + " && cp -L " + quote(lib + "/libvgpu.so") + " " +
                 quote(lib + "/libvgpu-core.so") + " " + quote(host + "/lib/")),
              0);
    for (const std::string& f : std::vector<std::string>{busybox, program("k8s_container_probe"), workload,
                                                         sim + "/libcuda.so.1", sim + "/libnvidia-ml.so.1",
                                                         lib + "/libvgpu.so", lib + "/libvgpu-core.so"}) {
      // ldd's "name => /path (addr)" and "/path (addr)" lines; a static
      // binary has none.
      std::string cmd = "ldd " + quote(f) +
                        " 2>/dev/null | awk '$2 == \"=>\" && $3 ~ /^\\// {print $3} $1 ~ /^\\// {print $1}' | "
                        "while read -r l; do cp -L --parents \"$l\" " +
                        r + " || exit 1; done";
      ASSERT_EQ(sh(cmd), 0) << "copying the libraries of " << f;
    }
  }

  // podman with private configuration and storage, runc, cgroupfs.
  std::vector<std::string> podman_argv() {
    return {podman, "--root", base + "/storage", "--runroot", base + "/run", "--tmpdir", base + "/tmp",
            "--storage-driver", "vfs", "--cgroup-manager=cgroupfs", "--runtime", "runc"};
  }
  std::string podman_prefix() {
    std::string s = "CONTAINERS_CONF=" + quote(base + "/containers.conf");
    for (const auto& a : podman_argv()) s += " " + quote(a);
    return s;
  }

  // `podman run` of `script` (busybox sh) with CDI device `device` (the
  // plugin's), the GPU `gpu_uuid` visible, /release mounted; returns the
  // running podman client.
  std::unique_ptr<Child> run_container(const std::string& device, const std::string& gpu_uuid,
                                       const std::string& script) {
    std::ofstream(base + "/containers.conf") << "[engine]\nevents_logger = \"file\"\nevents_logfile_path = \""
                                             << base << "/events.log\"\n";
    // The runtime may not raise limits past the test's own (no
    // CAP_SYS_RESOURCE in some sandboxes): the container gets ours, capped
    // at podman's defaults.
    rlimit nofile{}, nproc{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    getrlimit(RLIMIT_NPROC, &nproc);
    auto cap = [](rlim_t v, rlim_t max) { return std::to_string(std::min<rlim_t>(v, max)); };
    std::string nf = cap(nofile.rlim_max, 1048576), np = cap(nproc.rlim_max, 32768);

    std::vector<std::string> argv = podman_argv();
    argv.insert(argv.end(), {"run", "--rm", "--network", "none", "--pid", "host", "--ulimit", "nofile=" + nf + ":" + nf,
                             "--ulimit", "nproc=" + np + ":" + np, "--device", device, "-v", "/dev/shm:/dev/shm", "-v",
                             base + "/release:/release", "-e", "LD_LIBRARY_PATH=/opt/simgpu", "-e",
                             "CUDA_VISIBLE_DEVICES=" + gpu_uuid});
    for (auto& [k, v] : vgpud.node().env())
      if (k.rfind("SIMGPU_", 0) == 0) argv.insert(argv.end(), {"-e", k + "=" + v});
    argv.insert(argv.end(), {"--rootfs", rootfs, "/bin/sh", "-c", script});
    std::map<std::string, std::string> env{{"CONTAINERS_CONF", base + "/containers.conf"}};
    if (podman_cdi_dir.empty()) return std::make_unique<Child>(argv, env);
    // In a mount namespace of its own, where /run/cdi is the plugin's directory.
    std::string cmd = "mount --bind " + quote(podman_cdi_dir) + " /run/cdi && exec";
    for (const auto& a : argv) cmd += " " + quote(a);
    return std::make_unique<Child>(
        std::vector<std::string>{on_path("unshare"), "--mount", "--propagation", "private", "/bin/sh", "-c", cmd}, env);
  }

  api::ListProcessesResponse processes_of(const std::string& tenant) {
    api::ListProcessesRequest req;
    req.set_tenant(tenant);
    api::ListProcessesResponse out;
    grpc::ClientContext ctx;
    EXPECT_TRUE(admin->ListProcesses(&ctx, req, &out).ok());
    return out;
  }

  api::Tenant tenant(const std::string& name) {
    api::GetTenantRequest g;
    g.set_name(name);
    api::Tenant t;
    grpc::ClientContext ctx;
    EXPECT_TRUE(admin->GetTenant(&ctx, g, &t).ok()) << name;
    return t;
  }

  std::string podman, busybox, domain, base, rootfs;
  std::string podman_cdi_dir;  // set by private_cdi()
};

}  // namespace vgpu::test::k8s
