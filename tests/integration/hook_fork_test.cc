// fork() under LD_PRELOAD=libvgpu.so: the child does not inherit its parent's
// charges and can use CUDA afresh up to the whole quota; the parent's charges
// are unaffected (tests/programs/hook_fork_probe.cc).
#include <string>

#include <gtest/gtest.h>

#include "test_support.h"

namespace vgpu::test {
namespace {

using Settings = std::map<std::string, std::string>;

constexpr unsigned long long kUnit = 64ull << 20;

TEST(HookFork, ChildStartsFreshAndParentKeepsItsCharges) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  env["VGPU_MEMORY_LIMIT"] = std::to_string(4 * kUnit);
  Child child({program("hook_fork_probe"), std::to_string(kUnit)}, env);
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

}  // namespace
}  // namespace vgpu::test
