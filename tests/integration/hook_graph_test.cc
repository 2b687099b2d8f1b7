// Graph memory nodes under LD_PRELOAD=libvgpu.so on simgpu: charged when the
// alloc node is added (quota boundary), returned by a launched free node, by
// cuMemFree of live graph memory, or by destroying an unlaunched graph
// (tests/programs/hook_graph_probe.cc describes each step).
#include <string>

#include <gtest/gtest.h>

#include "test_support.h"

namespace vgpu::test {
namespace {

using Settings = std::map<std::string, std::string>;

constexpr unsigned long long kUnit = 64ull << 20;

TEST(HookGraphMemory, FollowsTheDocumentedLifecycle) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  env["VGPU_MEMORY_LIMIT"] = std::to_string(4 * kUnit);
  Child child({program("hook_graph_probe"), std::to_string(kUnit)}, env);
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0)
      << child.output() << child.errors()
      << "(launch steps: the cuGraphLaunch wrappers must call launch_graph_charged, graph_memory.h)";
  EXPECT_EQ(child.output(), "ok\n");
}

// Without the hook simgpu takes graph memory only at launch and has room for
// far more than 4 units: the probe's refusals come from the hook.
TEST(HookGraphMemoryControl, WithoutTheHookNothingIsCharged) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_graph_probe"), std::to_string(kUnit)}, node.env());
  EXPECT_EQ(child.wait(std::chrono::seconds(60)), 1);
  EXPECT_NE(child.output().find("FAIL"), std::string::npos) << child.output();
}

// Stream capture under the hook (tests/programs/hook_graph_capture_probe.cc):
// cuMemAllocAsync / cuMemFreeAsync / cuGraphLaunch into a capturing stream
// pass through untouched (the capture succeeds; nothing is charged, even past
// the quota), and the captured graph's memory is charged when it is launched.
TEST(HookGraphCapture, CapturedAllocsAndNestedLaunchesAreChargedOnlyWhenTheGraphRuns) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  env["VGPU_MEMORY_LIMIT"] = std::to_string(4 * kUnit);
  Child child({program("hook_graph_capture_probe"), std::to_string(kUnit)}, env);
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

// Without the hook the launch past the quota is not refused: that refusal is
// the hook's.
TEST(HookGraphCaptureControl, WithoutTheHookTheLaunchIsNotRefused) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_graph_capture_probe"), std::to_string(kUnit)}, node.env());
  EXPECT_EQ(child.wait(std::chrono::seconds(60)), 1);
  EXPECT_NE(child.output().find("FAIL launch over quota: got 0"), std::string::npos) << child.output();
}

}  // namespace
}  // namespace vgpu::test
