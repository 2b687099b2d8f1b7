// simgpu's cuGetProcAddress against NVIDIA's real driver, without a GPU:
// Debian's libcuda1 (535 series) is fetched into the build tree as for
// hook_real_driver_test (scripts/fetch-real-driver.sh, docs/real-driver.md),
// and tests/programs/proc_address_sweep asks both drivers the same ~74,000
// lookups (every base name, versions -1 .. 99999, flags 0..3 and invalid
// ones, both entry points). simgpu, set to the real driver's version
// (SIMGPU_DRIVER_VERSION), must answer every one identically: result code,
// status and function (docs/simgpu.md "Real-driver behaviours modelled").
// Without network the test skips with the reason, except in CI (CI=true).
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "test_support.h"

namespace vgpu::test {
namespace {

using Result = vgpu::test::ChildResult;
using vgpu::test::split_lines;
Result run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env, int seconds) {
  return vgpu::test::run_child(argv, env, std::chrono::seconds(seconds));
}


TEST(SimgpuRealDriver, ProcAddressAnswersEqualTheRealDriversAtItsVersion) {
  Result fetched =
      run({std::string(VGPU_TEST_SOURCE_DIR) + "/scripts/fetch-real-driver.sh", build_dir() + "/real-driver"}, {}, 600);
  auto fetched_lines = split_lines(fetched.out);
  if (fetched.status != 0 || fetched_lines.empty()) {
    std::string why = "the real driver (Debian libcuda1 535) cannot be fetched (status " +
                      std::to_string(fetched.status) + "): " + fetched.err;
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") FAIL() << why;
    GTEST_SKIP() << why;
  }
  Result real = run({program("proc_address_sweep")},
                    {{"LD_LIBRARY_PATH", fetched_lines.back()}, {"LD_PRELOAD", ""}}, 120);
  ASSERT_EQ(real.status, 0) << real.err;
  auto want = split_lines(real.out);
  ASSERT_GT(want.size(), 70000u);
  ASSERT_EQ(want[0].rfind("VERSION ", 0), 0u) << want[0];
  std::string version = want[0].substr(8);

  SimNode node;
  auto env = node.env();
  env["SIMGPU_DRIVER_VERSION"] = version;
  env["LD_PRELOAD"] = "";
  Result sim = run({program("proc_address_sweep")}, env, 120);
  ASSERT_EQ(sim.status, 0) << sim.err;
  auto got = split_lines(sim.out);
  ASSERT_EQ(got.size(), want.size());
  size_t differing = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i] && ++differing <= 20)
      ADD_FAILURE() << "driver " << version << ":\n  real:   " << want[i] << "\n  simgpu: " << got[i];
  EXPECT_EQ(differing, 0u) << "of " << want.size() << " lookups";
}

}  // namespace
}  // namespace vgpu::test
