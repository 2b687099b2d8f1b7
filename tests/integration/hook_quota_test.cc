// Real driver-API programs under LD_PRELOAD=libvgpu.so on simgpu: every
// allocation API through every lookup path hits the quota exactly
// (tests/programs/hook_alloc_probe.cc describes the scenario).
// simgpu's contexts take no memory here (SIMGPU_CONTEXT_OVERHEAD=0): the hook
// charges what a context takes (hook_driver_memory_test), which would shift
// the exact arithmetic these tests check.
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include "test_support.h"

namespace vgpu::test {
namespace {

using Settings = std::map<std::string, std::string>;

constexpr unsigned long long kUnit = 64ull << 20;

std::map<std::string, std::string> hook_env(const SimNode& node, std::map<std::string, std::string> extra) {
  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  for (auto& [k, v] : extra) env[k] = v;
  return env;
}

std::string program(const std::string& name) { return build_dir() + "/tests/programs/" + name; }

class HookQuota : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(HookQuota, BoundaryRefusalAndFree) {
  auto [api, path] = GetParam();
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_alloc_probe"), api, path, std::to_string(kUnit)},
              hook_env(node, {{"VGPU_MEMORY_LIMIT", std::to_string(4 * kUnit)}}));
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
  EXPECT_NE(child.errors().find("refused"), std::string::npos) << "the refusal is logged";
}

INSTANTIATE_TEST_SUITE_P(
    AllApisAllPaths, HookQuota,
    ::testing::Combine(::testing::Values("alloc", "pitch", "managed", "async", "async_ptsz", "pool", "vmm", "array",
                                         "array3d", "mipmap"),
                       ::testing::Values("direct", "proc", "dlsym", "dlsym_proc")),
    [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

// Without the hook the same program fails at "one unit over": proves the
// probe's OUT_OF_MEMORY comes from the hook, not from simgpu.
TEST(HookQuotaControl, WithoutTheHookNothingIsRefused) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  auto env = node.env();
  Child child({program("hook_alloc_probe"), "alloc", "direct", std::to_string(kUnit)}, env);
  EXPECT_EQ(child.wait(std::chrono::seconds(60)), 1);
  EXPECT_NE(child.output().find("FAIL alloc one unit over"), std::string::npos) << child.output();
}

TEST(HookQuotaManaged, ChargeCanBeTurnedOff) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_alloc_probe"), "managed", "direct", std::to_string(kUnit)},
              hook_env(node, {{"VGPU_MEMORY_LIMIT", std::to_string(4 * kUnit)}, {"VGPU_CHARGE_MANAGED", "0"}}));
  EXPECT_EQ(child.wait(std::chrono::seconds(60)), 1);
  EXPECT_NE(child.output().find("FAIL alloc one unit over"), std::string::npos) << child.output();
}

TEST(HookQuotaAliases, HamiVariablesWork) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_alloc_probe"), "alloc", "direct", std::to_string(kUnit)},
              hook_env(node, {{"CUDA_DEVICE_MEMORY_LIMIT", "256m"}}));
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.output() << child.errors();
}

TEST(HookQuotaMalformed, TypoRefusesEverythingAndIsReportedOnce) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_alloc_probe"), "alloc", "direct", std::to_string(kUnit)},
              hook_env(node, {{"VGPU_MEMORY_LIMIT", "4GG"}}));
  EXPECT_EQ(child.wait(std::chrono::seconds(60)), 1);
  EXPECT_NE(child.output().find("FAIL alloc 1 unit: got 2"), std::string::npos) << child.output();
  std::string err = child.errors();
  size_t first = err.find("VGPU_MEMORY_LIMIT");
  ASSERT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find("'4GG'", err.find("'4GG'") + 1), std::string::npos) << "reported once: " << err;
}

}  // namespace
}  // namespace vgpu::test
