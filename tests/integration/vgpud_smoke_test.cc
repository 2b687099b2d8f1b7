// vgpud end to end, the basics: a tenant's process registers and runs under
// its lease; a process without a valid token gets nothing; a bad config is
// refused with file, line and key.
#include <gtest/gtest.h>

#include <cmath>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::bin_dir;
using vgpu::test::Child;
using vgpu::test::json_number;
using vgpu::test::VgpudFixture;

const char* kTenants =
    "  - {name: alpha, token: alpha-tenant-token-1, memory: 2Gi, compute: {request: 50%}}\n"
    "  - {name: beta, token: beta-tenant-token-1, memory: 1Gi, compute: {request: 50%}}\n";

TEST(VgpudSmoke, RegisteredProcessRunsKernelsWithinItsQuota) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto w = f.run({bin_dir() + "/vgpu-workload", "--duration", "1", "--alloc-size", "1Gi", "--alloc-count", "3",
                  "--hold", "--json"},
                 "alpha-tenant-token-1");
  ASSERT_EQ(w->wait(60s), 0) << w->errors();
  EXPECT_GT(json_number(w->output(), "kernels_completed"), 10);
  // Two 1Gi allocations fit the 2Gi quota, the third does not.
  EXPECT_EQ(json_number(w->output(), "ok"), 2) << w->output();
  EXPECT_EQ(json_number(w->output(), "failed"), 1) << w->output();
}

TEST(VgpudSmoke, WrongTokenGetsNothing) {
  VgpudFixture f(kTenants);
  ASSERT_TRUE(f.start());
  auto w = f.run({bin_dir() + "/vgpu-workload", "--count", "5", "--alloc-size", "1Mi", "--json"}, "not-a-token");
  w->wait(60s);
  EXPECT_EQ(json_number(w->output(), "ok"), 0) << w->output();
  EXPECT_EQ(json_number(w->output(), "kernels_completed"), 0) << w->output();
  EXPECT_NE(w->errors().find("invalid VGPU_TOKEN"), std::string::npos) << w->errors();
}

TEST(VgpudSmoke, BadConfigIsRefusedWithFileLineAndKey) {
  VgpudFixture f("  - {name: alpha, memory: 2Gx}\n");
  std::string why;
  ASSERT_FALSE(f.start(&why));
  EXPECT_NE(why.find(f.config_path() + ":5: tenants[0].memory: '2Gx' is not a size"), std::string::npos) << why;
}

}  // namespace

namespace {

// A tenant confined to GPU 1 that launches on GPU 0 (a container shown every
// GPU, e.g. without NVIDIA's CDI): the launch is refused at once with
// CUDA_ERROR_NOT_PERMITTED, never left waiting for a lease vgpud will not give.
TEST(VgpudSmoke, LaunchOnAGpuOutsideTheTenantsDevicesIsRefusedNotHung) {
  vgpu::test::VgpudFixture f("  - {name: one, token: only-gpu-one-token, memory: 1Gi, devices: [\"1\"]}\n",
                             {{"SIMGPU_DEVICES", "2"}});
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto w = f.run({vgpu::test::bin_dir() + "/vgpu-workload", "--device", "0", "--count", "3", "--json"},
                 "only-gpu-one-token");
  int status = w->wait(std::chrono::seconds(30));
  ASSERT_NE(status, -1) << "the launch on a GPU outside the tenant's devices hung";
  EXPECT_NE(status, 0) << w->output();
  std::string said = w->output() + w->errors();
  EXPECT_NE(said.find("CUDA_ERROR_NOT_PERMITTED"), std::string::npos) << said;
  // The same tenant on its own GPU runs.
  auto ok = f.run({vgpu::test::bin_dir() + "/vgpu-workload", "--device", "1", "--count", "3", "--json"},
                  "only-gpu-one-token");
  EXPECT_EQ(ok->wait(std::chrono::seconds(30)), 0) << ok->errors();
}

}  // namespace
