// libvgpu.so as a whole: exports and dependencies, exactness under a thread
// race, context overhead, virtualized views, quotas following GPU UUIDs, and
// pass-through of what is not hooked.
// simgpu's contexts take no memory here (SIMGPU_CONTEXT_OVERHEAD=0): the hook
// charges what a context takes (hook_driver_memory_test), which would shift
// the exact arithmetic these tests check.
#include <cstdio>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "test_support.h"

namespace vgpu::test {
namespace {

using Settings = std::map<std::string, std::string>;

std::string lib() { return lib_dir() + "/libvgpu.so"; }
std::string program(const std::string& name) { return build_dir() + "/tests/programs/" + name; }

std::string run_command(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

std::map<std::string, std::string> hook_env(const SimNode& node, std::map<std::string, std::string> extra) {
  auto env = node.env();
  env["LD_PRELOAD"] = lib();
  for (auto& [k, v] : extra) env[k] = v;
  return env;
}

TEST(HookLibrary, ExportsOnlyDriverNvmlAndDlsymNames) {
  std::istringstream names(run_command("nm -D --defined-only " + lib() + " | awk '{print $3}'"));
  std::string name;
  int count = 0;
  for (; names >> name; ++count)
    EXPECT_TRUE(name.rfind("cu", 0) == 0 || name.rfind("nvml", 0) == 0 || name == "dlsym") << name;
  EXPECT_GT(count, 40);
}

TEST(HookLibrary, LinksOnlyTheSystemRuntime) {
  const std::set<std::string> allowed = {"libc.so.6",    "libstdc++.so.6",  "libm.so.6",  "libgcc_s.so.1",
                                         "libdl.so.2",   "libpthread.so.0", "ld-linux-x86-64.so.2"};
  std::istringstream needed(run_command("readelf -d " + lib() + " | sed -n 's/.*Shared library: \\[\\(.*\\)\\]/\\1/p'"));
  std::string name;
  int count = 0;
  for (; needed >> name; ++count) EXPECT_TRUE(allowed.count(name)) << name;
  EXPECT_GT(count, 0);
}

TEST(HookLibrary, AProcessWithoutCudaPaysNothing) {
  SimNode node;
  Child child({"/bin/true"}, hook_env(node, {{"VGPU_MEMORY_LIMIT", "bad"}}));
  EXPECT_EQ(child.wait(std::chrono::seconds(30)), 0);
  EXPECT_EQ(child.errors(), "") << "no configuration is read before CUDA is used";
}

TEST(HookLibrary, ThreadRaceIsExact) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_race_probe"), "8", std::to_string(1 << 20), "5"},
              hook_env(node, {{"VGPU_MEMORY_LIMIT", "100Mi"}}));
  ASSERT_EQ(child.wait(std::chrono::seconds(120)), 0) << child.errors();
  std::string expected_line = "granted=100 free=0 errors=0\n";
  std::string expected;
  for (int i = 0; i < 5; ++i) expected += expected_line;
  EXPECT_EQ(child.output(), expected);
}

struct DeviceLine {
  std::string uuid;
  int nvml_index = -1;
  unsigned long long total_mem = 0, info_total = 0, info_free = 0, nvml_total = 0, nvml_free = 0, nvml2_total = 0,
                     nvml2_free = 0;
};

std::vector<DeviceLine> parse_views(const std::string& out) {
  std::vector<DeviceLine> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    DeviceLine d;
    int ordinal;
    char uuid[64];
    if (std::sscanf(line.c_str(),
                    "ordinal=%d uuid=%63s nvml_index=%d total_mem=%llu info_total=%llu info_free=%llu "
                    "nvml_total=%llu nvml_free=%llu nvml2_total=%llu nvml2_free=%llu",
                    &ordinal, uuid, &d.nvml_index, &d.total_mem, &d.info_total, &d.info_free, &d.nvml_total,
                    &d.nvml_free, &d.nvml2_total, &d.nvml2_free) == 10) {
      d.uuid = uuid;
      lines.push_back(d);
    }
  }
  return lines;
}

// Two GPUs of 8 and 4 GiB with per-GPU quotas by NVML index; the views and the
// limits must follow each GPU's UUID whatever ordinal CUDA gives it.
void check_views_follow_uuid(const std::string& visible) {
  SimNode node(Settings{{"SIMGPU_DEVICES", "2"}, {"SIMGPU_MEMORY", "8Gi,4Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  std::map<std::string, std::string> extra = {{"VGPU_MEMORY_LIMIT_0", "1Gi"}, {"VGPU_MEMORY_LIMIT_1", "2Gi"}};
  if (!visible.empty()) extra["CUDA_VISIBLE_DEVICES"] = visible;
  Child child({program("hook_views_probe"), std::to_string(256ull << 20)}, hook_env(node, extra));
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.output() << child.errors();
  auto lines = parse_views(child.output());
  ASSERT_EQ(lines.size(), 2u) << child.output();
  for (const DeviceLine& d : lines) {
    ASSERT_GE(d.nvml_index, 0);
    unsigned long long quota = (d.nvml_index == 0 ? 1ull : 2ull) << 30;
    unsigned long long free = quota - (256ull << 20);
    EXPECT_EQ(d.total_mem, quota) << d.uuid;
    EXPECT_EQ(d.info_total, quota);
    EXPECT_EQ(d.info_free, free);
    EXPECT_EQ(d.nvml_total, quota);
    EXPECT_EQ(d.nvml_free, free);
    EXPECT_EQ(d.nvml2_total, quota);
    EXPECT_EQ(d.nvml2_free, free);
  }
  EXPECT_NE(child.output().find("passthrough=ok"), std::string::npos) << child.output();
}

TEST(HookDevices, ViewsAndLimitsFollowTheUuid) { check_views_follow_uuid(""); }
TEST(HookDevices, ReorderedVisibleDevices) { check_views_follow_uuid("1,0"); }

TEST(HookContexts, OverheadIsCharged) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  // Quota 4 units + one context of 1 unit: the probe's third allocation no
  // longer fits exactly, so it must be refused.
  unsigned long long unit = 64ull << 20;
  Child child({program("hook_alloc_probe"), "alloc", "direct", std::to_string(unit)},
              hook_env(node, {{"VGPU_MEMORY_LIMIT", std::to_string(4 * unit)},
                              {"VGPU_CONTEXT_OVERHEAD", std::to_string(unit)}}));
  EXPECT_EQ(child.wait(std::chrono::seconds(60)), 1);
  EXPECT_NE(child.output().find("FAIL alloc to the exact quota: got 2"), std::string::npos) << child.output();
}

}  // namespace
}  // namespace vgpu::test
