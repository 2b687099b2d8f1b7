// Node-wide settings a SIGHUP reload applies to a running vgpud (reload.h):
// the lease arbiter's quantum and window, the share window's length, the
// hook socket's limits, the context overhead published to tenants, and which
// keys a reload applies live or leaves for the next start.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "admission.h"
#include "lease_arbiter.h"
#include "reload.h"
#include "share_window.h"
#include "tenant_registry.h"
#include "unix_listener.h"

namespace vgpu::sched {
namespace {

constexpr uint64_t kMs = 1'000'000;

LeaseArbiter two_waiting(uint64_t quantum) {
  LeaseArbiter arb(quantum, 1000 * kMs, 1);
  arb.set_policy(1, {Priority::kNormal, 0.5, 1.0});
  arb.set_policy(2, {Priority::kNormal, 0.5, 1.0});
  return arb;
}

TEST(LiveQuantum, AShorterQuantumEndsTheRunningLeaseAtItsGrantPlusTheNewQuantum) {
  LeaseArbiter arb = two_waiting(100 * kMs);
  arb.request(1);
  ASSERT_EQ(arb.tick(1).kind, Action::kGrant);
  arb.request(2);
  EXPECT_EQ(arb.tick(2 * kMs).kind, Action::kNone);
  arb.set_timing(5 * kMs, 1000 * kMs, 3 * kMs);
  EXPECT_EQ(arb.quantum(), 5 * kMs);
  EXPECT_LE(arb.next_tick(), 1 + 5 * kMs);
  EXPECT_EQ(arb.tick(1 + 5 * kMs).kind, Action::kRevoke);
}

TEST(LiveQuantum, AQuantumAlreadyUsedUpEndsTheLeaseAtTheNextTick) {
  LeaseArbiter arb = two_waiting(100 * kMs);
  arb.request(1);
  ASSERT_EQ(arb.tick(1).kind, Action::kGrant);
  arb.request(2);
  arb.set_timing(5 * kMs, 1000 * kMs, 20 * kMs);
  EXPECT_LE(arb.next_tick(), 20 * kMs);
  EXPECT_EQ(arb.tick(20 * kMs).kind, Action::kRevoke);
}

TEST(LiveQuantum, ALongerQuantumAppliesFromTheNextGrant) {
  LeaseArbiter arb = two_waiting(10 * kMs);
  arb.request(1);
  ASSERT_EQ(arb.tick(1).kind, Action::kGrant);
  arb.request(2);
  arb.set_timing(50 * kMs, 1000 * kMs, 2 * kMs);
  // The running lease keeps its deadline...
  EXPECT_LE(arb.next_tick(), 1 + 10 * kMs);
  ASSERT_EQ(arb.tick(1 + 10 * kMs).kind, Action::kRevoke);
  arb.drained(1, 2 + 10 * kMs);
  arb.request(1);
  // ...the next one gets the new quantum.
  ASSERT_EQ(arb.tick(2 + 10 * kMs).kind, Action::kGrant);
  EXPECT_EQ(arb.holder(), 2);
  EXPECT_EQ(arb.next_tick(), 2 + 60 * kMs);
  EXPECT_EQ(arb.tick(2 + 30 * kMs).kind, Action::kNone);
}

TEST(LiveWindow, ChargedTimeIsKeptWhenTheWindowGrows) {
  ShareWindow w(1000 * kMs);
  w.set_origin(1);
  w.charge(1, 100 * kMs, 300 * kMs);
  uint64_t now = 900 * kMs;
  EXPECT_EQ(w.charged_ns(1, now), 200 * kMs);
  w.set_window(2000 * kMs);
  EXPECT_EQ(w.window_ns(), 2000 * kMs);
  EXPECT_EQ(w.charged_ns(1, now), 200 * kMs);
  // Later the time ages out of the longer window, not of the shorter one.
  EXPECT_EQ(w.charged_ns(1, 1500 * kMs), 200 * kMs);
  EXPECT_EQ(w.charged_ns(1, 2500 * kMs), 0u);
}

TEST(LiveWindow, TimeOutsideAShorterWindowAgesOutAtOnce) {
  ShareWindow w(1000 * kMs);
  w.charge(1, 100 * kMs, 200 * kMs);  // old
  w.charge(1, 850 * kMs, 900 * kMs);  // recent
  w.charge(2, 880 * kMs, 890 * kMs);
  uint64_t now = 900 * kMs;
  EXPECT_EQ(w.charged_ns(1, now), 150 * kMs);
  w.set_window(200 * kMs);
  EXPECT_EQ(w.charged_ns(1, now), 50 * kMs);
  EXPECT_EQ(w.charged_ns(2, now), 10 * kMs);
  EXPECT_NEAR(w.share(1, now), 0.25, 0.01);
}

// A listening SEQPACKET socket in a private directory, and clients of it.
class LiveLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vgpu-live-limits-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto fd = listen_unix(dir_ + "/s.sock", SOCK_SEQPACKET, 0600, 16);
    ASSERT_TRUE(fd) << fd.error();
    listen_fd_ = *fd;
  }
  void TearDown() override {
    for (int fd : clients_) close(fd);
    for (int fd : accepted_) close(fd);
    if (listen_fd_ >= 0) close(listen_fd_);
    std::string rm = "rm -rf " + dir_;
    (void)std::system(rm.c_str());
  }
  void connect_one() {
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s/s.sock", dir_.c_str());
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    clients_.push_back(fd);
  }
  // Accepts what is pending; returns how many `adm` admitted.
  int accept_pending(Admission& adm, uint64_t now) {
    int n = 0;
    adm.accept_all(listen_fd_, now, [&](int fd, const ucred&) {
      accepted_.push_back(fd);
      ++n;
    });
    return n;
  }
  std::string dir_;
  int listen_fd_ = -1;
  std::vector<int> clients_, accepted_;
};

TEST_F(LiveLimits, ALoweredPerUidCapRefusesNewConnectionsAndKeepsAdmittedOnes) {
  LimitsConfig l;
  Admission adm(l);
  connect_one();
  connect_one();
  ASSERT_EQ(accept_pending(adm, 1), 2);
  l.max_connections_per_uid = 2;
  adm.set_limits(l);
  EXPECT_EQ(adm.limits().max_connections_per_uid, 2u);
  connect_one();
  EXPECT_EQ(accept_pending(adm, 2), 0);
  EXPECT_EQ(adm.refused_total(), 1u);
  adm.closed(accepted_[0], getuid());
  connect_one();
  EXPECT_EQ(accept_pending(adm, 3), 1);
}

TEST_F(LiveLimits, PendingHelloDeadlinesMoveToTheNewTimeoutFromArrival) {
  LimitsConfig l;
  l.hello_timeout_ns = 1000 * kMs;
  Admission adm(l);
  connect_one();
  ASSERT_EQ(accept_pending(adm, 10 * kMs), 1);
  connect_one();
  ASSERT_EQ(accept_pending(adm, 20 * kMs), 1);
  EXPECT_EQ(adm.next_deadline(), 1010 * kMs);
  l.hello_timeout_ns = 100 * kMs;
  adm.set_limits(l);
  EXPECT_EQ(adm.next_deadline(), 110 * kMs);
  EXPECT_EQ(adm.expired(115 * kMs), std::vector<int>{accepted_[0]});
  EXPECT_EQ(adm.expired(120 * kMs), std::vector<int>{accepted_[1]});
  // Connections after the change get the new timeout.
  connect_one();
  ASSERT_EQ(accept_pending(adm, 200 * kMs), 1);
  EXPECT_EQ(adm.next_deadline(), 300 * kMs);
}

TEST_F(LiveLimits, ALoweredMessageRateAppliesToAdmittedConnections) {
  LimitsConfig l;
  l.messages_per_second = 1000;
  Admission adm(l);
  connect_one();
  ASSERT_EQ(accept_pending(adm, 1), 1);
  l.messages_per_second = 2;
  adm.set_limits(l);
  int fd = accepted_[0];
  EXPECT_TRUE(adm.allow_message(fd, 2));
  EXPECT_TRUE(adm.allow_message(fd, 3));
  EXPECT_FALSE(adm.allow_message(fd, 4));
}

TEST(LiveContextOverhead, ReachesTheControlBlockOfEveryTenant) {
  std::vector<Gpu> gpus(1);
  gpus[0].uuid = "GPU-live-settings";
  gpus[0].memory = 8ull << 30;
  TenantRegistry reg(gpus, 64ull << 20);
  TenantConfig a;
  a.name = "a";
  a.token = "live-settings-token-a";
  a.memory = 1ull << 30;
  auto added = reg.add(a);
  ASSERT_TRUE(added) << added.error();
  EXPECT_EQ((*added)->control().context_overhead.load(), 64ull << 20);
  reg.set_context_overhead(300ull << 20);
  EXPECT_EQ((*added)->control().context_overhead.load(), 300ull << 20);
  TenantConfig b = a;
  b.name = "b";
  b.token = "live-settings-token-b";
  auto later = reg.add(b);
  ASSERT_TRUE(later) << later.error();
  EXPECT_EQ((*later)->control().context_overhead.load(), 300ull << 20);
}

TEST(ReloadKeys, SchedulerLimitsAndEnforcementTimingApplyLiveOnlyBindingsWaitForARestart) {
  Config running, file;
  file.scheduler.quantum_ns = 7 * kMs;
  file.limits.max_connections_per_uid = 3;
  file.enforcement.revoke_deadline_ns = 50 * kMs;
  file.enforcement.context_overhead = 256ull << 20;
  file.enforcement.startup_grace_ns = 2000 * kMs;
  file.enforcement.bpf = "off";
  file.metrics = "127.0.0.1:9999";
  std::vector<std::string> live = live_node_changes(running, file);
  EXPECT_EQ(live, (std::vector<std::string>{"scheduler.quantum: 10ms -> 7ms", "limits.max_connections_per_uid: 256 -> 3"}));
  std::vector<std::string> enf = live_enforcement_changes(running.enforcement, file.enforcement);
  EXPECT_EQ(enf, (std::vector<std::string>{"enforcement.context_overhead: 0 -> 256Mi",
                                           "enforcement.startup_grace: 10s -> 2s",
                                           "enforcement.revoke_deadline: 100ms -> 50ms"}));
  EXPECT_EQ(restart_only_changes(running, file),
            (std::vector<std::string>{"metrics: (none) -> 127.0.0.1:9999", "enforcement.bpf: auto -> off"}));
  EnforcementConfig applied = with_live_enforcement(running.enforcement, file.enforcement);
  EXPECT_EQ(applied.bpf, "auto");  // attached at start only
  EXPECT_EQ(applied.revoke_deadline_ns, 50 * kMs);
  EXPECT_EQ(applied.context_overhead, 256ull << 20);
  EXPECT_EQ(applied.startup_grace_ns, 2000 * kMs);
}

}  // namespace
}  // namespace vgpu::sched
