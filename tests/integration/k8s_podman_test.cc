// End to end with a real container runtime (issue 10): the device plugin
// behind a fake kubelet (tests/support/k8s_fake_kubelet.h) allocates memory
// units, writes its CDI spec, and Debian's podman (4.3, runc, as root) starts
// a container with that CDI device on a busybox rootfs built here. Inside, a
// driver-API program (tests/programs/k8s_container_probe.cc) runs under the
// preloaded shim against simgpu; vgpud must see it as the allocation's tenant
// (through the allocation's own socket: the container has no token), its
// cuMemGetInfo total must be the quota and an allocation past the quota must
// be refused; a second container of another allocation on the same GPU has
// its own tenant and quota. A compute request set through the admin API
// reaches vgpud's scheduler for that tenant only.
//
// Isolation: podman runs with a private containers.conf (CONTAINERS_CONF),
// private storage (--root/--runroot/--tmpdir under the test's directory) and
// no network. Podman 4.3 reads CDI specs only from /etc/cdi and /var/run/cdi
// (containers.conf has no cdi_spec_dirs before containers-common 0.51), so
// the plugin writes to /var/run/cdi under a domain unique to this test
// (`t<pid>.vgpu.test`): its spec files cannot clash with anyone else's, and
// the test removes them.
//
// Why `--pid=host`: simgpu keeps one process table for the node in shared
// memory, keyed by pid; a process in another pid namespace would record pids
// the other processes cannot see (a real driver has no such table). The
// shim's identity does not depend on it: vgpud takes the peer from
// SO_PEERCRED, which the kernel translates between pid namespaces.
// Why CUDA_VISIBLE_DEVICES: it stands in for NVIDIA's runtime, which exposes
// only the allocation's GPU (the nvidia.com/gpu CDI device) to the container.
//
// Skips, with the reason, when not root or when podman or runc is missing;
// CI runs as root with both installed (scripts/install-deps.sh).
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "k8s_fake_kubelet.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::program;
using vgpu::test::wait_until;
using vgpu::test::k8s::K8sPlugin;
using vgpu::test::k8s::kMi;
namespace api = vgpu::admin::v1;
namespace dp = v1beta1;

const char* kCdiDir = "/var/run/cdi";

// The absolute path of `name` on PATH, or "".
std::string on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty() && access((d + "/" + name).c_str(), X_OK) == 0) return d + "/" + name;
  return "";
}

// Runs a shell command; its exit status (-1 if it did not exit normally).
int sh(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A value `key=<value>` from the probe's output ("" if absent).
std::string field(const std::string& out, const std::string& key) {
  size_t p = out.find(key + "=");
  if (p == std::string::npos) return "";
  p += key.size() + 1;
  return out.substr(p, out.find_first_of(" \n", p) - p);
}

class K8sPodman : public K8sPlugin {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "podman runs CDI containers as root only here; not root";
    podman = on_path("podman");
    if (podman.empty()) GTEST_SKIP() << "podman is not installed (scripts/install-deps.sh installs it)";
    if (on_path("runc").empty()) GTEST_SKIP() << "runc is not installed (scripts/install-deps.sh installs it)";
    busybox = on_path("busybox");
    if (busybox.empty()) GTEST_SKIP() << "busybox is not installed (busybox-static, scripts/install-deps.sh)";
    K8sPlugin::SetUp();
    if (HasFatalFailure()) return;
    // The same plugin, now writing CDI specs where podman reads them, under
    // a domain no one else uses.
    domain = "t" + std::to_string(getpid()) + ".vgpu.test";
    ASSERT_EQ(sh(std::string("mkdir -p ") + kCdiDir), 0);
    plugin.reset();
    start_plugin({"--cdi-dir", kCdiDir, "--domain", domain});
    if (HasFatalFailure()) return;
    base = vgpud.dir() + "/podman";
    build_rootfs();
  }

  void TearDown() override {
    if (!podman.empty() && !base.empty()) {
      // Containers a failed test left behind, then the CDI specs of this domain.
      sh("timeout 60 " + podman_prefix() + " rm -a -f -t 0 >/dev/null 2>&1");
      sh("rm -f " + std::string(kCdiDir) + "/" + domain + "-gpu-*.json");
    }
    K8sPlugin::TearDown();
  }

  // The root filesystem: busybox, the probe, simgpu's libraries and every
  // shared library they (and the shim the CDI device mounts) need, copied
  // from the host with their paths.
  void build_rootfs() {
    rootfs = base + "/rootfs";
    std::string r = quote(rootfs);
    ASSERT_EQ(sh("mkdir -p " + r + "/bin " + r + "/opt/test " + r + "/opt/simgpu " + r + "/etc " + r + "/dev/shm " +
                 r + "/run " + r + "/tmp " + r + "/release " + quote(base + "/release")),
              0);
    ASSERT_EQ(sh("cp -L " + quote(busybox) + " " + r + "/bin/busybox && ln -s busybox " + r + "/bin/sh"), 0);
    ASSERT_EQ(sh("cp -L " + quote(program("k8s_container_probe")) + " " + r + "/opt/test/"), 0);
    std::string sim = vgpu::test::simgpu_dir();
    ASSERT_EQ(sh("cp -L " + quote(sim + "/libcuda.so.1") + " " + quote(sim + "/libnvidia-ml.so.1") + " " + r +
                 "/opt/simgpu/"),
              0);
    // The shim's files the plugin mounts at /usr/lib/vgpu.
    std::string lib = vgpu::test::lib_dir();
    ASSERT_EQ(sh("mkdir -p " + quote(host + "/lib") + " && cp -L " + quote(lib + "/libvgpu.so") + " " +
                 quote(lib + "/libvgpu-core.so") + " " + quote(host + "/lib/")),
              0);
    for (const std::string& f : std::vector<std::string>{busybox, program("k8s_container_probe"), sim + "/libcuda.so.1", sim + "/libnvidia-ml.so.1",
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

  // podman with private configuration and storage, runc, cgroupfs, for sh
  // (run_probe passes the same).
  std::string podman_prefix() {
    return "CONTAINERS_CONF=" + quote(base + "/containers.conf") + " " + quote(podman) + " --root " +
           quote(base + "/storage") + " --runroot " + quote(base + "/run") + " --tmpdir " + quote(base + "/tmp") +
           " --storage-driver vfs --cgroup-manager=cgroupfs --runtime runc";
  }

  // `podman run` of the probe with the allocation's CDI device; returns the
  // running podman client.
  std::unique_ptr<Child> run_probe(const std::string& alloc, const std::string& gpu_uuid, uint64_t within,
                                   uint64_t over, const std::string& release) {
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

    std::vector<std::string> argv{podman,      "--root",       base + "/storage", "--runroot",
                                  base + "/run", "--tmpdir",   base + "/tmp",     "--storage-driver",
                                  "vfs",         "--cgroup-manager=cgroupfs", "--runtime", "runc"};
    argv.insert(argv.end(), {"run", "--rm", "--network", "none", "--pid", "host", "--ulimit", "nofile=" + nf + ":" + nf,
                          "--ulimit", "nproc=" + np + ":" + np, "--device", domain + "/gpu=" + alloc, "-v",
                          "/dev/shm:/dev/shm", "-v", base + "/release:/release", "-e",
                          "LD_LIBRARY_PATH=/opt/simgpu", "-e", "CUDA_VISIBLE_DEVICES=" + gpu_uuid});
    for (auto& [k, v] : vgpud.node().env())
      if (k.rfind("SIMGPU_", 0) == 0) argv.insert(argv.end(), {"-e", k + "=" + v});
    argv.insert(argv.end(), {"--rootfs", rootfs, "/bin/sh", "-c",
                             "cat /etc/ld.so.preload && echo socket=$VGPU_SOCKET && exec "
                             "/opt/test/k8s_container_probe " +
                                 std::to_string(within) + " " + std::to_string(over) + " /release/" + release +
                                 " 60000"});
    return std::make_unique<Child>(argv, std::map<std::string, std::string>{{"CONTAINERS_CONF", base + "/containers.conf"}});
  }

  // Allocates `devs` through the plugin (the kubelet's Allocate) and checks
  // the CDI spec is where podman reads it.
  std::string allocate_for_container(const std::vector<std::string>& devs) {
    dp::AllocateResponse resp;
    auto st = allocate({devs}, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::string alloc = vgpu::k8s::allocation_id(devs);
    EXPECT_EQ(resp.container_responses(0).cdi_devices(0).name(), domain + "/gpu=" + alloc);
    EXPECT_EQ(access((std::string(kCdiDir) + "/" + domain + "-gpu-" + alloc + ".json").c_str(), F_OK), 0);
    return alloc;
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
};

TEST_F(K8sPodman, ContainersGetTheirAllocationsTenantQuotaAndComputeRequest) {
  // Two allocations on GPU 0 (4Gi): A = 2 units (1Gi), B = 3 units (1.5Gi).
  std::string a = allocate_for_container(ids(0, {0, 1}));
  std::string b = allocate_for_container(ids(0, {2, 3, 4}));
  ASSERT_FALSE(HasFailure());
  ASSERT_NE(a, b);

  // A holds 768Mi; 512Mi more would be 1.25Gi, past its 1Gi quota (the GPU
  // has room: the refusal is the quota's).
  auto ca = run_probe(a, uuids[0], 768 * kMi, 512 * kMi, "a");
  ASSERT_TRUE(wait_until([&] { return ca->output().find("ready") != std::string::npos || !ca->running(); }, 120s))
      << ca->output() << ca->errors();
  std::string out_a = ca->output();
  std::printf("container A:\n%s", out_a.c_str());
  ASSERT_NE(out_a.find("ready"), std::string::npos) << "container A did not get ready: " << out_a << ca->errors();
  EXPECT_NE(out_a.find("/usr/lib/vgpu/libvgpu.so"), std::string::npos) << "ld.so.preload not mounted: " << out_a;
  EXPECT_EQ(field(out_a, "socket"), "/run/vgpu/vgpud.sock");
  EXPECT_EQ(field(out_a, "count"), "1");
  EXPECT_EQ(field(out_a, "uuid"), uuids[0]);
  EXPECT_EQ(field(out_a, "total"), std::to_string(1024 * kMi)) << "cuMemGetInfo total must be the quota";
  EXPECT_EQ(field(out_a, "within"), "0");
  EXPECT_EQ(field(out_a, "over"), "2") << "past the quota must be CUDA_ERROR_OUT_OF_MEMORY";

  // B, on the same GPU while A holds memory: its own quota, A's use unseen.
  auto cb = run_probe(b, uuids[0], 1024 * kMi, 768 * kMi, "b");
  ASSERT_TRUE(wait_until([&] { return cb->output().find("ready") != std::string::npos || !cb->running(); }, 120s))
      << cb->output() << cb->errors();
  std::string out_b = cb->output();
  std::printf("container B:\n%s", out_b.c_str());
  ASSERT_NE(out_b.find("ready"), std::string::npos) << "container B did not get ready: " << out_b << cb->errors();
  EXPECT_EQ(field(out_b, "total"), std::to_string(1536 * kMi));
  EXPECT_EQ(field(out_b, "free"), std::to_string(1536 * kMi)) << "B must not see A's memory";
  EXPECT_EQ(field(out_b, "within"), "0") << "1Gi is within B's quota, though it is A's whole quota";
  EXPECT_EQ(field(out_b, "over"), "2");

  // vgpud: each container's process under its allocation's tenant, charged
  // what it holds, and nothing of it under the other.
  auto pa = processes_of(a), pb = processes_of(b);
  ASSERT_EQ(pa.processes_size(), 1) << pa.DebugString();
  ASSERT_EQ(pb.processes_size(), 1) << pb.DebugString();
  EXPECT_EQ(pa.processes(0).tenant(), a);
  EXPECT_TRUE(pa.processes(0).managed());
  EXPECT_EQ(pb.processes(0).tenant(), b);
  EXPECT_NE(pa.processes(0).pid(), pb.processes(0).pid());
  EXPECT_TRUE(wait_until([&] { return tenant(a).gpus(0).memory_used_bytes() == 768 * kMi; }, 10s))
      << tenant(a).DebugString();
  EXPECT_TRUE(wait_until([&] { return tenant(b).gpus(0).memory_used_bytes() == 1024 * kMi; }, 10s))
      << tenant(b).DebugString();
  EXPECT_EQ(tenant(a).gpus(0).allocations_denied(), 1u);
  EXPECT_EQ(tenant(b).gpus(0).allocations_denied(), 1u);

  // vgpuctl shows the same.
  Child ps({vgpu::test::bin_dir() + "/vgpuctl", "--socket", vgpud.admin_socket(), "ps"}, {});
  ASSERT_EQ(ps.wait(20s), 0) << ps.errors();
  std::printf("vgpuctl ps:\n%s", ps.output().c_str());
  EXPECT_NE(ps.output().find(a), std::string::npos) << ps.output();
  EXPECT_NE(ps.output().find(b), std::string::npos) << ps.output();

  // A compute request of 30% for A (what the plugin sets from the pod's
  // vgpu.io/compute-request annotation) is A's scheduling target; B keeps 0.
  api::UpdateTenantRequest up;
  up.set_name(a);
  up.set_compute_request(0.3);
  api::Tenant updated;
  grpc::ClientContext uctx;
  ASSERT_TRUE(admin->UpdateTenant(&uctx, up, &updated).ok());
  EXPECT_DOUBLE_EQ(tenant(a).spec().compute_request(), 0.3);
  EXPECT_DOUBLE_EQ(tenant(a).gpus(0).share_target(), 0.3);
  EXPECT_DOUBLE_EQ(tenant(b).gpus(0).share_target(), 0.0);

  // Release both; the containers exit cleanly and vgpud forgets the processes.
  std::ofstream(base + "/release/a") << "go";
  std::ofstream(base + "/release/b") << "go";
  EXPECT_EQ(ca->wait(60s), 0) << ca->output() << ca->errors();
  EXPECT_EQ(cb->wait(60s), 0) << cb->output() << cb->errors();
  EXPECT_TRUE(wait_until([&] { return processes_of(a).processes_size() == 0 && processes_of(b).processes_size() == 0; },
                         20s));
  EXPECT_EQ(tenant(a).gpus(0).memory_used_bytes(), 0u);
}

}  // namespace
