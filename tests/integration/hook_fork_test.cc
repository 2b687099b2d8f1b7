// fork() under LD_PRELOAD=libvgpu.so, in the ways that are valid on NVIDIA's
// real driver (tests/programs/hook_fork_probe.cc): a child forked after its
// parent initialised CUDA cannot use CUDA (the hook passes the driver's
// refusal through, charges nothing and does not hang); a process exec'd from
// such a child, or a child forked before the parent's cuInit, starts fresh
// with the whole quota; the parent's charges are unaffected by its children.
// simgpu's own refusal is checked in simgpu_context_test
// (ChildForkedAfterInitCannotInitialise).
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "test_support.h"

namespace vgpu::test {
namespace {

using Settings = std::map<std::string, std::string>;

constexpr unsigned long long kUnit = 64ull << 20;

std::map<std::string, std::string> hooked_env(const SimNode& node) {
  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  env["VGPU_MEMORY_LIMIT"] = std::to_string(4 * kUnit);
  return env;
}

TEST(HookFork, ChildAfterInitIsRefusedExecdChildStartsFreshParentKeepsItsCharges) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_fork_probe"), std::to_string(kUnit), "after-init"}, hooked_env(node));
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

TEST(HookFork, ChildForkedBeforeInitStartsFreshWithTheWholeQuota) {
  SimNode node(Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_fork_probe"), std::to_string(kUnit), "before-init"}, hooked_env(node));
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

}  // namespace
}  // namespace vgpu::test
