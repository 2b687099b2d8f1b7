// Exact ABI on a driver older than the toolkit (tests/programs/hook_abi_probe.cc):
// with a 12.2 driver that lacks cuGraphAddNode_v2 and cuCtxCreate_v4 and
// answers cuGetProcAddress above its version with older functions (as NVIDIA's
// 535 series does), the hook never forwards a wrapper to another version of
// its function and lookups find what the driver has.
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "test_support.h"

namespace vgpu::test {
namespace {

using namespace std::chrono_literals;

TEST(HookAbi, OldDriverGetsExactlyItsOwnFunctions) {
  SimNode node;
  auto env = node.env();
  env["LD_LIBRARY_PATH"] = build_dir() + "/tests/programs/old_driver";
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  Child child({program("hook_abi_probe")}, env);
  ASSERT_EQ(child.wait(60s), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

}  // namespace
}  // namespace vgpu::test
