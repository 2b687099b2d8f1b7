// NVML's per-process views inside a tenant (issue 8, item 10): under the hook
// a process sees only its tenant's processes in the running-process lists
// (v3, v2, v1; exported names and dlsym) and in per-process utilization; the
// same probe without the hook on the same node sees everyone, so these tests
// fail when the filter is missing. Standalone (no vgpud), a process sees only
// itself. Probe: tests/programs/nvml_process_list.cc.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include "vgpud_fixture.h"

namespace vgpu::test {
namespace {

using namespace std::chrono_literals;
using Pids = std::set<unsigned>;

const char* const kTokenA = "nvml-view-tenant-a-token";
const char* const kTokenB = "nvml-view-tenant-b-token";
const char* const kLists[] = {"compute_v3", "compute_v2", "compute_v1", "dlsym_v3", "dlsym_v2", "dlsym_v1"};
const char* const kUtil[] = {"util", "util_info"};

// One run of the probe, parsed.
struct Listing {
  bool ok = false;
  unsigned self = 0;
  std::map<std::string, Pids> pids;  // per line name
  std::string protocol, raw;
};

Listing parse(Child& c) {
  Listing l;
  int status = c.wait(60s);
  l.raw = c.output() + c.errors();
  std::istringstream in(c.output());
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("self=", 0) == 0) l.self = static_cast<unsigned>(std::stoul(line.substr(5)));
    if (line.rfind("protocol=", 0) == 0) l.protocol = line.substr(9);
    size_t at = line.find(" pids=");
    if (at == std::string::npos) continue;
    Pids& p = l.pids[line.substr(0, line.find(' '))];
    std::istringstream list(line.substr(at + 6));
    for (std::string pid; std::getline(list, pid, ',');)
      if (!pid.empty()) p.insert(static_cast<unsigned>(std::stoul(pid)));
  }
  l.ok = status == 0 && l.pids.size() == std::size(kLists) + std::size(kUtil);
  return l;
}

Listing probe(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  std::vector<std::string> argv{program("nvml_process_list")};
  argv.insert(argv.end(), args.begin(), args.end());
  Child c(argv, env);
  return parse(c);
}

bool ready(Child& c) { return c.output().find("ready") != std::string::npos; }

std::string describe(const Listing& l) { return l.raw; }

TEST(HookNvmlView, ATenantSeesOnlyItsOwnProcesses) {
  VgpudFixture f(std::string("  - {name: a, token: ") + kTokenA + ", memory: 2Gi}\n  - {name: b, token: " + kTokenB +
                 ", memory: 2Gi}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto a_holder = f.run({program("sim_mem_holder"), "hold", std::to_string(64 << 20)}, kTokenA);
  auto b_holder = f.run({program("sim_mem_holder"), "hold", std::to_string(96 << 20)}, kTokenB);
  // B also computes, so it has per-process utilization samples to hide.
  auto b_spin = f.run({program("sim_spin"), "60", "2000"}, kTokenB);
  ASSERT_TRUE(wait_until([&] { return ready(*a_holder) && ready(*b_holder); }, 30s))
      << a_holder->errors() << b_holder->errors();
  const unsigned a = static_cast<unsigned>(a_holder->pid()), b = static_cast<unsigned>(b_holder->pid()),
                 spin = static_cast<unsigned>(b_spin->pid());

  // Without the hook the node shows everyone, B's utilization included: what
  // the filter must take away is really there.
  Listing plain;
  ASSERT_TRUE(wait_until(
      [&] {
        plain = probe({}, f.node().env());
        return plain.ok && plain.pids["compute_v3"].count(spin) && plain.pids["util"].count(spin);
      },
      30s))
      << describe(plain) << b_spin->errors();
  for (const char* name : kLists) {
    EXPECT_TRUE(plain.pids[name].count(a) && plain.pids[name].count(b)) << name << "\n" << describe(plain);
  }

  // Under tenant A: A's holder and the probe itself, never B's processes.
  Listing in_a = probe({"hold", std::to_string(1 << 20)}, f.tenant_env(kTokenA));
  ASSERT_TRUE(in_a.ok) << describe(in_a);
  EXPECT_EQ(in_a.protocol, "ok") << describe(in_a);
  for (const char* name : kLists) EXPECT_EQ(in_a.pids[name], (Pids{a, in_a.self})) << name << "\n" << describe(in_a);
  for (const char* name : kUtil) {
    EXPECT_EQ(in_a.pids[name].count(spin), 0u) << name << "\n" << describe(in_a);
    EXPECT_EQ(in_a.pids[name].count(b), 0u) << name << "\n" << describe(in_a);
  }

  // Under tenant B: B's processes, its utilization samples too; never A's.
  Listing in_b = probe({}, f.tenant_env(kTokenB));
  ASSERT_TRUE(in_b.ok) << describe(in_b);
  EXPECT_EQ(in_b.protocol, "ok") << describe(in_b);
  for (const char* name : kLists) EXPECT_EQ(in_b.pids[name], (Pids{b, spin})) << name << "\n" << describe(in_b);
  for (const char* name : kUtil) {
    EXPECT_EQ(in_b.pids[name].count(spin), 1u) << name << "\n" << describe(in_b);
    EXPECT_EQ(in_b.pids[name].count(a), 0u) << name << "\n" << describe(in_b);
  }
}

TEST(HookNvmlView, StandaloneSeesOnlyItself) {
  if (access("/run/vgpu/vgpud.sock", F_OK) == 0 || std::getenv("VGPU_TOKEN") || std::getenv("VGPU_SOCKET"))
    GTEST_SKIP() << "a vgpud socket or token is configured here: the hook would not run standalone";
  SimNode node;
  Child other({program("sim_mem_holder"), "hold", std::to_string(32 << 20)}, node.env());
  ASSERT_TRUE(wait_until([&] { return ready(other); }, 30s)) << other.errors();
  const unsigned pid = static_cast<unsigned>(other.pid());
  Listing plain = probe({}, node.env());
  ASSERT_TRUE(plain.ok) << describe(plain);
  ASSERT_EQ(plain.pids["compute_v3"].count(pid), 1u) << describe(plain);

  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  env["VGPU_MEMORY_LIMIT"] = std::to_string(1u << 30);
  Listing hooked = probe({"hold", std::to_string(1 << 20)}, env);
  ASSERT_TRUE(hooked.ok) << describe(hooked);
  EXPECT_EQ(hooked.protocol, "ok") << describe(hooked);
  for (const char* name : kLists) EXPECT_EQ(hooked.pids[name], Pids{hooked.self}) << name << "\n" << describe(hooked);
  for (const char* name : kUtil) EXPECT_EQ(hooked.pids[name].count(pid), 0u) << name << "\n" << describe(hooked);
}

}  // namespace
}  // namespace vgpu::test
