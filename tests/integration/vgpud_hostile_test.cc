// vgpud against hostile tenants that hold a valid token: each attack of
// issue #8 that went through tenant-writable state or the lease protocol.
//  - the control block (limits, leases) cannot be written by any means;
//  - scribbling over the whole ledger, or holding its lock, neither crashes
//    nor stalls vgpud: another tenant still registers within 1 s;
//  - a holder that ignores Revoke loses the lease by the revoke deadline;
//  - a deleted tenant's process is told why, and loses its lease at once.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>

#include "raw_client.h"
#include "vgpu/protocol.h"
#include "vgpu/tenant_shm.h"
#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::bench::RawClient;
using vgpu::test::program;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

const char* kTenants =
    "  - {name: mallory, token: mallory-token-0001, memory: 1Gi, compute: {request: 25%}}\n"
    "  - {name: alice, token: alice-token-00001, memory: 1Gi, compute: {request: 25%}}\n";

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// Runs vgpuctl against `f`'s admin socket; returns its exit code, output in *out.
int vgpuctl(VgpudFixture& f, std::vector<std::string> args, std::string* out = nullptr) {
  args.insert(args.begin(), vgpu::test::bin_dir() + "/vgpuctl");
  args.push_back("--socket=" + f.admin_socket());
  vgpu::test::Child c(args, {});
  int code = c.wait(30s);
  if (out) *out = c.output() + c.errors();
  return code;
}

// Registers a raw client of `token`; fails the test if vgpud does not welcome it.
std::unique_ptr<RawClient> join(VgpudFixture& f, const std::string& token, double* ms = nullptr) {
  auto c = std::make_unique<RawClient>();
  std::string why;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c->register_as(f.socket(), token, &why)) << why;
  if (ms) *ms = ms_since(t0);
  return c;
}

TEST(VgpudHostile, ControlBlockCannotBeWrittenFromAProcess) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto c = join(f, "mallory-token-0001");
  int fd = c->control_fd();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(mmap(nullptr, sizeof(vgpu::TenantControl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
  void* ro = mmap(nullptr, sizeof(vgpu::TenantControl), PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(ro, MAP_FAILED);
  EXPECT_NE(mprotect(ro, sizeof(vgpu::TenantControl), PROT_READ | PROT_WRITE), 0);
  uint32_t granted = vgpu::kLeaseGranted;
  EXPECT_LT(pwrite(fd, &granted, sizeof granted, 0), 0);
  EXPECT_NE(ftruncate(fd, 0), 0);
  EXPECT_NE(ftruncate(c->ledger_fd(), 0), 0) << "a shrunk ledger would fault vgpud's mapping";
  EXPECT_NE(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), 0) << "seals are sealed";
  munmap(ro, sizeof(vgpu::TenantControl));
  // The same from inside a hooked process, by every route it has.
  auto p = f.run({program("hostile_tenant"), "control"}, "mallory-token-0001");
  ASSERT_EQ(p->wait(20s), 0) << p->errors();
  EXPECT_NE(p->output().find("control 0 writes succeeded"), std::string::npos) << p->output();
}

TEST(VgpudHostile, ScribbledLedgerNeitherCrashesNorMisleadsVgpud) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  std::mt19937_64 rng(8);
  for (int round = 0; round < 4; ++round) {
    auto m = join(f, "mallory-token-0001");
    auto* led = reinterpret_cast<unsigned char*>(m->shm().led);
    // Everything a tenant can write: all ones, then random bytes (the mutex too).
    for (size_t i = 0; i < sizeof(vgpu::TenantLedger); ++i)
      led[i] = round == 0 ? 0xff : static_cast<unsigned char>(rng());
    m.reset();  // disconnect: vgpud releases the record
    double ms = 0;
    auto a = join(f, "alice-token-00001", &ms);
    EXPECT_LT(ms, 1000) << "registration of another tenant after a scribbled ledger";
    ASSERT_TRUE(f.daemon_running()) << f.daemon_log();
  }
  // Status still answers with values a GPU can hold.
  std::string out;
  ASSERT_EQ(vgpuctl(f, {"tenant", "get", "mallory", "-o", "json"}, &out), 0) << out;
  double used = vgpu::test::json_number(out, "memory_used_bytes");
  EXPECT_LE(used, static_cast<double>(1ull << 50)) << out;
}

TEST(VgpudHostile, HeldLedgerLockDoesNotStallVgpud) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto m = join(f, "mallory-token-0001");
  ASSERT_EQ(pthread_mutex_lock(&m->shm().led->lock), 0);
  double ms = 0;
  auto a = join(f, "alice-token-00001", &ms);
  EXPECT_LT(ms, 1000);
  auto m2 = join(f, "mallory-token-0001", &ms);  // same tenant: registration takes no tenant lock
  EXPECT_LT(ms, 1000);
  m.reset();  // disconnect while holding the lock (the mutex stays taken: robust, owner alive)
  auto a2 = join(f, "alice-token-00001", &ms);
  EXPECT_LT(ms, 1000);
  EXPECT_TRUE(f.daemon_running());
}

TEST(VgpudHostile, IgnoredRevokeLosesTheLeaseByTheDeadline) {
  VgpudFixture f(kTenants, {}, "scheduler: {quantum: 10ms}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto m = join(f, "mallory-token-0001");
  ASSERT_TRUE(m->request_lease(0));
  ASSERT_TRUE(wait_until([&] { return vgpu::lease_granted(m->lease(0).state.load()); }, 5s));
  m->touch(0);
  auto a = join(f, "alice-token-00001");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(a->request_lease(0));
  // mallory never answers Revoke.
  ASSERT_TRUE(wait_until([&] { return vgpu::lease_granted(a->lease(0).state.load()); }, 5s));
  double ms = ms_since(t0);
  EXPECT_LT(ms, 500) << "alice waited " << ms << " ms for a lease mallory would not return";
  EXPECT_FALSE(vgpu::lease_granted(m->lease(0).state.load()));
}

TEST(VgpudHostile, DeletedTenantIsToldAndLosesItsLeaseAtOnce) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto m = join(f, "mallory-token-0001");
  ASSERT_TRUE(m->request_lease(0));
  ASSERT_TRUE(wait_until([&] { return vgpu::lease_granted(m->lease(0).state.load()); }, 5s));
  std::string out;
  ASSERT_EQ(vgpuctl(f, {"tenant", "delete", "mallory"}, &out), 0) << out;
  EXPECT_FALSE(vgpu::lease_granted(m->lease(0).state.load()));
  EXPECT_EQ(m->shm().ctl->status.load(), static_cast<uint32_t>(vgpu::TenantStatus::kDeleted));
  bool told = false;
  for (int i = 0; i < 100 && !told; ++i) {
    int type = m->receive(50, nullptr);
    if (type == static_cast<int>(vgpu::proto::Type::kRefused)) told = true;
    if (type < 0) break;
  }
  EXPECT_TRUE(told) << "a deleted tenant's process must be told why it lost its registration";
  // The same through the hook: the process says the tenant was deleted, not "lost vgpud".
  auto f2 = std::make_unique<VgpudFixture>(kTenants);
  ASSERT_TRUE(f2->start(&why)) << why;
  auto w = f2->run({vgpu::test::bin_dir() + "/vgpu-workload", "--kernel-us", "1000", "--duration", "30"},
                   "alice-token-00001");
  ASSERT_TRUE(wait_until([&] {
    return vgpuctl(*f2, {"ps", "-o", "json"}, &out) == 0 && out.find("alice") != std::string::npos;
  }, 10s)) << out;
  ASSERT_EQ(vgpuctl(*f2, {"tenant", "delete", "alice"}, &out), 0) << out;
  ASSERT_TRUE(wait_until([&] { return w->errors().find("was deleted") != std::string::npos; }, 10s)) << w->errors();
  EXPECT_EQ(w->errors().find("lost vgpud"), std::string::npos) << w->errors();
}

}  // namespace
