// What the enforcement backstop does is visible to the operator: a process
// using the GPU without registering (no LD_PRELOAD) shows in `vgpuctl events`
// (reason unregistered, action reported under policy report), in `vgpuctl ps`
// as unmanaged with the memory NVML sees, and in the metrics
// (vgpu_enforcement_actions_total, vgpu_unmanaged_processes). A tenant's own
// enforcement policy is set, shown and persisted through vgpuctl.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using vgpu::test::bin_dir;
using vgpu::test::Child;
using vgpu::test::program;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

const char* kTenants = "  - {name: base, token: base-tenant-token-1, memory: 1Gi}\n";
// Policy report, so that the process stays and can be looked at; no startup
// grace, so that it is acted on within a poll + grace (0.7 s).
const char* kEnforce = "enforcement: {bpf: \"off\", startup_grace: 0s, policy: report}\n";
constexpr uint64_t kHeld = 64ull << 20;

struct Ctl {
  int code;
  std::string out, err;
};

Ctl vgpuctl(const VgpudFixture& f, std::vector<std::string> args) {
  args.insert(args.begin(), bin_dir() + "/vgpuctl");
  args.push_back("--socket=" + f.admin_socket());
  Child c(args, {});
  int code = c.wait(60s);
  return {code, c.output(), c.errors()};
}

json parse(const Ctl& r) {
  EXPECT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json::object() : j;
}

// The entries of `list` whose "pid" is `pid`.
json with_pid(const json& list, int pid) {
  json out = json::array();
  if (!list.is_array()) return out;
  for (const auto& x : list)
    if (x.value("pid", 0) == pid) out.push_back(x);
  return out;
}

using vgpu::test::free_port;
using vgpu::test::scrape_metrics;

// The value of the first sample of `metric` whose label text contains every
// one of `labels` (a metric without labels: pass none); -1 if there is none.
double sample(const std::string& text, const std::string& metric, const std::vector<std::string>& labels) {
  std::regex re("^" + metric + "(\\{([^}]*)\\})? ([0-9.e+-]+)$");
  std::smatch m;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!std::regex_match(line, m, re)) continue;
    bool all = true;
    for (const auto& l : labels) all = all && m[2].str().find(l) != std::string::npos;
    if (all) return std::stod(m[3]);
  }
  return -1;
}

TEST(VgpuctlEvents, UnregisteredProcessShowsInEventsPsAndMetrics) {
  int port = free_port();
  VgpudFixture f(kTenants, {}, std::string(kEnforce) + "metrics: 127.0.0.1:" + std::to_string(port) + "\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  uint64_t started = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  // A registered process for comparison, and one without the hook at all.
  auto managed = f.run({program("sim_mem_holder"), "hold", std::to_string(128ull << 20)}, "base-tenant-token-1");
  Child rogue({program("sim_mem_holder"), "hold", std::to_string(kHeld)}, f.node().env());
  ASSERT_TRUE(wait_until([&] { return rogue.output().find("ready") != std::string::npos; }, 20s)) << rogue.errors();
  ASSERT_TRUE(wait_until([&] { return managed->output().find("ready") != std::string::npos; }, 20s))
      << managed->errors();

  // events: the report, once.
  json events;
  ASSERT_TRUE(wait_until([&] {
    events = with_pid(parse(vgpuctl(f, {"events", "-o", "json"}))["events"], rogue.pid());
    return !events.empty();
  }, 10s)) << f.daemon_log();
  ASSERT_EQ(events.size(), 1u) << events;
  const json& e = events[0];
  EXPECT_EQ(e["reason"], "unregistered");
  EXPECT_EQ(e["action"], "reported");
  EXPECT_EQ(e["tenant"], "");
  EXPECT_EQ(e["gpu"], 0);
  EXPECT_GE(e["unix_ns"].get<uint64_t>(), started - 1'000'000'000ull);
  EXPECT_FALSE(e["detail"].get<std::string>().empty());
  EXPECT_TRUE(rogue.running()) << "policy report must not end the process";

  // Filters: unregistered only ("-"), another tenant, a window, a limit.
  EXPECT_EQ(with_pid(parse(vgpuctl(f, {"events", "--tenant", "-", "-o", "json"}))["events"], rogue.pid()).size(), 1u);
  EXPECT_TRUE(with_pid(parse(vgpuctl(f, {"events", "--tenant", "base", "-o", "json"}))["events"], rogue.pid()).empty());
  EXPECT_EQ(with_pid(parse(vgpuctl(f, {"events", "--since", "10m", "-o", "json"}))["events"], rogue.pid()).size(), 1u);
  EXPECT_EQ(parse(vgpuctl(f, {"events", "--limit", "1", "-o", "json"}))["events"].size(), 1u);
  Ctl table = vgpuctl(f, {"events"});
  ASSERT_EQ(table.code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("TIME ", 0), 0u) << table.out;
  EXPECT_TRUE(std::regex_search(table.out, std::regex("\\n20[0-9-]+T[0-9:.]+Z +unregistered +reported +" +
                                                      std::to_string(rogue.pid()) + " +- +0 ")))
      << table.out;
  Ctl yaml = vgpuctl(f, {"events", "-o", "yaml"});
  EXPECT_NE(yaml.out.find("  - unix_ns: "), std::string::npos) << yaml.out;

  // ps: the rogue as unmanaged with what NVML sees; the registered one with
  // its ledger and physical bytes.
  json procs;
  ASSERT_TRUE(wait_until([&] {
    procs = parse(vgpuctl(f, {"ps", "-o", "json"}))["processes"];
    json m = with_pid(procs, managed->pid());
    return !m.empty() && m[0]["gpus"].size() >= 1 && m[0]["gpus"][0]["physical_bytes"].get<uint64_t>() > 0;
  }, 10s)) << procs;
  json r = with_pid(procs, rogue.pid());
  ASSERT_EQ(r.size(), 1u) << procs;
  EXPECT_EQ(r[0]["managed"], false);
  EXPECT_EQ(r[0]["tenant"], "");
  ASSERT_GE(r[0]["gpus"].size(), 1u) << r;
  EXPECT_EQ(r[0]["gpus"][0]["index"], 0);
  EXPECT_GE(r[0]["gpus"][0]["physical_bytes"].get<uint64_t>(), kHeld) << r;
  EXPECT_EQ(r[0]["gpus"][0]["memory_bytes"], 0);
  json m = with_pid(procs, managed->pid());
  EXPECT_EQ(m[0]["managed"], true);
  EXPECT_EQ(m[0]["tenant"], "base");
  EXPECT_EQ(m[0]["gpus"][0]["memory_bytes"].get<uint64_t>(), 128ull << 20);
  EXPECT_GE(m[0]["gpus"][0]["physical_bytes"].get<uint64_t>(), 128ull << 20) << m;
  Ctl ps = vgpuctl(f, {"ps"});
  ASSERT_EQ(ps.code, 0) << ps.err;
  EXPECT_NE(ps.out.find("PID  "), std::string::npos) << ps.out;
  EXPECT_NE(ps.out.find("PHYSICAL"), std::string::npos) << ps.out;
  EXPECT_TRUE(std::regex_search(ps.out, std::regex("\\n" + std::to_string(rogue.pid()) + " +\\(unmanaged\\) +0 +- +[0-9.]+[KMG]i +-\\n")))
      << ps.out;
  // One tenant's processes: no unmanaged ones.
  json only = parse(vgpuctl(f, {"ps", "--tenant", "base", "-o", "json"}))["processes"];
  EXPECT_TRUE(with_pid(only, rogue.pid()).empty()) << only;
  EXPECT_EQ(with_pid(only, managed->pid()).size(), 1u) << only;

  // Metrics: one report counted, one unmanaged process.
  std::string text;
  EXPECT_TRUE(wait_until([&] {
    text = scrape_metrics(port);
    return sample(text, "vgpu_enforcement_actions_total", {"reason=\"unregistered\"", "action=\"reported\""}) == 1 &&
           sample(text, "vgpu_unmanaged_processes", {}) == 1;
  }, 10s)) << text;
  EXPECT_EQ(sample(text, "vgpu_enforcement_actions_total", {"reason=\"over_quota\""}), -1) << text;

  // When it ends, it leaves ps and the gauge; its event stays.
  rogue.kill(SIGKILL);
  rogue.wait(10s);
  EXPECT_TRUE(wait_until([&] {
    return with_pid(parse(vgpuctl(f, {"ps", "-o", "json"}))["processes"], rogue.pid()).empty() &&
           sample(scrape_metrics(port), "vgpu_unmanaged_processes", {}) == 0;
  }, 10s));
  EXPECT_EQ(with_pid(parse(vgpuctl(f, {"events", "-o", "json"}))["events"], rogue.pid()).size(), 1u);
}

TEST(VgpuctlEvents, TenantEnforcementPolicyIsSetShownAndPersisted) {
  VgpudFixture f(kTenants, {}, "");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  json created = parse(vgpuctl(f, {"tenant", "create", "nb", "--memory", "256Mi", "--enforcement", "report", "-o", "json"}));
  EXPECT_EQ(created["tenant"]["enforcement"], "report") << created;
  EXPECT_EQ(parse(vgpuctl(f, {"tenant", "get", "nb", "-o", "json"}))["enforcement"], "report");
  // A config tenant without one follows the node: "".
  EXPECT_EQ(parse(vgpuctl(f, {"tenant", "get", "base", "-o", "json"}))["enforcement"], "");
  Ctl table = vgpuctl(f, {"tenant", "get", "nb"});
  EXPECT_NE(table.out.find("Enforcement:  report\n"), std::string::npos) << table.out;

  // Other changes leave it alone; --enforcement alone is a change.
  EXPECT_EQ(parse(vgpuctl(f, {"tenant", "update", "nb", "--memory", "512Mi", "-o", "json"}))["enforcement"], "report");
  EXPECT_EQ(parse(vgpuctl(f, {"tenant", "update", "nb", "--enforcement", "kill", "-o", "json"}))["enforcement"], "kill");
  Ctl bad = vgpuctl(f, {"tenant", "update", "nb", "--enforcement", "lenient"});
  EXPECT_EQ(bad.code, 2) << bad.err;

  // Persisted: still "kill" after a restart; "default" clears it.
  f.stop_daemon();
  ASSERT_TRUE(f.start(&why)) << why;
  EXPECT_EQ(parse(vgpuctl(f, {"tenant", "get", "nb", "-o", "json"}))["enforcement"], "kill") << f.daemon_log();
  EXPECT_EQ(parse(vgpuctl(f, {"tenant", "update", "nb", "--enforcement", "default", "-o", "json"}))["enforcement"], "");
  json list = parse(vgpuctl(f, {"tenant", "list", "-o", "json"}));
  ASSERT_EQ(list["tenants"].size(), 2u) << list;
  for (const auto& t : list["tenants"]) EXPECT_EQ(t["enforcement"], "") << t;
}

}  // namespace
