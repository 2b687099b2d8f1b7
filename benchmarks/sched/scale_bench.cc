// P6 of DESIGN.md: how many processes vgpud registers and how many leases it
// grants, on this 2-core machine.
//
// 1. Registration: N raw hook-protocol connections (RawClient: Hello with a
//    token, Welcome with the tenant memory passed over SCM_RIGHTS and mapped),
//    spread over 8 tenants; once one at a time (latency) and once pipelined
//    (all Hellos sent, then all Welcomes read: throughput). All N stay
//    connected, then a lease round trip is timed with them connected.
// 2. Lease round trip on a free GPU: LeaseRequest -> granted bit seen on the
//    shared lease word (futex wake), repeated; the client never launches, so
//    vgpud takes the idle lease back after one quantum and the GPU is free again.
// 3. Handovers: T tenants, one client each, all wanting the GPU all the time.
//    A client that sees its grant marks the epoch as launched-under (as a
//    hooked launch does), sends LeaseReturn(idle) at once (early return, as
//    the protocol allows), and answers the Revoke that ends its lease with
//    LeaseReturn; then it asks again. Grants per second is what vgpud achieved;
//    vgpud's CPU time per grant gives the rate its message path could sustain
//    on one core if grants were not paced by the quantum.
//
// 4. vgpud's CPU with 8 GPUs x 8 saturating tenants at a 10 ms quantum (the
//    clients keep their leases until revoked, marking each epoch as a
//    launching hook does): issue 11's "vgpud <= 1 % of one core".
//
// usage: sched_scale_bench [--clients 512] [--seconds 5] [--quantum 1ms] [--saturating-only]
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
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
using vgpu::test::VgpudFixture;

struct Options {
  int clients = 512;
  int seconds = 5;
  std::string quantum = "1ms";
  bool saturating_only = false;
};

std::string tenants_yaml(int n) {
  std::ostringstream y;
  for (int i = 0; i < n; ++i)
    y << "  - {name: s" << i << ", token: scale-tenant-token-" << i << ", memory: 1Gi, compute: {request: " << 96 / n
      << "%}}\n";
  return y.str();
}

std::string token(int i, int tenants) { return "scale-tenant-token-" + std::to_string(i % tenants); }

bool start(VgpudFixture& f) {
  std::string why;
  if (f.start(&why)) return true;
  std::fprintf(stderr, "vgpud did not start: %s\n", why.c_str());
  return false;
}

// Times one LeaseRequest -> granted on a free GPU; then waits until vgpud has
// taken the (unused) lease back. Returns 0 on failure.
uint64_t lease_round_trip(RawClient& c) {
  vgpu::LeaseWord& w = c.lease(0);
  for (uint64_t end = now_ns() + 2'000'000'000; vgpu::lease_granted(w.state.load()); ) {
    if (now_ns() > end) return std::fprintf(stderr, "lease never taken back: state %u\n", w.state.load()), 0;
    vgpu::lease_wait(&w, w.state.load(), 1'000'000);
  }
  uint32_t s = w.state.load();
  uint64_t t0 = now_ns();
  if (!c.request_lease(0)) return 0;
  while (!vgpu::lease_granted(s)) {
    if (now_ns() - t0 > 2'000'000'000) return std::fprintf(stderr, "no grant: state %u\n", s), 0;
    vgpu::lease_wait(&w, s, 100'000'000);
    s = w.state.load();
  }
  return now_ns() - t0;
}

bool registration(const Options& o) {
  const int tenants = 8;
  for (bool pipelined : {false, true}) {
    VgpudFixture f(tenants_yaml(tenants), {}, "scheduler: {quantum: " + o.quantum + "}\n");
    if (!start(f)) return false;
    std::vector<std::unique_ptr<RawClient>> cs;
    std::string why;
    uint64_t t0 = now_ns();
    for (int i = 0; i < o.clients; ++i) {
      cs.push_back(std::make_unique<RawClient>());
      bool ok = pipelined ? cs.back()->connect_to(f.socket(), &why) && cs.back()->send_hello(token(i, tenants))
                          : cs.back()->register_as(f.socket(), token(i, tenants), &why);
      if (!ok) return std::fprintf(stderr, "client %d: %s\n", i, why.c_str()), false;
    }
    for (int i = 0; pipelined && i < o.clients; ++i)
      if (!cs[static_cast<size_t>(i)]->receive_welcome(&why))
        return std::fprintf(stderr, "client %d: %s\n", i, why.c_str()), false;
    double secs = static_cast<double>(now_ns() - t0) / 1e9;
    std::vector<uint64_t> rtt;
    for (int i = 0; i < 50; ++i) rtt.push_back(lease_round_trip(*cs[0]));
    std::printf("P6 registration (%s): %d clients over %d tenants registered in %.3f s = %.0f registrations/s; "
                "all %d connected, vgpud running: %s\n",
                pipelined ? "pipelined" : "one at a time", o.clients, tenants, secs, o.clients / secs, o.clients,
                f.daemon_running() ? "yes" : "NO");
    std::printf("   lease round trip with %d clients connected: %s\n", o.clients,
                vgpu::bench::format_ms(vgpu::bench::distribution(rtt)).c_str());
  }
  return true;
}

bool free_gpu_round_trip(const Options& o) {
  VgpudFixture f(tenants_yaml(1), {}, "scheduler: {quantum: " + o.quantum + "}\n");
  if (!start(f)) return false;
  RawClient c;
  std::string why;
  if (!c.register_as(f.socket(), token(0, 1), &why)) return std::fprintf(stderr, "%s\n", why.c_str()), false;
  std::vector<uint64_t> rtt;
  for (uint64_t end = now_ns() + 2'000'000'000ull; now_ns() < end;) {
    uint64_t r = lease_round_trip(c);
    if (r == 0) return std::fprintf(stderr, "lease round trip failed\n"), false;
    rtt.push_back(r);
  }
  std::printf("P6 LeaseRequest -> grant on a free GPU (quantum %s): %s\n", o.quantum.c_str(),
              vgpu::bench::format_ms(vgpu::bench::distribution(rtt)).c_str());
  return true;
}

// The Revoke side of a handover client: answers every Revoke at once (the
// client queued nothing, so its drain is empty).
void answer_revokes(RawClient& c, uint64_t end, std::atomic<bool>& failed) {
  while (now_ns() < end && !failed.load()) {
    vgpu::proto::Revoke rv{};
    int type = c.receive(5, &rv);
    if (type < 0) return failed.store(true);
    // A saturating client wants the lease again at once: like the hook, it
    // says so in the return instead of sending a LeaseRequest.
    if (type == static_cast<int>(vgpu::proto::Type::kRevoke))
      c.return_lease(rv.device, rv.epoch, vgpu::proto::kReturnWants, 0);
  }
}

// The lease side of a handover client: returns the number of grants it saw.
// `idle_return`: hand the lease back at once (the churn worst case); without
// it the client keeps the lease until vgpud revokes it (a saturating tenant).
uint64_t take_leases(RawClient& c, uint32_t dev, uint64_t end, std::atomic<bool>& failed,
                     std::vector<uint64_t>* holds, bool idle_return) {
  vgpu::LeaseWord& w = c.lease(dev);
  uint64_t grants = 0;
  bool requested = false;
  uint64_t asked_at = 0;
  while (now_ns() < end && !failed.load()) {
    uint32_t s = w.state.load();
    if (!vgpu::lease_granted(s)) {
      if (!requested) {
        requested = c.request_lease(dev);
        asked_at = now_ns();
      }
      // A saturating client is a launch blocked on the lease: like the hook,
      // it counts itself as waiting meanwhile.
      std::atomic<uint32_t>* waiting = idle_return ? nullptr : &c.shm().led->lease_stats[dev].waiting;
      // Like the hook's blocked launch: sleeps in 20 ms slices and reminds
      // vgpud of its ask every 200 ms while still waiting.
      if (waiting) waiting->fetch_add(1);
      vgpu::lease_wait(&w, s, idle_return ? 2'000'000 : 20'000'000);
      if (!idle_return && now_ns() - asked_at >= 200'000'000) requested = false;
      if (waiting) waiting->fetch_sub(1);
      continue;
    }
    ++grants;
    // Revoked, a saturating client's return asks again (kReturnWants).
    requested = !idle_return;
    asked_at = now_ns();
    uint64_t granted_at = now_ns();
    c.touch(dev);
    if (idle_return) c.return_lease(dev, s >> vgpu::kLeaseEpochShift, vgpu::proto::kReturnIdle, 0);
    // Holds the lease until vgpud revokes it or takes it back; renewals
    // (same granted bit, new epoch) are not new grants.
    // A saturating client keeps launching: like the hook's launch path it
    // marks each epoch of the lease (vgpud renews with a new epoch at every
    // idle check) as launched-under, at least once per millisecond.
    while (vgpu::lease_granted(s = w.state.load()) && now_ns() < end && !failed.load()) {
      if (!idle_return) c.touch(dev);
      vgpu::lease_wait(&w, s, idle_return ? 2'000'000 : 1'000'000);
    }
    if (!vgpu::lease_granted(s)) holds->push_back(now_ns() - granted_at);
  }
  return grants;
}

// Returns vgpud's CPU time as a fraction of one core over the run (< 0: failed).
double handovers(const Options& o, int tenants, int gpus, const std::string& quantum, bool idle_return) {
  VgpudFixture f(tenants_yaml(tenants), {{"SIMGPU_DEVICES", std::to_string(gpus)}},
                 "scheduler: {quantum: " + quantum + "}\n");
  if (!start(f)) return -1;
  std::vector<std::unique_ptr<RawClient>> cs;
  std::string why;
  for (int i = 0; i < tenants; ++i) {
    cs.push_back(std::make_unique<RawClient>());
    if (!cs.back()->register_as(f.socket(), token(i, tenants), &why))
      return std::fprintf(stderr, "%s\n", why.c_str()), -1;
  }
  std::atomic<bool> failed{false};
  std::vector<uint64_t> grants(static_cast<size_t>(tenants * gpus));
  std::vector<std::vector<uint64_t>> holds(static_cast<size_t>(tenants * gpus));
  uint64_t cpu0 = vgpu::bench::process_cpu_ns(f.daemon_pid()), t0 = now_ns();
  uint64_t end = t0 + static_cast<uint64_t>(o.seconds) * 1'000'000'000ull;
  std::vector<std::thread> threads;
  for (int i = 0; i < tenants; ++i) {
    RawClient& c = *cs[static_cast<size_t>(i)];
    for (int g = 0; g < gpus; ++g)
      threads.emplace_back([&, i, g] {
        size_t k = static_cast<size_t>(i * gpus + g);
        grants[k] = take_leases(c, static_cast<uint32_t>(g), end, failed, &holds[k], idle_return);
      });
    threads.emplace_back([&] { answer_revokes(c, end, failed); });
  }
  for (auto& t : threads) t.join();
  double secs = static_cast<double>(now_ns() - t0) / 1e9;
  uint64_t cpu = vgpu::bench::process_cpu_ns(f.daemon_pid()) - cpu0, total = 0;
  for (uint64_t g : grants) total += g;
  double per_grant_us = total ? static_cast<double>(cpu) / static_cast<double>(total) / 1e3 : 0;
  std::printf("P6 handovers%s, %d tenants x %d GPU(s), quantum %s: %llu grants in %.2f s = %.0f grants/s; vgpud CPU %.2f%% of one "
              "core, %.2f us per grant -> message-path capacity %.0f grants/s per core%s\n",
              idle_return ? "" : " (saturating: leases held until revoked)", tenants, gpus, quantum.c_str(), static_cast<unsigned long long>(total), secs, static_cast<double>(total) / secs,
              100.0 * static_cast<double>(cpu) / 1e9 / secs, per_grant_us,
              per_grant_us > 0 ? 1e6 / per_grant_us : 0.0, failed.load() ? " (a client was dropped!)" : "");
  std::vector<uint64_t> all_holds;
  for (auto& h : holds) all_holds.insert(all_holds.end(), h.begin(), h.end());
  std::printf("   lease held (grant seen -> bit cleared): %s\n",
              vgpu::bench::format_ms(vgpu::bench::distribution(all_holds)).c_str());
  std::string log = f.daemon_log();
  size_t timeouts = 0;
  for (size_t at = log.find("timed out"); at != std::string::npos; at = log.find("timed out", at + 1)) ++timeouts;
  if (timeouts) std::printf("   vgpud log: %zu drain timeouts\n", timeouts);
  double core = static_cast<double>(cpu) / 1e9 / secs;
  return !failed.load() && total > 0 ? core : -1;
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("P6: registrations, lease round trips and handovers vgpud sustains.", "sched_scale_bench");
  app.add_option("--clients", o.clients, "raw clients registered")
      ->capture_default_str()
      ->check(vgpu::bench::at_least(1));
  app.add_option("--seconds", o.seconds, "length of each handover run")
      ->capture_default_str()
      ->check(vgpu::bench::at_least(1));
  app.add_option("--quantum", o.quantum, "vgpud's quantum (a config duration: 1ms, 500us, ...)")->capture_default_str();
  app.add_flag("--saturating-only", o.saturating_only,
               "only the vgpud CPU run: 8 GPUs x 8 saturating tenants at a 10 ms quantum");
  vgpu::bench::parse_or_exit(app, argc, argv);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  bool ok = true;
  if (!o.saturating_only) {
    ok = registration(o) && free_gpu_round_trip(o);
    for (int t : {2, 4, 8}) ok = handovers(o, t, 1, o.quantum, true) >= 0 && ok;
    ok = handovers(o, 4, 8, o.quantum, true) >= 0 && ok;  // 8 GPUs: 8 leases decided by the same event loop
  }
  // Issue 11's target: vgpud <= 1 % of one core with 8 GPUs x 8 saturating
  // tenants at a 10 ms quantum (every lease held until its quantum ends).
  double core = handovers(o, 8, 8, "10ms", false);
  bool met = core >= 0 && core <= 0.01;
  std::printf("SUMMARY vgpud CPU, 8 GPUs x 8 saturating tenants, quantum 10 ms: %.2f%% of one core (target <= 1%%): %s\n",
              100.0 * core, met ? "met" : "MISSED");
  ok = met && ok;
  return ok ? 0 : 1;
}
