// SIGHUP: vgpud re-reads its configuration file and applies tenant changes
// live; runtime changes (vgpuctl) win over the file until `vgpuctl tenant
// reset`; node-wide keys are reported as needing a restart; a broken file
// changes nothing (scheduler/reload.h, docs/operations.md).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using vgpu::test::bin_dir;
using vgpu::test::Child;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

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
  // A node-wide key: reported, applied at the next start.
  rewrite_tenants("  - {name: a, token: reload-tenant-a-token, memory: 1Gi, compute: {request: 30%}}\n"
                  "  - {name: b, token: reload-tenant-b-token, memory: 1Gi, compute: {request: 20%}}\n",
                  "scheduler: {quantum: 7ms}\n");
  EXPECT_TRUE(wait_until([&] { return log_has("scheduler.quantum: 10ms -> 7ms changed; it takes effect when vgpud restarts"); },
                         20s))
      << f_.daemon_log();
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
