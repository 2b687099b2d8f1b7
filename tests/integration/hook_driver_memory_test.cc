// Memory the driver takes on the process's behalf is charged to the quota
// (tests/programs/hook_driver_memory_probe.cc): a context's own memory
// (measured, with the configured floor; in daemon mode vgpud's floor, never
// the tenant's VGPU_CONTEXT_OVERHEAD), module globals and cuCtxSetLimit
// memory. The probe also checks that the process's use per NVML never goes
// above the 1 GiB quota after any step.
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "test_support.h"
#include "vgpud_fixture.h"

namespace vgpu::test {
namespace {

using namespace std::chrono_literals;

std::map<std::string, std::string> standalone_env(const SimNode& node) {
  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  env["VGPU_MEMORY_LIMIT"] = "1Gi";
  return env;
}

// simgpu's contexts take 300 MiB: the hook measures it (VGPU_CONTEXT_OVERHEAD unset).
class HookDriverMemory : public ::testing::TestWithParam<std::string> {};

TEST_P(HookDriverMemory, ChargedAndRefusedOverQuota) {
  SimNode node(std::map<std::string, std::string>{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "300Mi"}});
  Child child({program("hook_driver_memory_probe"), GetParam()}, standalone_env(node));
  ASSERT_EQ(child.wait(60s), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

INSTANTIATE_TEST_SUITE_P(Modes, HookDriverMemory, ::testing::Values("context", "module", "limit"));

// The configured overhead is a floor: with a driver that takes nothing
// measurable, VGPU_CONTEXT_OVERHEAD is what a context costs.
TEST(HookDriverMemoryFloor, ConfiguredOverheadIsTheFloor) {
  SimNode node(std::map<std::string, std::string>{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  auto env = standalone_env(node);
  env["VGPU_CONTEXT_OVERHEAD"] = "300Mi";
  Child child({program("hook_driver_memory_probe"), "context"}, env);
  ASSERT_EQ(child.wait(60s), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

// Without the hook nothing is refused: the probe's refusals are the hook's.
TEST(HookDriverMemoryControl, WithoutTheHookNothingIsRefused) {
  SimNode node(std::map<std::string, std::string>{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "300Mi"}});
  Child child({program("hook_driver_memory_probe"), "context"}, node.env());
  EXPECT_EQ(child.wait(60s), 1);
  EXPECT_NE(child.output().find("FAIL cuMemAlloc 800 MiB"), std::string::npos) << child.output();
}

// Under vgpud the floor is vgpud's enforcement.context_overhead, even when the
// tenant sets VGPU_CONTEXT_OVERHEAD=0 (simgpu's contexts take nothing here,
// so only the floor can refuse the 800 MiB).
TEST(HookDriverMemoryDaemon, FloorComesFromVgpudNotTheTenant) {
  VgpudFixture f("  - {name: solo, token: drvmem-tenant-token, memory: 1Gi}\n",
                 std::map<std::string, std::string>{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}},
                 "enforcement: {bpf: \"off\", context_overhead: 300Mi}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto env = f.tenant_env("drvmem-tenant-token");
  env["VGPU_CONTEXT_OVERHEAD"] = "0";
  Child child({program("hook_driver_memory_probe"), "context"}, env);
  ASSERT_EQ(child.wait(60s), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
  EXPECT_NE(child.errors().find("VGPU_CONTEXT_OVERHEAD is ignored under vgpud"), std::string::npos) << child.errors();
}

// Under vgpud, the driver's measured overhead is charged too (floor 0).
TEST(HookDriverMemoryDaemon, MeasuredOverheadIsChargedToTheTenant) {
  VgpudFixture f("  - {name: solo, token: drvmem-tenant-token, memory: 1Gi}\n",
                 std::map<std::string, std::string>{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "300Mi"}});
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  for (const char* mode : {"context", "module", "limit"}) {
    auto child = f.run({program("hook_driver_memory_probe"), mode}, "drvmem-tenant-token");
    ASSERT_EQ(child->wait(60s), 0) << mode << ": " << child->output() << child->errors();
    EXPECT_EQ(child->output(), "ok\n") << mode;
  }
}

}  // namespace
}  // namespace vgpu::test
