// Context teardown returns the quota (tests/programs/hook_teardown_probe.cc):
// a 1 GiB quota filled from one context is available again after that
// context is destroyed, its primary context reset, or the primary's last
// retain released — in standalone mode and under vgpud.
// simgpu's contexts take no memory here (SIMGPU_CONTEXT_OVERHEAD=0): the hook
// charges what a context takes (hook_driver_memory_test), which would shift
// the exact arithmetic these tests check.
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "test_support.h"
#include "vgpud_fixture.h"

namespace vgpu::test {
namespace {

using namespace std::chrono_literals;

std::map<std::string, std::string> standalone_env(const SimNode& node, const std::string& overhead) {
  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  env["VGPU_MEMORY_LIMIT"] = "1Gi";
  env["VGPU_CONTEXT_OVERHEAD"] = overhead;
  return env;
}

class HookTeardown : public ::testing::TestWithParam<std::string> {};

TEST_P(HookTeardown, TeardownReturnsEverythingTheContextHeld) {
  SimNode node(std::map<std::string, std::string>{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_teardown_probe"), GetParam(), "64"}, standalone_env(node, "64Mi"));
  ASSERT_EQ(child.wait(60s), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

TEST_P(HookTeardown, WithoutContextOverhead) {
  SimNode node(std::map<std::string, std::string>{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_teardown_probe"), GetParam(), "0"}, standalone_env(node, "0"));
  ASSERT_EQ(child.wait(60s), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

INSTANTIATE_TEST_SUITE_P(Modes, HookTeardown, ::testing::Values("destroy", "reset", "release"));

// The probe's "quota is full" checks would pass without a quota at all if the
// hook were not enforcing one: without the hook nothing is refused.
TEST(HookTeardownControl, WithoutTheHookNothingIsRefused) {
  SimNode node(std::map<std::string, std::string>{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child child({program("hook_teardown_probe"), "destroy", "0"}, node.env());
  EXPECT_EQ(child.wait(60s), 1);
  EXPECT_NE(child.output().find("FAIL A one more MiB"), std::string::npos) << child.output();
}

class HookTeardownDaemon : public ::testing::TestWithParam<std::string> {};

TEST_P(HookTeardownDaemon, TenantQuotaComesBack) {
  VgpudFixture f("  - {name: solo, token: teardown-tenant-token, memory: 1Gi}\n",
                 std::map<std::string, std::string>{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto child = f.run({program("hook_teardown_probe"), GetParam(), "0"}, "teardown-tenant-token");
  ASSERT_EQ(child->wait(60s), 0) << child->output() << child->errors();
  EXPECT_EQ(child->output(), "ok\n");
}

INSTANTIATE_TEST_SUITE_P(Modes, HookTeardownDaemon, ::testing::Values("destroy", "reset", "release"));

}  // namespace
}  // namespace vgpu::test
