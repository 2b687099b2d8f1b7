// SIGHUP: vgpud re-reads its configuration file and applies tenant changes
// and node-wide settings (scheduler.*, limits.*, the backstop's) live;
// runtime changes (vgpuctl) win over the file until `vgpuctl tenant reset`;
// keys bound at start (sockets, metrics, bpf) are reported as needing a
// restart; a broken file changes nothing (scheduler/reload.h,
// docs/operations.md).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>

#include "vgpu/protocol.h"
#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using vgpu::test::bin_dir;
using vgpu::test::Child;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

namespace proto = vgpu::proto;

// A raw client of the hook socket: what a newly starting process is told.
class HookPeer {
 public:
  explicit HookPeer(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~HookPeer() { close(fd_); }
  HookPeer(const HookPeer&) = delete;
  HookPeer& operator=(const HookPeer&) = delete;
  // Sends Hello with `token`; true with the Welcome in *w if vgpud registered
  // it, false if it refused or closed the connection (or 5 s passed).
  bool hello(const std::string& token, proto::Welcome* w) {
    if (!connected_) return false;
    auto h = proto::make<proto::Hello>();
    h.pid = getpid();
    std::snprintf(h.token, sizeof h.token, "%s", token.c_str());
    if (send(fd_, &h, sizeof h, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof h)) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return false;
    char buf[proto::kMaxMessage];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);  // the passed memfds are discarded (MSG_CTRUNC)
    if (n != sizeof(proto::Welcome) || proto::check(buf, static_cast<size_t>(n)) != proto::Check::kOk ||
        reinterpret_cast<proto::Header*>(buf)->type != static_cast<uint16_t>(proto::Type::kWelcome))
      return false;
    std::memcpy(w, buf, sizeof *w);
    return true;
  }
  // True once vgpud closed the connection without a message (a refused
  // connection), within `timeout`.
  bool closed_silently(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
    char buf[proto::kMaxMessage];
    return recv(fd_, buf, sizeof buf, MSG_DONTWAIT) == 0;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

class VgpudReload : public ::testing::Test {
 protected:
  VgpudReload()
      : f_("  - {name: a, token: reload-tenant-a-token, memory: 1Gi, compute: {request: 30%}}\n"
           "  - {name: b, token: reload-tenant-b-token, memory: 1Gi, compute: {request: 20%}}\n") {}
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(f_.start(&why)) << why;
    original_ = vgpu::test::read_file(f_.config_path());
  }
  // Replaces the `tenants:` list of the running vgpud's file and sends SIGHUP.
  void rewrite_tenants(const std::string& tenants_yaml, const std::string& extra = "") {
    size_t at = original_.find("tenants:\n");
    std::string before = original_.substr(0, at), after;
    // Top-level keys the fixture wrote after the list (not indented) stay.
    std::istringstream rest(original_.substr(at + 9));
    for (std::string line; std::getline(rest, line);) {
      if (line.empty() || line[0] == ' ') continue;
      std::string key = line.substr(0, line.find(':') + 1);
      if (extra.find("\n" + key) == std::string::npos && extra.rfind(key, 0) != 0) after += line + "\n";
    }
    std::ofstream(f_.config_path()) << before << extra << after << "tenants:\n" << tenants_yaml;
    ::kill(f_.daemon_pid(), SIGHUP);
  }
  // `vgpuctl -o json ARGS...`; null when it fails.
  json ctl(std::vector<std::string> args) {
    std::vector<std::string> argv{bin_dir() + "/vgpuctl", "--socket", f_.admin_socket(), "-o", "json"};
    argv.insert(argv.end(), args.begin(), args.end());
    Child c(argv, {});
    if (c.wait(20s) != 0) return nullptr;
    return json::parse(c.output(), nullptr, false);
  }
  json tenant(const std::string& name) { return ctl({"tenant", "get", name}); }
  bool log_has(const std::string& text) { return f_.daemon_log().find(text) != std::string::npos; }
  // A new process of tenant a registers (retried until `timeout`: vgpud may
  // still be closing connections the test ended).
  std::unique_ptr<HookPeer> registered(proto::Welcome* w, std::chrono::seconds timeout = 20s) {
    std::unique_ptr<HookPeer> p;
    bool ok = wait_until([&] {
      p = std::make_unique<HookPeer>(f_.socket());
      return p->hello("reload-tenant-a-token", w);
    }, timeout);
    return ok ? std::move(p) : nullptr;
  }

  VgpudFixture f_;
  std::string original_;
};

TEST_F(VgpudReload, FileChangesApplyLiveOnSighup) {
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: 2Gi, compute: {request: 40%}}\n"
                  "  - {name: c, token: reload-tenant-c-token, memory: 512Mi, compute: {request: 10%}}\n");
  ASSERT_TRUE(wait_until([&] {
    json a = tenant("a"), c = tenant("c");
    return a.is_object() && a.value("memory_bytes", 0ull) == (2ull << 30) && c.is_object() && tenant("b").is_null();
  }, 20s)) << f_.daemon_log();
  json a = tenant("a");
  EXPECT_DOUBLE_EQ(a["compute_request"].get<double>(), 0.4);
  EXPECT_EQ(a["source"], "config");
  EXPECT_TRUE(log_has("tenant 'a' updated from the file: memory: 1Gi -> 2Gi, request: 30% -> 40%")) << f_.daemon_log();
  EXPECT_TRUE(log_has("tenant 'b' removed (no longer in the file)")) << f_.daemon_log();
  EXPECT_TRUE(log_has("tenant 'c' added from the file")) << f_.daemon_log();
  EXPECT_FALSE(log_has("takes effect when vgpud restarts")) << f_.daemon_log();
  EXPECT_TRUE(f_.daemon_running());
}

TEST_F(VgpudReload, RuntimeChangesWinUntilReset) {
  ASSERT_TRUE(ctl({"tenant", "update", "a", "--memory", "3Gi"}).is_object());
  // Every admin change is in the log with who made it, before -> after.
  EXPECT_TRUE(std::regex_search(f_.daemon_log(),
                                std::regex("audit: uid [0-9]+ pid [0-9]+ \\(vgpuctl\\): tenant 'a' updated: memory: 1Gi -> 3Gi")))
      << f_.daemon_log();
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: 4Gi, compute: {request: 30%}}\n"
                  "  - {name: b, token: reload-tenant-b-token, memory: 1Gi, compute: {request: 20%}}\n");
  ASSERT_TRUE(wait_until([&] { return log_has("definition is not applied"); }, 20s)) << f_.daemon_log();
  EXPECT_TRUE(log_has("tenant 'a' was changed at run time")) << f_.daemon_log();
  EXPECT_TRUE(log_has("`vgpuctl tenant reset a` applies the file")) << f_.daemon_log();
  EXPECT_EQ(tenant("a")["memory_bytes"].get<uint64_t>(), 3ull << 30);
  EXPECT_EQ(tenant("a")["source"], "api");

  json reset = ctl({"tenant", "reset", "a"});
  ASSERT_TRUE(reset.is_object()) << f_.daemon_log();
  EXPECT_EQ(reset["memory_bytes"].get<uint64_t>(), 4ull << 30);
  EXPECT_EQ(reset["source"], "config");
  EXPECT_TRUE(log_has("(vgpuctl): tenant 'a' reset to the file: memory: 3Gi -> 4Gi")) << f_.daemon_log();
  // From now on the file defines it again.
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: 5Gi, compute: {request: 30%}}\n"
                  "  - {name: b, token: reload-tenant-b-token, memory: 1Gi, compute: {request: 20%}}\n");
  EXPECT_TRUE(wait_until([&] { return tenant("a").value("memory_bytes", 0ull) == (5ull << 30); }, 20s))
      << f_.daemon_log();
}

TEST_F(VgpudReload, ResetBringsBackATenantDeletedAtRunTimeAndRefusesUnknownOnes) {
  Child del({bin_dir() + "/vgpuctl", "--socket", f_.admin_socket(), "tenant", "delete", "b"}, {});
  ASSERT_EQ(del.wait(20s), 0) << del.errors();
  EXPECT_TRUE(tenant("b").is_null());
  json back = ctl({"tenant", "reset", "b"});
  ASSERT_TRUE(back.is_object());
  EXPECT_EQ(back["memory_bytes"].get<uint64_t>(), 1ull << 30);
  Child unknown({bin_dir() + "/vgpuctl", "--socket", f_.admin_socket(), "tenant", "reset", "nosuch"}, {});
  EXPECT_NE(unknown.wait(20s), 0);
  EXPECT_NE(unknown.errors().find("is not in"), std::string::npos) << unknown.errors();
}

TEST_F(VgpudReload, ABrokenFileChangesNothingAndNodeKeysWaitForARestart) {
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: lots}\n");
  ASSERT_TRUE(wait_until([&] { return log_has("reload refused, nothing changed"); }, 20s)) << f_.daemon_log();
  EXPECT_EQ(tenant("a")["memory_bytes"].get<uint64_t>(), 1ull << 30);
  EXPECT_TRUE(tenant("b").is_object());
  // Requests over 100 % with the file's tenants: refused as a whole.
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: 1Gi, compute: {request: 90%}}\n"
                  "  - {name: b, token: reload-tenant-b-token, memory: 1Gi, compute: {request: 20%}}\n");
  ASSERT_TRUE(wait_until([&] {
    std::string log = f_.daemon_log();
    size_t first = log.find("reload refused");
    return first != std::string::npos && log.find("reload refused", first + 1) != std::string::npos;
  }, 20s)) << f_.daemon_log();
  EXPECT_DOUBLE_EQ(tenant("a")["compute_request"].get<double>(), 0.3);
  // Node-wide keys of a refused file are not applied either.
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: 1Gi, compute: {request: 90%}}\n"
                  "  - {name: b, token: reload-tenant-b-token, memory: 1Gi, compute: {request: 20%}}\n",
                  "scheduler: {quantum: 7ms, inflight_cap: 3}\n");
  ASSERT_TRUE(wait_until([&] {
    std::string log = f_.daemon_log();
    size_t at = 0;
    int n = 0;
    while ((at = log.find("reload refused", at)) != std::string::npos) ++n, ++at;
    return n == 3;
  }, 20s)) << f_.daemon_log();
  proto::Welcome w{};
  auto p = registered(&w);
  ASSERT_TRUE(p) << f_.daemon_log();
  EXPECT_EQ(w.quantum_ns, 10'000'000u);
  EXPECT_EQ(w.inflight_cap, 16u);
  EXPECT_FALSE(log_has("scheduler.quantum")) << f_.daemon_log();
  // A key bound at start: reported, applied at the next start.
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: 1Gi, compute: {request: 30%}}\n"
                  "  - {name: b, token: reload-tenant-b-token, memory: 1Gi, compute: {request: 20%}}\n",
                  "metrics: 127.0.0.1:1\n");
  EXPECT_TRUE(wait_until([&] {
    return log_has("metrics: (none) -> 127.0.0.1:1 changed; it takes effect when vgpud restarts");
  }, 20s)) << f_.daemon_log();
  EXPECT_TRUE(f_.daemon_running());
}

// scheduler.* and limits.* apply to the running vgpud: a process registering
// after the reload is told the new quantum and inflight cap, and the lowered
// per-uid connection cap refuses a third connection of this uid.
TEST_F(VgpudReload, SchedulerAndLimitsApplyLive) {
  // Before: three connections of this uid register (the cap is 256).
  std::vector<std::unique_ptr<HookPeer>> before;
  for (int i = 0; i < 3; ++i) {
    proto::Welcome w{};
    before.push_back(registered(&w));
    ASSERT_TRUE(before.back()) << f_.daemon_log();
    EXPECT_EQ(w.quantum_ns, 10'000'000u);
    EXPECT_EQ(w.inflight_cap, 16u);
  }
  before.clear();
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: 1Gi, compute: {request: 30%}}\n"
                  "  - {name: b, token: reload-tenant-b-token, memory: 1Gi, compute: {request: 20%}}\n",
                  "scheduler: {quantum: 7ms, window: 2s, inflight_cap: 3}\n"
                  "limits: {max_connections_per_uid: 2, hello_timeout: 30s}\n");
  ASSERT_TRUE(wait_until([&] { return log_has("reload: limits.max_connections_per_uid: 256 -> 2"); }, 20s))
      << f_.daemon_log();
  EXPECT_TRUE(log_has("reload: scheduler.quantum: 10ms -> 7ms")) << f_.daemon_log();
  EXPECT_TRUE(log_has("reload: scheduler.window: 1s -> 2s")) << f_.daemon_log();
  EXPECT_TRUE(log_has("reload: scheduler.inflight_cap: 16 -> 3")) << f_.daemon_log();
  EXPECT_TRUE(log_has("reload: limits.hello_timeout: 1s -> 30s")) << f_.daemon_log();
  EXPECT_FALSE(log_has("takes effect when vgpud restarts")) << f_.daemon_log();

  proto::Welcome w1{}, w2{};
  auto first = registered(&w1);
  ASSERT_TRUE(first) << f_.daemon_log();
  EXPECT_EQ(w1.quantum_ns, 7'000'000u);
  EXPECT_EQ(w1.inflight_cap, 3u);
  // Retried until the three connections above are gone from vgpud's count.
  auto second = registered(&w2);
  ASSERT_TRUE(second) << f_.daemon_log();
  // This uid now holds the two connections it may: a third is closed unanswered.
  HookPeer third(f_.socket());
  proto::Welcome w3{};
  EXPECT_FALSE(third.hello("reload-tenant-a-token", &w3));
  EXPECT_TRUE(third.closed_silently(5s));
  // One ends: there is room for one more.
  first.reset();
  proto::Welcome w4{};
  EXPECT_TRUE(registered(&w4)) << f_.daemon_log();
  EXPECT_TRUE(f_.daemon_running());
}

TEST_F(VgpudReload, BackstopSettingsApplyLive) {
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: 1Gi, compute: {request: 30%}}\n"
                  "  - {name: b, token: reload-tenant-b-token, memory: 1Gi, compute: {request: 20%}}\n",
                  "enforcement: {bpf: \"off\", policy: report, grace: 2s, tolerance: 128Mi}\n");
  ASSERT_TRUE(wait_until([&] { return log_has("reload: enforcement.policy: kill -> report"); }, 20s)) << f_.daemon_log();
  EXPECT_TRUE(log_has("reload: enforcement.grace: 500ms -> 2s")) << f_.daemon_log();
  EXPECT_TRUE(log_has("reload: enforcement.tolerance: 64Mi -> 128Mi")) << f_.daemon_log();
  EXPECT_FALSE(log_has("takes effect when vgpud restarts")) << f_.daemon_log();
}

}  // namespace
