// End to end, the whole Kubernetes path (issue 10, "Done when": a pod's
// memory quota and compute request from annotations are enforced by vgpud):
//   fake API server (k8s_fake_apiserver.h): two pods with
//     team-a/trainer   vgpu.io/compute-request: 30%
//     team-a/server    vgpu.io/compute-request: 10%, and for its container
//                      `main` vgpu.io/compute-request.main: 70% (which wins)
//   fake kubelet (k8s_fake_kubelet.h): GetPreferredAllocation and Allocate
//     for each pod's container (1 and 3 units of 512Mi), then its
//     PodResources lists them, then PreStartContainer;
//   the real build/bin/vgpu-device-plugin (--kubeconfig, --kubelet-root,
//     its default domain vgpu.io, a private --cdi-dir) and a real vgpud;
//   podman (k8s_podman.h) starts each container with its CDI device:
//     k8s_container_probe checks the memory quota from inside, then
//     vgpu-workload saturates the GPU, once per phase, both containers at once.
// Nothing sets a compute request but the plugin from the annotations.
// Asserted: each container's process is under its allocation's tenant; the
// tenant's memory quota is its units (past it cuMemAlloc fails in the
// container); vgpud reports the annotation's request; the saturating
// workloads' shares are 30/70 (+-10 points); the annotations changed on the
// running pods (60%/40%) reach vgpud live and the next phase's shares follow.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "k8s_fake_apiserver.h"
#include "k8s_podman.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::json_number;
using vgpu::test::wait_until;
using vgpu::test::k8s::FakeApiServer;
using vgpu::test::k8s::FakePodResources;
using vgpu::test::k8s::field;
using vgpu::test::k8s::kMi;
namespace api = vgpu::admin::v1;
namespace dp = v1beta1;

constexpr int kPhases = 2;

bool near(double a, double b) { return std::fabs(a - b) < 1e-9; }

struct Pod {
  std::string ns, name, container;
  size_t units;
  std::vector<std::string> devices;  // from GetPreferredAllocation
  std::string alloc;
  std::unique_ptr<Child> podman;
};

class K8sPodmanAnnotations : public vgpu::test::k8s::K8sPodman {
 protected:
  void SetUp() override {
    K8sPodman::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    private_cdi();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(apiserver.start());
    kubeconfig = vgpud.dir() + "/kubeconfig";
    apiserver.write_kubeconfig(kubeconfig);
    pods_server = serve_pod_resources(pod_resources);
    ASSERT_TRUE(pods_server);
    // The API server, re-read every 200 ms; a grace long enough that the
    // moment between Allocate and PodResources listing it never counts.
    plugin.reset();
    start_plugin({"--kubeconfig", kubeconfig, "--annotation-interval", "200ms", "--gc-grace", "10s"});
  }
  void TearDown() override {
    for (auto& p : pods)
      if (p.podman && HasFailure())
        std::printf("container %s:\n%s%s", p.name.c_str(), p.podman->output().c_str(), p.podman->errors().c_str());
    K8sPodman::TearDown();
    if (pods_server) pods_server->Shutdown(std::chrono::system_clock::now() + 1s);
    apiserver.stop();
  }

  // The kubelet's side for one container: preferred devices out of those
  // still free, Allocate, then PodResources lists the container.
  void admit(Pod& p, std::vector<std::string>& free) {
    dp::PreferredAllocationRequest req;
    auto* c = req.add_container_requests();
    for (auto& id : free) c->add_available_deviceids(id);
    c->set_allocation_size(static_cast<int32_t>(p.units));
    dp::PreferredAllocationResponse pref;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    auto st = client()->GetPreferredAllocation(&ctx, req, &pref);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(pref.container_responses_size(), 1);
    p.devices.assign(pref.container_responses(0).deviceids().begin(), pref.container_responses(0).deviceids().end());
    ASSERT_EQ(p.devices.size(), p.units);
    for (auto& id : p.devices) free.erase(std::find(free.begin(), free.end(), id));

    dp::AllocateResponse resp;
    st = allocate({p.devices}, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    p.alloc = vgpu::k8s::allocation_id(p.devices);
    ASSERT_EQ(resp.container_responses(0).cdi_devices(0).name(), "vgpu.io/gpu=" + p.alloc);
    list_in_pod_resources();
  }

  // PodResources: every admitted container, with another plugin's device too.
  void list_in_pod_resources() {
    std::lock_guard<std::mutex> l(pod_resources.mu);
    pod_resources.pods.Clear();
    for (auto& p : pods) {
      if (p.devices.empty()) continue;
      auto* pr = pod_resources.pods.add_pod_resources();
      pr->set_name(p.name);
      pr->set_namespace_(p.ns);
      auto* c = pr->add_containers();
      c->set_name(p.container);
      auto* d = c->add_devices();
      d->set_resource_name("vgpu.io/gpu-memory");
      for (auto& id : p.devices) d->add_device_ids(id);
    }
  }

  void pre_start(const Pod& p) {
    dp::PreStartContainerRequest req;
    for (auto& id : p.devices) req.add_devices_ids(id);
    dp::PreStartContainerResponse out;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    auto st = client()->PreStartContainer(&ctx, req, &out);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }

  // The container: the memory probe (released at once), then one saturating
  // workload per phase, each started when /release/go<phase> appears.
  void start_container(Pod& p, uint64_t within, uint64_t over) {
    std::string script = "cat /etc/ld.so.preload && echo socket=$VGPU_SOCKET && /opt/test/k8s_container_probe " +
                         std::to_string(within) + " " + std::to_string(over) +
                         " /release/now 60000 || exit 9; "
                         "for phase in $(seq 1 " + std::to_string(kPhases) + "); do "
                         "echo waiting=$phase; "
                         "while [ ! -e /release/go$phase ]; do sleep 0.01; done; "
                         "/opt/test/vgpu-workload --duration 4 --kernel-us 1000 --json --label " + p.name +
                         "-$phase || exit 8; done";
    p.podman = run_container("vgpu.io/gpu=" + p.alloc, uuids[1], script);
  }

  bool printed(Pod& p, const std::string& what) { return p.podman->output().find(what) != std::string::npos; }

  double request_of(const Pod& p) { return tenant(p.alloc).spec().compute_request(); }
  // The tenant of `p` on GPU 1, where both pods are.
  api::TenantGpu on_gpu1(const Pod& p) {
    api::Tenant t = tenant(p.alloc);
    for (const auto& g : t.gpus())
      if (g.gpu_uuid() == uuids[1]) return g;
    ADD_FAILURE() << p.alloc << " has no entry for GPU 1";
    return {};
  }

  // Runs phase `phase` in both containers at once; each one's work share.
  std::vector<double> run_phase(int phase) {
    std::string wait = "waiting=" + std::to_string(phase) + "\n";
    for (auto& p : pods)
      EXPECT_TRUE(wait_until([&] { return printed(p, wait) || !p.podman->running(); }, 120s)) << p.podman->output();
    std::ofstream(base + "/release/go" + std::to_string(phase)) << "go";
    // Both processes under their own tenants while they run.
    std::vector<uint32_t> pids;
    for (auto& p : pods) {
      EXPECT_TRUE(wait_until([&] { return processes_of(p.alloc).processes_size() == 1; }, 30s))
          << p.name << ": " << processes_of(p.alloc).DebugString();
      auto ps = processes_of(p.alloc);
      if (ps.processes_size() == 1) {
        EXPECT_EQ(ps.processes(0).tenant(), p.alloc);
        EXPECT_TRUE(ps.processes(0).managed());
        pids.push_back(static_cast<uint32_t>(ps.processes(0).pid()));
      }
    }
    if (pids.size() == 2) {
      EXPECT_NE(pids[0], pids[1]);
    }
    std::vector<double> shares;
    std::string label_end = "-" + std::to_string(phase) + "\"";
    for (auto& p : pods) {
      EXPECT_TRUE(wait_until([&] {
        std::string out = p.podman->output();
        size_t at = out.find("\"label\":\"" + p.name + label_end);
        return (at != std::string::npos && out.find('\n', at) != std::string::npos) || !p.podman->running();
      }, 60s)) << p.podman->output() << p.podman->errors();
      std::string out = p.podman->output();
      size_t at = out.find("{\"label\":\"" + p.name + label_end);
      double s = at == std::string::npos ? NAN : json_number(out.substr(at, out.find('\n', at) - at), "work_share");
      EXPECT_FALSE(std::isnan(s)) << p.name << ": " << out << p.podman->errors();
      shares.push_back(std::isnan(s) ? 0 : s);
    }
    return shares;
  }

  void expect_split(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
    double sum = got[0] + got[1];
    ASSERT_GT(sum, 0.5) << what << ": the GPU was mostly idle";
    std::string table;
    for (size_t i = 0; i < got.size(); ++i)
      table += pods[i].name + ": request " + std::to_string(100 * want[i]) + "% got " +
               std::to_string(100 * got[i] / sum) + "% (work_share " + std::to_string(got[i]) + ")\n";
    std::printf("%s:\n%s", what.c_str(), table.c_str());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(100 * got[i] / sum, 100 * want[i], 10.0) << what << "\n" << table;
    }
  }

  FakeApiServer apiserver;
  FakePodResources pod_resources;
  std::unique_ptr<grpc::Server> pods_server;
  std::string kubeconfig;
  std::vector<Pod> pods;
};

TEST_F(K8sPodmanAnnotations, MemoryQuotaAndComputeRequestFromAnnotationsAreEnforcedByVgpud) {
  apiserver.set_pod("team-a", "trainer", {{"vgpu.io/compute-request", "30%"}});
  apiserver.set_pod("team-a", "server",
                    {{"vgpu.io/compute-request", "10%"}, {"vgpu.io/compute-request.main", "70%"}});
  pods.push_back({"team-a", "trainer", "train", 1, {}, "", nullptr});
  pods.push_back({"team-a", "server", "main", 3, {}, "", nullptr});

  // Every device of the node, as ListAndWatch advertises them (512Mi units:
  // 8 on GPU 0, 4 on GPU 1); best fit puts both pods on GPU 1.
  std::vector<std::string> free = ids(0, {0, 1, 2, 3, 4, 5, 6, 7});
  for (auto& id : ids(1, {0, 1, 2, 3})) free.push_back(id);
  for (auto& p : pods) {
    admit(p, free);
    if (HasFatalFailure()) return;
    for (auto& id : p.devices)
      EXPECT_EQ(vgpu::k8s::parse_device_id(id)->gpu_uuid, uuids[1]) << "not packed onto GPU 1: " << id;
  }
  ASSERT_NE(pods[0].alloc, pods[1].alloc);
  // (The plugin's rounds may apply the annotations before PreStartContainer:
  // PodResources already lists the containers. The test itself never sets a
  // compute request.)
  for (auto& p : pods) pre_start(p);
  if (HasFatalFailure()) return;

  // vgpud: the quota of the units and the request of the annotations.
  EXPECT_EQ(on_gpu1(pods[0]).memory_limit_bytes(), 512 * kMi) << tenant(pods[0].alloc).DebugString();
  EXPECT_EQ(on_gpu1(pods[1]).memory_limit_bytes(), 1536 * kMi);
  EXPECT_TRUE(near(request_of(pods[0]), 0.3)) << request_of(pods[0]);
  EXPECT_TRUE(near(request_of(pods[1]), 0.7)) << request_of(pods[1]) << ": the container's own key wins";
  EXPECT_TRUE(near(on_gpu1(pods[1]).share_target(), 0.7));
  EXPECT_EQ(labels_of(pods[1].alloc).pod(), "server");
  EXPECT_EQ(labels_of(pods[1].alloc).container(), "main");

  // The containers: the probe holds a part of the quota and asks past it.
  std::ofstream(base + "/release/now") << "go";
  start_container(pods[0], 256 * kMi, 512 * kMi);
  start_container(pods[1], 1024 * kMi, 768 * kMi);
  for (auto& p : pods) {
    ASSERT_TRUE(wait_until([&] { return printed(p, "waiting=1") || !p.podman->running(); }, 120s))
        << p.podman->output() << p.podman->errors();
    std::string out = p.podman->output();
    std::printf("container %s:\n%s", p.name.c_str(), out.c_str());
    ASSERT_TRUE(printed(p, "waiting=1")) << p.name << " did not get ready: " << out << p.podman->errors();
    EXPECT_NE(out.find("/usr/lib/vgpu/libvgpu.so"), std::string::npos) << "ld.so.preload not mounted: " << out;
    EXPECT_EQ(field(out, "socket"), "/run/vgpu/vgpud.sock");
    EXPECT_EQ(field(out, "uuid"), uuids[1]);
    EXPECT_EQ(field(out, "total"), std::to_string(on_gpu1(p).memory_limit_bytes()))
        << "cuMemGetInfo total must be the quota";
    EXPECT_EQ(field(out, "within"), "0");
    EXPECT_EQ(field(out, "over"), "2") << "past the quota must be CUDA_ERROR_OUT_OF_MEMORY";
    EXPECT_EQ(on_gpu1(p).allocations_denied(), 1u);
  }

  // Phase 1: both saturate GPU 1; vgpud splits it 30/70.
  auto first = run_phase(1);
  expect_split(first, {0.3, 0.7}, "phase 1 (annotations 30%/70%)");

  // The pods' annotations change while they run: applied live. The server
  // gives up time first, so the trainer's larger request fits when it comes
  // (vgpud refuses requests over the whole GPU).
  apiserver.set_pod("team-a", "server", {{"vgpu.io/compute-request", "10%"}, {"vgpu.io/compute-request.main", "40%"}});
  ASSERT_TRUE(wait_until([&] { return near(request_of(pods[1]), 0.4); }, 20s))
      << request_of(pods[1]) << "\n" << plugin->errors();
  apiserver.set_pod("team-a", "trainer", {{"vgpu.io/compute-request", "60%"}});
  ASSERT_TRUE(wait_until([&] { return near(request_of(pods[0]), 0.6); }, 20s))
      << request_of(pods[0]) << "\n" << plugin->errors();
  EXPECT_TRUE(near(on_gpu1(pods[0]).share_target(), 0.6));
  auto second = run_phase(2);
  expect_split(second, {0.6, 0.4}, "phase 2 (annotations changed live to 60%/40%)");
  EXPECT_TRUE(apiserver.events().empty()) << apiserver.events()[0].dump();

  for (auto& p : pods) EXPECT_EQ(p.podman->wait(60s), 0) << p.podman->output() << p.podman->errors();
  EXPECT_TRUE(wait_until([&] {
    return processes_of(pods[0].alloc).processes_size() == 0 && processes_of(pods[1].alloc).processes_size() == 0;
  }, 20s));
}

}  // namespace
