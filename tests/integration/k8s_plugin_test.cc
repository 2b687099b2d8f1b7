// The device plugin against a fake kubelet (issue 10, phase 1): the test is
// the kubelet's side of both APIs — a Registration server on a private
// kubelet root, and a DevicePlugin client on the socket the plugin
// registers — with a real vgpud on simgpu behind the plugin.
//   registration (version, resource, endpoint) and re-registration after a
//   kubelet restart (device-plugins/ wiped, kubelet.sock re-created);
//   ListAndWatch (memory/unit devices, Unhealthy while vgpud is down);
//   GetPreferredAllocation (best fit on one GPU);
//   Allocate (vgpud tenant with the quota, CDI spec, response; a process on
//   the allocation's socket is that tenant, refused past its quota; replay;
//   bad IDs and vgpud unreachable refused with nothing created);
//   a plugin restart re-creates the CDI specs of live allocations.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "admin.grpc.pb.h"
#include "allocation.h"
#include "pod_resources.h"
#include "deviceplugin.grpc.pb.h"
#include "podresources.grpc.pb.h"
#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::program;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;
namespace api = vgpu::admin::v1;
namespace dp = v1beta1;

constexpr uint64_t kMi = 1ull << 20;

// The kubelet's Registration service, recording what it was sent.
class FakeKubelet final : public dp::Registration::Service {
 public:
  grpc::Status Register(grpc::ServerContext*, const dp::RegisterRequest* in, dp::Empty*) override {
    std::lock_guard<std::mutex> l(mu);
    requests.push_back(*in);
    return grpc::Status::OK;
  }
  size_t count() {
    std::lock_guard<std::mutex> l(mu);
    return requests.size();
  }
  dp::RegisterRequest last() {
    std::lock_guard<std::mutex> l(mu);
    return requests.back();
  }
  std::mutex mu;
  std::vector<dp::RegisterRequest> requests;
};

// The kubelet's PodResources service: lists what the test sets.
class FakePodResources final : public ::v1::PodResourcesLister::Service {
 public:
  grpc::Status List(grpc::ServerContext*, const ::v1::ListPodResourcesRequest*,
                    ::v1::ListPodResourcesResponse* out) override {
    std::lock_guard<std::mutex> l(mu);
    *out = pods;
    return grpc::Status::OK;
  }
  void set(const std::vector<std::vector<std::string>>& containers) {
    std::lock_guard<std::mutex> l(mu);
    pods.Clear();
    auto* pod = pods.add_pod_resources();
    pod->set_name("trainer-0");
    pod->set_namespace_("team-a");
    for (size_t i = 0; i < containers.size(); ++i) {
      auto* c = pod->add_containers();
      c->set_name("c" + std::to_string(i));
      auto* d = c->add_devices();
      d->set_resource_name("vgpu.io/gpu-memory");
      for (auto& id : containers[i]) d->add_device_ids(id);
      auto* other = c->add_devices();  // another plugin's devices are ignored
      other->set_resource_name("nvidia.com/gpu");
      other->add_device_ids("GPU-0");
    }
  }
  std::mutex mu;
  ::v1::ListPodResourcesResponse pods;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class K8sPlugin : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(vgpud.start(&why)) << why;
    root = vgpud.dir() + "/kubelet";
    host = vgpud.dir() + "/host";
    cdi = vgpud.dir() + "/cdi";
    ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
    start_kubelet();
    admin = api::Admin::NewStub(grpc::CreateChannel("unix:" + vgpud.admin_socket(), grpc::InsecureChannelCredentials()));
    api::NodeStatus st;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->GetStatus(&ctx, {}, &st).ok());
    for (auto& g : st.gpus()) uuids.push_back(g.uuid());
    ASSERT_EQ(uuids.size(), 2u);
    start_plugin();
  }
  void TearDown() override {
    if (::testing::Test::HasFailure() && plugin) std::fprintf(stderr, "--- plugin log ---\n%s", plugin->errors().c_str());
    plugin.reset();
    if (kubelet_server) kubelet_server->Shutdown(std::chrono::system_clock::now() + 1s);
  }

  void start_kubelet() {
    mkdir((root + "/device-plugins").c_str(), 0755);
    grpc::ServerBuilder b;
    b.AddListeningPort("unix://" + root + "/device-plugins/kubelet.sock", grpc::InsecureServerCredentials());
    b.RegisterService(&kubelet);
    kubelet_server = b.BuildAndStart();
    ASSERT_TRUE(kubelet_server);
  }
  void stop_kubelet() {
    kubelet_server->Shutdown(std::chrono::system_clock::now() + 1s);
    kubelet_server.reset();
  }

  void start_plugin(const std::vector<std::string>& extra = {}) {
    size_t before = kubelet.count();
    std::vector<std::string> argv{vgpu::test::bin_dir() + "/vgpu-device-plugin", "--kubelet-root", root,
                                  "--admin-socket", vgpud.admin_socket(), "--cdi-dir", cdi, "--host-dir", host,
                                  "--memory-unit", "512Mi", "--health-interval", "100ms", "--gc-interval",
                                  "100ms", "--gc-grace", "300ms"};
    argv.insert(argv.end(), extra.begin(), extra.end());  // later flags win
    plugin = std::make_unique<Child>(argv, std::map<std::string, std::string>{});
    ASSERT_TRUE(wait_until([&] { return kubelet.count() > before || !plugin->running(); }, 20s)) << plugin->errors();
    ASSERT_TRUE(plugin->running()) << plugin->errors();
  }

  // Serves `pods` as the kubelet's PodResources API.
  std::unique_ptr<grpc::Server> serve_pod_resources(FakePodResources& pods) {
    mkdir((root + "/pod-resources").c_str(), 0755);
    grpc::ServerBuilder sb;
    sb.AddListeningPort("unix://" + root + "/pod-resources/kubelet.sock", grpc::InsecureServerCredentials());
    sb.RegisterService(&pods);
    return sb.BuildAndStart();
  }

  api::AllocationLabels labels_of(const std::string& alloc) {
    api::ListAllocationsResponse all;
    grpc::ClientContext c;
    EXPECT_TRUE(admin->ListAllocations(&c, {}, &all).ok());
    for (auto& a : all.allocations())
      if (a.spec().name() == alloc) return a.spec().labels();
    ADD_FAILURE() << "no allocation " << alloc;
    return {};
  }

  std::unique_ptr<dp::DevicePlugin::Stub> client() {
    std::string sock = root + "/device-plugins/" + kubelet.last().endpoint();
    return dp::DevicePlugin::NewStub(grpc::CreateChannel("unix://" + sock, grpc::InsecureChannelCredentials()));
  }

  grpc::Status allocate(const std::vector<std::vector<std::string>>& containers, dp::AllocateResponse* out) {
    dp::AllocateRequest req;
    for (auto& ids : containers) {
      auto* c = req.add_container_requests();
      for (auto& id : ids) c->add_devices_ids(id);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    return client()->Allocate(&ctx, req, out);
  }

  size_t allocations_in_vgpud() {
    api::ListAllocationsResponse all;
    grpc::ClientContext ctx;
    EXPECT_TRUE(admin->ListAllocations(&ctx, {}, &all).ok());
    return static_cast<size_t>(all.allocations_size());
  }

  std::vector<std::string> ids(int gpu, std::initializer_list<int> chunks) {
    std::vector<std::string> v;
    for (int c : chunks) v.push_back(vgpu::k8s::device_id(uuids[static_cast<size_t>(gpu)], static_cast<uint64_t>(c)));
    return v;
  }

  VgpudFixture vgpud{"  []\n", {{"SIMGPU_DEVICES", "2"}, {"SIMGPU_MEMORY", "4Gi,2Gi"}}};
  std::string root, host, cdi;
  FakeKubelet kubelet;
  std::unique_ptr<grpc::Server> kubelet_server;
  std::unique_ptr<api::Admin::Stub> admin;
  std::vector<std::string> uuids;
  std::unique_ptr<Child> plugin;
};

TEST_F(K8sPlugin, RegistersAndAdvertisesOneDevicePerMemoryUnit) {
  dp::RegisterRequest r = kubelet.last();
  EXPECT_EQ(r.version(), "v1beta1");
  EXPECT_EQ(r.resource_name(), "vgpu.io/gpu-memory");
  EXPECT_TRUE(r.options().get_preferred_allocation_available());
  EXPECT_TRUE(r.options().pre_start_required());
  EXPECT_EQ(r.endpoint().find('/'), std::string::npos);
  EXPECT_EQ(access((root + "/device-plugins/" + r.endpoint()).c_str(), F_OK), 0);

  dp::DevicePluginOptions o;
  grpc::ClientContext c1;
  ASSERT_TRUE(client()->GetDevicePluginOptions(&c1, {}, &o).ok());
  EXPECT_TRUE(o.get_preferred_allocation_available());

  grpc::ClientContext c2;
  auto stream = client()->ListAndWatch(&c2, {});
  dp::ListAndWatchResponse devs;
  ASSERT_TRUE(stream->Read(&devs));
  ASSERT_EQ(devs.devices_size(), 8 + 4);  // 4Gi and 2Gi in 512Mi units
  for (auto& d : devs.devices()) {
    EXPECT_EQ(d.health(), "Healthy");
    EXPECT_LE(d.id().size(), 63u);
  }
  c2.TryCancel();
}

TEST_F(K8sPlugin, PreferredAllocationIsBestFitOnOneGpu) {
  dp::PreferredAllocationRequest req;
  auto* c = req.add_container_requests();
  for (int g = 0; g < 2; ++g)
    for (auto& id : ids(g, {0, 1, 2, 3})) c->add_available_deviceids(id);
  for (auto& id : ids(0, {4, 5, 6, 7})) c->add_available_deviceids(id);
  c->set_allocation_size(3);
  dp::PreferredAllocationResponse out;
  grpc::ClientContext ctx;
  ASSERT_TRUE(client()->GetPreferredAllocation(&ctx, req, &out).ok());
  ASSERT_EQ(out.container_responses_size(), 1);
  std::vector<std::string> got(out.container_responses(0).deviceids().begin(), out.container_responses(0).deviceids().end());
  EXPECT_EQ(got, ids(1, {0, 1, 2}));  // GPU 1 has 4 free, the tightest that holds 3
}

TEST_F(K8sPlugin, AllocateCreatesTheTenantTheCdiSpecAndTheResponse) {
  auto devs = ids(0, {0, 1, 2});  // 1.5Gi on GPU 0
  dp::AllocateResponse resp;
  auto st = allocate({devs}, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.container_responses_size(), 1);
  const auto& r = resp.container_responses(0);
  std::string alloc = vgpu::k8s::allocation_id(devs);

  // vgpud has the tenant with the quota on GPU 0 only.
  api::Tenant t;
  api::GetTenantRequest g;
  g.set_name(alloc);
  grpc::ClientContext ctx;
  ASSERT_TRUE(admin->GetTenant(&ctx, g, &t).ok()) << alloc;
  EXPECT_EQ(t.gpus(0).memory_limit_bytes(), 1536 * kMi);
  EXPECT_EQ(t.gpus(1).memory_limit_bytes(), 0u);

  // The response: CDI devices, env and mounts for runtimes without CDI.
  std::vector<std::string> cdi_names;
  for (auto& d : r.cdi_devices()) cdi_names.push_back(d.name());
  EXPECT_EQ(cdi_names, (std::vector<std::string>{"vgpu.io/gpu=" + alloc, "nvidia.com/gpu=" + uuids[0]}));
  EXPECT_EQ(r.envs().at("VGPU_SOCKET"), "/run/vgpu/vgpud.sock");
  EXPECT_EQ(r.envs().at("NVIDIA_VISIBLE_DEVICES"), uuids[0]);
  std::string sockdir = host + "/sockets/" + alloc;
  ASSERT_EQ(r.mounts_size(), 3);
  EXPECT_EQ(r.mounts(0).host_path(), sockdir);
  EXPECT_EQ(r.mounts(0).container_path(), "/run/vgpu");
  EXPECT_EQ(r.mounts(1).host_path(), host + "/lib/libvgpu.so");
  EXPECT_EQ(r.mounts(2).container_path(), "/etc/ld.so.preload");
  EXPECT_EQ(slurp(host + "/ld.so.preload"), "/usr/lib/vgpu/libvgpu.so\n");

  // The CDI spec: valid JSON with the same edits.
  auto spec = nlohmann::json::parse(slurp(cdi + "/vgpu.io-gpu-" + alloc + ".json"));
  EXPECT_EQ(spec["cdiVersion"], "0.5.0");
  EXPECT_EQ(spec["kind"], "vgpu.io/gpu");
  EXPECT_EQ(spec["devices"][0]["name"], alloc);
  EXPECT_EQ(spec["devices"][0]["containerEdits"]["env"][0], "VGPU_SOCKET=/run/vgpu/vgpud.sock");
  EXPECT_EQ(spec["devices"][0]["containerEdits"]["mounts"][0]["hostPath"], sockdir);

  // A process on the allocation's socket is that tenant: 1Gi fits, 2Gi does not.
  auto env = vgpud.tenant_env("");
  env["VGPU_SOCKET"] = sockdir + "/vgpud.sock";
  Child ok({program("vgpud_alloc_retry"), std::to_string(1024 * kMi), "0"}, env);
  EXPECT_EQ(ok.wait(30s), 0) << ok.output() << ok.errors();
  Child over({program("vgpud_alloc_retry"), std::to_string(2048 * kMi), "0"}, env);
  EXPECT_EQ(over.wait(30s), 3) << "past the quota must be refused: " << over.output() << over.errors();

  // The kubelet may replay: the same allocation.
  dp::AllocateResponse again;
  ASSERT_TRUE(allocate({{devs[2], devs[0], devs[1]}}, &again).ok());
  EXPECT_EQ(again.container_responses(0).cdi_devices(0).name(), "vgpu.io/gpu=" + alloc);
  EXPECT_EQ(allocations_in_vgpud(), 1u);

  // A plugin restart re-creates the CDI spec of the live allocation.
  plugin.reset();
  unlink((cdi + "/vgpu.io-gpu-" + alloc + ".json").c_str());
  start_plugin();
  EXPECT_TRUE(wait_until([&] { return access((cdi + "/vgpu.io-gpu-" + alloc + ".json").c_str(), F_OK) == 0; }, 10s));
}

TEST_F(K8sPlugin, BadDeviceIdsAreRefusedAndNothingIsCreated) {
  struct Case {
    std::vector<std::vector<std::string>> containers;
    const char* expect;
  };
  std::vector<Case> cases = {
      {{{"not-a-device"}}, "not of the form"},
      {{{"GPU-00000000-0000-0000-0000-000000000000-m0"}}, "no GPU"},
      {{ids(1, {4})}, "not advertised"},  // GPU 1 has chunks 0..3
      {{ids(0, {0}), {"junk-m01"}}, "leading zeros"},  // the first container's allocation is undone
  };
  for (auto& c : cases) {
    dp::AllocateResponse resp;
    auto st = allocate(c.containers, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    EXPECT_NE(st.error_message().find(c.expect), std::string::npos) << st.error_message();
  }
  EXPECT_EQ(allocations_in_vgpud(), 0u);
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + cdi + "' 2>/dev/null)\"").c_str()), 0) << "a CDI spec was left";
}

TEST_F(K8sPlugin, KubeletRestartLeadsToReRegistration) {
  size_t before = kubelet.count();
  std::string endpoint = kubelet.last().endpoint();
  stop_kubelet();
  ASSERT_EQ(std::system(("rm -rf '" + root + "/device-plugins'").c_str()), 0);
  start_kubelet();
  ASSERT_TRUE(wait_until([&] { return kubelet.count() > before; }, 15s)) << "no re-registration";
  EXPECT_EQ(kubelet.last().endpoint(), endpoint);
  ASSERT_TRUE(wait_until([&] { return access((root + "/device-plugins/" + endpoint).c_str(), F_OK) == 0; }, 5s));
  grpc::ClientContext ctx;
  dp::DevicePluginOptions o;
  EXPECT_TRUE(client()->GetDevicePluginOptions(&ctx, {}, &o).ok());
}

TEST_F(K8sPlugin, VgpudDownMakesDevicesUnhealthyAndAllocateFailClearly) {
  grpc::ClientContext ctx;
  auto stream = client()->ListAndWatch(&ctx, {});
  dp::ListAndWatchResponse devs;
  ASSERT_TRUE(stream->Read(&devs));
  ASSERT_EQ(devs.devices(0).health(), "Healthy");
  vgpud.kill_daemon();
  bool unhealthy = false;
  while (!unhealthy && stream->Read(&devs)) unhealthy = devs.devices(0).health() == "Unhealthy";
  EXPECT_TRUE(unhealthy);
  for (auto& d : devs.devices()) EXPECT_EQ(d.health(), "Unhealthy");

  dp::AllocateResponse resp;
  auto st = allocate({ids(0, {0})}, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("vgpud is unreachable"), std::string::npos) << st.error_message();
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + cdi + "' 2>/dev/null)\"").c_str()), 0) << "a CDI spec was left";

  std::string why;
  ASSERT_TRUE(vgpud.start(&why)) << why;
  bool healthy = false;
  while (!healthy && stream->Read(&devs)) healthy = devs.devices(0).health() == "Healthy";
  EXPECT_TRUE(healthy);
  ctx.TryCancel();
}

}  // namespace

namespace {

bool spec_exists(const std::string& cdi, const std::string& alloc) {
  return access((cdi + "/vgpu.io-gpu-" + alloc + ".json").c_str(), F_OK) == 0;
}

TEST_F(K8sPlugin, PodResourcesLabelsHeldAllocationsAndCollectsTheOthersAfterTheGrace) {
  // Without PodResources, nothing is collected.
  auto held = ids(0, {0, 1});
  auto dropped = ids(0, {2});
  dp::AllocateResponse resp;
  ASSERT_TRUE(allocate({held}, &resp).ok());
  ASSERT_TRUE(allocate({dropped}, &resp).ok());
  std::string a = vgpu::k8s::allocation_id(held), b = vgpu::k8s::allocation_id(dropped);
  std::this_thread::sleep_for(1s);  // over three grace periods: nothing may go
  EXPECT_EQ(allocations_in_vgpud(), 2u) << "collected without PodResources";

  FakePodResources pods;
  pods.set({held});
  auto server = serve_pod_resources(pods);
  ASSERT_TRUE(server);
  ASSERT_TRUE(wait_until([&] { return allocations_in_vgpud() == 1u; }, 10s)) << "the unheld allocation stayed";
  EXPECT_FALSE(spec_exists(cdi, b));
  EXPECT_NE(access((host + "/sockets/" + b).c_str(), F_OK), 0) << "its socket directory stayed";
  EXPECT_TRUE(spec_exists(cdi, a));
  api::GetTenantRequest g;
  g.set_name(a);
  api::Tenant t;
  grpc::ClientContext ctx;
  EXPECT_TRUE(admin->GetTenant(&ctx, g, &t).ok()) << "the held allocation was collected";
  // ... and it carries the names of the container that holds it.
  EXPECT_TRUE(wait_until([&] { return labels_of(a).pod() == "trainer-0"; }, 10s));
  EXPECT_EQ(labels_of(a).namespace_(), "team-a");
  EXPECT_EQ(labels_of(a).container(), "c0");

  // The pod goes: its allocation follows.
  pods.set({});
  EXPECT_TRUE(wait_until([&] { return allocations_in_vgpud() == 0u; }, 10s));
  EXPECT_FALSE(spec_exists(cdi, a));  // removed before the tenant
  server->Shutdown(std::chrono::system_clock::now() + 1s);
}

TEST(K8sPodResources, LiveAllocationsAreTheDeviceSetsOfOurResource) {
  FakePodResources pods;
  std::vector<std::string> c0 = {"GPU-a-m1", "GPU-a-m0"}, c1 = {"GPU-b-m3"};
  pods.set({c0, c1});
  auto live = vgpu::k8s::live_allocations(pods.pods, "vgpu.io/gpu-memory");
  ASSERT_EQ(live.size(), 2u);
  auto& ref = live.at(vgpu::k8s::allocation_id({"GPU-a-m0", "GPU-a-m1"}));
  EXPECT_EQ(ref.ns, "team-a");
  EXPECT_EQ(ref.pod, "trainer-0");
  EXPECT_EQ(ref.container, "c0");
  EXPECT_EQ(live.at(vgpu::k8s::allocation_id(c1)).container, "c1");
  EXPECT_TRUE(vgpu::k8s::live_allocations(pods.pods, "example.com/gpu-memory").empty());
}

}  // namespace

namespace {

TEST_F(K8sPlugin, StopsOnSigtermAndRemovesItsSocket) {
  std::string sock = root + "/device-plugins/" + kubelet.last().endpoint();
  ASSERT_EQ(access(sock.c_str(), F_OK), 0);
  plugin->kill(SIGTERM);
  EXPECT_EQ(plugin->wait(10s), 0) << plugin->errors();
  EXPECT_NE(access(sock.c_str(), F_OK), 0) << "socket left behind";
}

TEST(K8sPluginFlags, BadFlagsExit2NamingTheFlag) {
  Child bad({vgpu::test::bin_dir() + "/vgpu-device-plugin", "--memory-unit", "lots"}, {});
  EXPECT_EQ(bad.wait(10s), 2);
  EXPECT_NE(bad.errors().find("--memory-unit"), std::string::npos) << bad.errors();
  Child help({vgpu::test::bin_dir() + "/vgpu-device-plugin", "--help"}, {});
  EXPECT_EQ(help.wait(10s), 0);
  EXPECT_NE(help.output().find("--kubelet-root"), std::string::npos) << help.output();
}

}  // namespace

namespace {

TEST_F(K8sPlugin, PreStartContainerLabelsTheAllocationBeforeTheContainerStarts) {
  plugin.reset();
  start_plugin({"--gc-interval", "0"});  // no reconciliation rounds: only PreStartContainer labels
  FakePodResources pods;
  auto devs = ids(1, {0, 1});
  pods.set({devs});
  auto server = serve_pod_resources(pods);
  ASSERT_TRUE(server);
  dp::AllocateResponse resp;
  ASSERT_TRUE(allocate({devs}, &resp).ok());
  std::string alloc = vgpu::k8s::allocation_id(devs);
  EXPECT_EQ(labels_of(alloc).pod(), "");

  dp::PreStartContainerRequest req;
  for (auto& id : devs) req.add_devices_ids(id);
  dp::PreStartContainerResponse out;
  grpc::ClientContext ctx;
  ASSERT_TRUE(client()->PreStartContainer(&ctx, req, &out).ok());
  auto l = labels_of(alloc);
  EXPECT_EQ(l.namespace_(), "team-a");
  EXPECT_EQ(l.pod(), "trainer-0");
  EXPECT_EQ(l.container(), "c0");

  // A container PodResources does not list still starts.
  dp::PreStartContainerRequest unknown;
  unknown.add_devices_ids(ids(0, {7})[0]);
  grpc::ClientContext ctx2;
  EXPECT_TRUE(client()->PreStartContainer(&ctx2, unknown, &out).ok());
  server->Shutdown(std::chrono::system_clock::now() + 1s);
}

}  // namespace
