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
// The podman fixture (tests/support/k8s_podman.h) has the rootfs, the
// isolation and why `--pid=host` and CUDA_VISIBLE_DEVICES. This test lets
// the plugin write to /var/run/cdi under a domain unique to it
// (`t<pid>.vgpu.test`); k8s_podman_annotations_test.cc runs the whole path
// with the default domain and the compute annotations.
//
// Skips, with the reason, when not root or when podman or runc is missing;
// CI runs as root with both installed (scripts/install-deps.sh).
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdio>

#include "k8s_podman.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::wait_until;
using vgpu::test::k8s::field;
using vgpu::test::k8s::kMi;
namespace api = vgpu::admin::v1;
namespace dp = v1beta1;

class K8sPodmanTestDomain : public vgpu::test::k8s::K8sPodman {
 protected:
  void SetUp() override {
    K8sPodman::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    system_cdi_with_test_domain();
  }

  // `podman run` of the probe with the allocation's CDI device.
  std::unique_ptr<Child> run_probe(const std::string& alloc, const std::string& gpu_uuid, uint64_t within,
                                   uint64_t over, const std::string& release) {
    return run_container(domain + "/gpu=" + alloc, gpu_uuid,
                         "cat /etc/ld.so.preload && echo socket=$VGPU_SOCKET && exec "
                         "/opt/test/k8s_container_probe " +
                             std::to_string(within) + " " + std::to_string(over) + " /release/" + release + " 60000");
  }

  // Allocates `devs` through the plugin (the kubelet's Allocate) and checks
  // the CDI spec is where podman reads it.
  std::string allocate_for_container(const std::vector<std::string>& devs) {
    dp::AllocateResponse resp;
    auto st = allocate({devs}, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::string alloc = vgpu::k8s::allocation_id(devs);
    EXPECT_EQ(resp.container_responses(0).cdi_devices(0).name(), domain + "/gpu=" + alloc);
    EXPECT_EQ(access((std::string(kSystemCdiDir) + "/" + domain + "-gpu-" + alloc + ".json").c_str(), F_OK), 0);
    return alloc;
  }
};

TEST_F(K8sPodmanTestDomain, ContainersGetTheirAllocationsTenantQuotaAndComputeRequest) {
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
