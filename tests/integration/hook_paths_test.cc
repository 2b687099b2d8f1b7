// Lookup paths under LD_PRELOAD=libvgpu.so on simgpu: the per-thread-stream
// variant found through cuGetProcAddress reaches the real _ptsz function, and
// dlsym(RTLD_NEXT) from a program yields the hook with its quota
// (tests/programs/hook_paths_probe.cc).
#include <string>

#include <gtest/gtest.h>

#include "test_support.h"

namespace vgpu::test {
namespace {

using Settings = std::map<std::string, std::string>;

constexpr unsigned long long kUnit = 64ull << 20;

std::map<std::string, std::string> hook_env(const SimNode& node) {
  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  env["VGPU_MEMORY_LIMIT"] = std::to_string(4 * kUnit);
  return env;
}

TEST(HookPaths, PerThreadLaunchReachesThePerThreadStream) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}});
  // A 200 ms kernel; on a loaded machine the probe may not query within
  // 200 ms of the launch (exit 3, "inconclusive"): then retry, a few times.
  int status = 3;
  std::string out;
  for (int attempt = 0; attempt < 5 && status == 3; ++attempt) {
    Child child({program("hook_paths_probe"), "ptsz", "200000000"}, hook_env(node));
    status = child.wait(std::chrono::seconds(60));
    out = child.output() + child.errors();
  }
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(out, "ok\n");
}

TEST(HookPaths, RtldNextFromTheProgramYieldsTheHook) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_paths_probe"), "rtld_next", std::to_string(kUnit)}, hook_env(node));
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

}  // namespace
}  // namespace vgpu::test
