// The device plugin against a fake kubelet (issue 10, tests/support/
// k8s_fake_kubelet.h), with a real vgpud on simgpu behind it:
//   registration (version, resource, endpoint) and re-registration after a
//   kubelet restart (device-plugins/ wiped, kubelet.sock re-created);
//   ListAndWatch (memory/unit devices, Unhealthy while vgpud is down);
//   GetPreferredAllocation (best fit on one GPU);
//   Allocate (vgpud tenant with the quota, CDI spec, response; a process on
//   the allocation's socket is that tenant, refused past its quota; replay;
//   bad IDs and vgpud unreachable refused with nothing created);
//   a plugin restart re-creates the CDI specs of live allocations; SIGTERM
//   and bad flags.
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
  EXPECT_EQ(r.mounts(1).host_path(), host + "/lib");
  EXPECT_EQ(r.mounts(1).container_path(), "/usr/lib/vgpu");
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
