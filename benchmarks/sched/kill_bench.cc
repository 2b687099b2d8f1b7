// R1 and R2 of DESIGN.md: recovery from kill -9.
//
// R1 (clients): tenant A (high priority) starts a vgpu-workload that
// allocates 4 x 64 MiB, holds them and saturates the GPU; it is killed with
// SIGKILL after a random delay (seeded, so runs repeat). A raw observer
// registered as A holds 100 MiB in its own record, so the exact expected
// ledger after the kill is 100 MiB, not 0. Tenant B's raw client always asks
// for the GPU. Measured per kill: the time until A's ledger is exact again
// (and still exact 100 ms later), and — when A held the lease at the kill —
// the time until B is granted. The quantum is 500 ms, so a grant within
// 100 ms of the kill comes from vgpud noticing the death, not from the quantum.
//
// R2 (vgpud): two tenants with two workloads each (2 x 256 MiB held per
// process) run; vgpud is killed with SIGKILL, stays down for a while, and is
// restarted on the same config and state. Measured: every workload exits 0,
// the ledger of each tenant in the new vgpud is exact (re-registered
// charges), and how long after the restart that took.
//
// usage: sched_kill_bench [--kills 30] [--seed 1] [--down-ms 500]
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_cli.h"
#include "bench_util.h"
#include "raw_client.h"
#include "vgpud_fixture.h"

namespace {

using vgpu::bench::now_ns;
using vgpu::bench::RawClient;
using vgpu::test::bin_dir;
using vgpu::test::Child;
using vgpu::test::json_number;
using vgpu::test::VgpudFixture;

constexpr uint64_t kMi = 1ull << 20;

struct Options {
  int kills = 30;
  unsigned seed = 1;
  int down_ms = 500;
};

// B's client: asks for the GPU whenever it does not hold it and records when
// it was last granted. It never launches, so it holds no Revoke to answer.
void keep_asking(RawClient& c, std::atomic<uint64_t>& last_grant, std::atomic<bool>& stop) {
  vgpu::LeaseWord& w = c.lease(0);
  bool requested = false;
  while (!stop.load()) {
    uint32_t s = w.state.load();
    if (vgpu::lease_granted(s)) {
      if (requested) last_grant.store(now_ns());
      requested = false;
      vgpu::lease_wait(&w, s, 5'000'000);
      continue;
    }
    if (!requested) requested = c.request_lease(0);
    vgpu::lease_wait(&w, s, 5'000'000);
  }
}

// Polls `pred` every 50 us for at most `limit_ns`; the time it took, or UINT64_MAX.
template <class P>
uint64_t time_until(uint64_t from, uint64_t limit_ns, P pred) {
  while (!pred()) {
    if (now_ns() - from > limit_ns) return UINT64_MAX;
    vgpu::bench::sleep_ns(50'000);
  }
  return now_ns() - from;
}

bool client_kills(const Options& o) {
  VgpudFixture f(
      "  - {name: a, token: kill-tenant-token-a, priority: high, memory: 4Gi, compute: {request: 50%}}\n"
      "  - {name: b, token: kill-tenant-token-b, memory: 1Gi, compute: {request: 50%}}\n",
      {}, "scheduler: {quantum: 500ms, window: 5s}\n");
  std::string why;
  RawClient observer, waiter;
  if (!f.start(&why) || !observer.register_as(f.socket(), "kill-tenant-token-a", &why) ||
      !waiter.register_as(f.socket(), "kill-tenant-token-b", &why))
    return std::fprintf(stderr, "setup: %s\n", why.c_str()), false;
  const uint64_t expected = 100 * kMi;
  vgpu::tenant_shm_reserve(observer.shm(), observer.slot(), 0, expected);
  std::atomic<uint64_t> last_grant{0};
  std::atomic<bool> stop{false};
  std::thread b([&] { keep_asking(waiter, last_grant, stop); });
  std::mt19937 rng(o.seed);
  // Half the kills land in the first 5 ms (exec, cuInit, registration,
  // allocation: a process gets that far in ~4 ms here), half anywhere in the
  // first 400 ms (mostly while launching). Delays in microseconds.
  std::uniform_int_distribution<int> early_us(0, 5'000), any_us(0, 400'000), coin(0, 1);
  auto delay_us = [&](std::mt19937& r) { return coin(r) ? early_us(r) : any_us(r); };
  std::vector<uint64_t> ledger_ns, lease_ns;
  int inexact = 0, lost_leases = 0, held_kills = 0;
  vgpu::TenantShm shm = observer.shm();
  for (int i = 0; i < o.kills; ++i) {
    auto a = f.run({bin_dir() + "/vgpu-workload", "--alloc-size", "64Mi", "--alloc-count", "4", "--hold",
                    "--kernel-us", "1000", "--duration", "30"},
                   "kill-tenant-token-a");
    int delay = delay_us(rng);
    vgpu::bench::sleep_ns(static_cast<uint64_t>(delay) * 1'000);  // the random kill point
    bool held = vgpu::lease_granted(observer.lease(0).state.load());
    uint64_t used_at_kill = vgpu::tenant_shm_used(shm, 0), t_kill = now_ns();
    a->kill(SIGKILL);
    uint64_t l = time_until(t_kill, 3'000'000'000ull, [&] { return vgpu::tenant_shm_used(shm, 0) == expected; });
    uint64_t g = held ? time_until(t_kill, 3'000'000'000ull, [&] { return last_grant.load() > t_kill; }) : 0;
    a->wait(std::chrono::seconds(10));
    vgpu::bench::sleep_ns(100'000'000);  // pacing: is it still exact a while later?
    bool exact = l != UINT64_MAX && vgpu::tenant_shm_used(shm, 0) == expected;
    inexact += !exact;
    if (l != UINT64_MAX) ledger_ns.push_back(l);
    if (held) {
      ++held_kills;
      if (g == UINT64_MAX) ++lost_leases;
      else lease_ns.push_back(g);
    }
    std::printf("  kill %2d at %7.3f ms: %s, used at kill %4llu MiB, ledger %s after %.3f ms%s\n", i, delay / 1e3, held ? "holding lease" : "no lease",
                static_cast<unsigned long long>(used_at_kill / kMi), exact ? "exact" : "NOT EXACT",
                l == UINT64_MAX ? -1.0 : static_cast<double>(l) / 1e6,
                held ? (", B granted after " + std::to_string(g == UINT64_MAX ? -1.0 : static_cast<double>(g) / 1e6) + " ms").c_str() : "");
  }
  stop.store(true);
  b.join();
  auto ld = vgpu::bench::distribution(ledger_ns), gd = vgpu::bench::distribution(lease_ns);
  bool ok = inexact == 0 && lost_leases == 0 && gd.max <= 100e6;
  std::printf("R1 ledger exact after %d/%d kills; time to exact: %s\n", o.kills - inexact, o.kills,
              vgpu::bench::format_ms(ld).c_str());
  std::printf("R1 lease freed (killed holder -> waiting tenant granted), %d kills holding the lease, %d never freed: %s\n",
              held_kills, lost_leases, vgpu::bench::format_ms(gd).c_str());
  std::printf("R1 target (ledger exact, lease freed <= 100 ms): %s\n", ok ? "met" : "MISSED");
  return ok;
}

bool daemon_kill(const Options& o) {
  VgpudFixture f(
      "  - {name: t0, token: kill-tenant-token-0, memory: 4Gi, compute: {request: 50%}}\n"
      "  - {name: t1, token: kill-tenant-token-1, memory: 4Gi, compute: {request: 50%}}\n");
  std::string why;
  if (!f.start(&why)) return std::fprintf(stderr, "vgpud: %s\n", why.c_str()), false;
  const uint64_t expected = 2 * 2 * 256 * kMi;  // per tenant: 2 processes x 2 x 256 MiB
  std::vector<std::unique_ptr<Child>> w;
  for (int i = 0; i < 4; ++i)
    w.push_back(f.run({bin_dir() + "/vgpu-workload", "--alloc-size", "256Mi", "--alloc-count", "2", "--hold",
                       "--kernel-us", "1000", "--duration", "8", "--json"},
                      "kill-tenant-token-" + std::to_string(i % 2)));
  auto ledger_exact = [&](std::vector<std::unique_ptr<RawClient>>& obs) {
    for (auto& c : obs)
      if (vgpu::tenant_shm_used(c->shm(), 0) != expected) return false;
    return true;
  };
  auto observe = [&](std::vector<std::unique_ptr<RawClient>>& obs) {
    obs.clear();
    for (int t = 0; t < 2; ++t) {
      obs.push_back(std::make_unique<RawClient>());
      if (!obs.back()->register_as(f.socket(), "kill-tenant-token-" + std::to_string(t), &why)) return false;
    }
    return true;
  };
  std::vector<std::unique_ptr<RawClient>> obs;
  if (!observe(obs) || time_until(now_ns(), 20'000'000'000ull, [&] { return ledger_exact(obs); }) == UINT64_MAX)
    return std::fprintf(stderr, "workloads never held their memory: %s\n", why.c_str()), false;
  vgpu::bench::sleep_ns(1'000'000'000);  // pacing: under load for a while
  uint64_t t_kill = now_ns();
  f.kill_daemon();
  obs.clear();
  vgpu::bench::sleep_ns(static_cast<uint64_t>(o.down_ms) * 1'000'000);  // vgpud stays away this long
  if (!f.start(&why) || !observe(obs)) return std::fprintf(stderr, "restart: %s\n", why.c_str()), false;
  uint64_t t_up = now_ns();
  uint64_t r = time_until(t_up, 10'000'000'000ull, [&] { return ledger_exact(obs); });
  vgpu::bench::sleep_ns(200'000'000);  // pacing: still exact a while later (no charge counted twice)
  bool exact = r != UINT64_MAX && ledger_exact(obs);
  int crashed = 0;
  for (auto& c : w) {
    int rc = c->wait(std::chrono::seconds(60));
    if (rc != 0) ++crashed, std::fprintf(stderr, "workload exited %d: %s\n", rc, c->errors().c_str());
    std::printf("  workload: exit %d, work_share %.3f, allocations ok %g\n", rc, json_number(c->output(), "work_share"),
                json_number(c->output(), "ok"));
  }
  std::printf("R2 vgpud killed under load (4 workloads, 2 tenants), down %.0f ms, restarted: %d/4 workloads exited 0; "
              "ledger %s %.1f ms after the restart (%.1f ms after the kill)\n",
              static_cast<double>(t_up - t_kill) / 1e6, 4 - crashed, exact ? "exact" : "NOT EXACT",
              r == UINT64_MAX ? -1.0 : static_cast<double>(r) / 1e6,
              r == UINT64_MAX ? -1.0 : static_cast<double>(t_up + r - t_kill) / 1e6);
  bool ok = exact && crashed == 0;
  std::printf("R2 target (no client crash, ledger exact after): %s\n", ok ? "met" : "MISSED");
  return ok;
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("R1/R2: recovery of the ledger and the lease from kill -9 of a client and of vgpud.",
               "sched_kill_bench");
  app.add_option("--kills", o.kills, "client kills (R1)")->capture_default_str()->check(vgpu::bench::at_least(0));
  app.add_option("--seed", o.seed, "seed of the random kill delays")->capture_default_str();
  app.add_option("--down-ms", o.down_ms, "how long vgpud stays down (R2)")
      ->capture_default_str()
      ->check(vgpu::bench::at_least(0));
  vgpu::bench::parse_or_exit(app, argc, argv);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  bool r1 = client_kills(o);
  bool r2 = daemon_kill(o);
  return r1 && r2 ? 0 : 1;
}
