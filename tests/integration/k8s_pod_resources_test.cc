// The device plugin and the kubelet's PodResources API (issue 10): a fake
// PodResources server (tests/support/k8s_fake_kubelet.h) lists containers and
// their device IDs; the plugin labels the allocations containers hold (in
// PreStartContainer at once, and in its reconciliation rounds) and removes
// those no container has held for the grace period.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "k8s_fake_kubelet.h"
#include "pod_resources.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::program;
using vgpu::test::wait_until;
using vgpu::test::k8s::FakePodResources;
using vgpu::test::k8s::K8sPlugin;
using vgpu::test::k8s::kMi;
using vgpu::test::k8s::slurp;
namespace api = vgpu::admin::v1;
namespace dp = v1beta1;

class K8sPodResourcesPlugin : public K8sPlugin {};

bool spec_exists(const std::string& cdi, const std::string& alloc) {
  return access((cdi + "/vgpu.io-gpu-" + alloc + ".json").c_str(), F_OK) == 0;
}


TEST_F(K8sPodResourcesPlugin, PodResourcesLabelsHeldAllocationsAndCollectsTheOthersAfterTheGrace) {
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

TEST_F(K8sPodResourcesPlugin, PreStartContainerLabelsTheAllocationBeforeTheContainerStarts) {
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
