// A fake kubelet for the device plugin's tests (issue 10): the kubelet's
// side of its APIs -- a Registration server and a PodResources server on a
// private kubelet root, a DevicePlugin client on the socket the plugin
// registers -- with a real vgpud on simgpu (two GPUs, 4Gi and 2Gi) and
// build/bin/vgpu-device-plugin started by pid (512Mi devices, 100 ms health
// and reconciliation, 300 ms grace). Header-only: included by the k8s_*
// tests, which link vgpu_k8s (tests/CMakeLists.txt).
#pragma once

#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "admin.grpc.pb.h"
#include "allocation.h"
#include "deviceplugin.grpc.pb.h"
#include "podresources.grpc.pb.h"
#include "vgpud_fixture.h"

namespace vgpu::test::k8s {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::program;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;
namespace api = vgpu::admin::v1;
namespace dp = v1beta1;

inline constexpr uint64_t kMi = 1ull << 20;

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

inline std::string slurp(const std::string& path) {
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

}  // namespace vgpu::test::k8s
