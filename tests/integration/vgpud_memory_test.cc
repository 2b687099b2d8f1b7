// vgpud's tenant-wide memory ledger, end to end on simgpu: the quota is one
// budget for all processes of a tenant — never above it, never a denial below
// it — and memory comes back when its holder exits.
#include <gtest/gtest.h>

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
using vgpu::test::wait_until;

constexpr unsigned long long kGi = 1ull << 30;

// A process of `token` that allocates `count` x `size`, holds them while it
// launches a few kernels a second for `seconds`, and reports.
std::unique_ptr<Child> holder(VgpudFixture& f, const std::string& token, const std::string& size, int count,
                              const std::string& seconds) {
  return f.run({bin_dir() + "/vgpu-workload", "--alloc-size", size, "--alloc-count", std::to_string(count), "--hold",
                "--rate", "20", "--duration", seconds, "--json"},
               token);
}

bool announced(Child& c) { return c.errors().find("; launching") != std::string::npos; }

// N of "allocations N/M ok" in a workload's progress line; -1 if absent.
int allocated(Child& c) {
  std::string e = c.errors();
  size_t at = e.find("allocations ");
  return at == std::string::npos ? -1 : std::atoi(e.c_str() + at + 12);
}

TEST(VgpudMemory, TwoProcessesOfOneTenantShareOneQuota) {
  VgpudFixture f("  - {name: solo, token: solo-tenant-token, memory: 2Gi}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto a = holder(f, "solo-tenant-token", "1536Mi", 1, "3");
  auto b = holder(f, "solo-tenant-token", "1536Mi", 1, "3");
  ASSERT_TRUE(wait_until([&] { return announced(*a) && announced(*b); }, 30s)) << a->errors() << b->errors();
  ASSERT_TRUE(a->running() && b->running()) << "both must hold at the same time";
  // 1.5Gi + 1.5Gi > 2Gi: exactly one of them got it.
  EXPECT_EQ(allocated(*a) + allocated(*b), 1) << a->errors() << b->errors();
  Child& owner = allocated(*a) == 1 ? *a : *b;
  ASSERT_EQ(owner.wait(30s), 0) << owner.errors();
  // The holder is gone: its 1.5Gi is the tenant's again.
  auto c = f.run({program("vgpud_alloc_retry"), std::to_string(1536ull << 20), "0"}, "solo-tenant-token");
  EXPECT_EQ(c->wait(30s), 0) << c->output() << c->errors();
  EXPECT_EQ(a->wait(30s), 0) << a->errors();
  EXPECT_EQ(b->wait(30s), 0) << b->errors();
}

TEST(VgpudMemory, RacingProcessesGetExactlyTheQuota) {
  VgpudFixture f("  - {name: racer, token: racer-tenant-token, memory: 1Gi}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  // 6 processes x 2 x 256Mi = 3Gi asked at once against 1Gi: exactly 4 fit.
  std::vector<std::unique_ptr<Child>> procs;
  for (int i = 0; i < 6; ++i) procs.push_back(holder(f, "racer-tenant-token", "256Mi", 2, "3"));
  auto all_announced = [&] {
    for (auto& p : procs)
      if (!announced(*p)) return false;
    return true;
  };
  ASSERT_TRUE(wait_until(all_announced, 30s));
  int ok = 0;
  std::string report;
  for (auto& p : procs) {
    ASSERT_TRUE(p->running()) << "all must hold at the same time";
    ok += allocated(*p);
    report += p->errors();
  }
  EXPECT_EQ(ok, 4) << report;
  // Once they are all gone, the whole quota is free again, to the byte.
  for (auto& p : procs) EXPECT_EQ(p->wait(30s), 0) << p->errors();
  auto whole = f.run({program("vgpud_alloc_retry"), std::to_string(kGi), "0"}, "racer-tenant-token");
  EXPECT_EQ(whole->wait(30s), 0) << whole->output() << whole->errors();
  auto more = f.run({program("vgpud_alloc_retry"), std::to_string(kGi + 1), "0"}, "racer-tenant-token");
  EXPECT_EQ(more->wait(30s), 3) << more->output() << more->errors();
}

}  // namespace
