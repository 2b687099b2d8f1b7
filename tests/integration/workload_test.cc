// vgpu-workload as the demo and the benchmarks use it: a child process on an
// isolated simulated node, read through its JSON summary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "test_support.h"

namespace vgpu::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct WorkloadRun {
  int status = -1;
  std::string out, err;
  json summary;  // null unless stdout held one JSON object
};

std::unique_ptr<Child> start_workload(const SimNode& node, std::vector<std::string> args) {
  args.insert(args.begin(), bin_dir() + "/vgpu-workload");
  return std::make_unique<Child>(args, node.env());
}

WorkloadRun finish(Child& child) {
  WorkloadRun r;
  r.status = child.wait(120s);
  r.out = child.output();
  r.err = child.errors();
  r.summary = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (r.summary.is_discarded()) r.summary = nullptr;
  return r;
}

WorkloadRun run_workload(const SimNode& node, std::vector<std::string> args) {
  return finish(*start_workload(node, std::move(args)));
}

std::string describe(const WorkloadRun& r) {
  return "status " + std::to_string(r.status) + "\nstdout: " + r.out + "\nstderr: " + r.err;
}

// A run that should have succeeded: exit 0, a parsable summary, no errors.
void expect_clean(const WorkloadRun& r) {
  ASSERT_EQ(r.status, 0) << describe(r);
  ASSERT_TRUE(r.summary.is_object()) << describe(r);
  EXPECT_EQ(r.summary["error_count"], 0) << describe(r);
  EXPECT_TRUE(r.summary["errors"].empty()) << describe(r);
}

TEST(Workload, CountedRunReportsEveryKernelAndItsTime) {
  SimNode node;
  WorkloadRun r = run_workload(node, {"--count", "40", "--kernel-us", "2000", "--json", "--label", "t1"});
  expect_clean(r);
  const json& s = r.summary;
  EXPECT_EQ(s["label"], "t1");
  EXPECT_GT(s["pid"].get<int>(), 0);
  EXPECT_EQ(s["kernels_completed"], 40);
  EXPECT_EQ(s["kernel_ns"], 2'000'000);
  // Alone on the engine, each event pair brackets one kernel: never shorter
  // than the kernel, and not much longer.
  double work_ms = 40 * 2.0;
  EXPECT_GE(s["busy_ms"].get<double>(), 0.95 * work_ms) << describe(r);
  EXPECT_LE(s["busy_ms"].get<double>(), 3 * work_ms + 200) << describe(r);
  EXPECT_GE(s["wall_ms"].get<double>(), 0.95 * work_ms) << describe(r);
  EXPECT_NEAR(s["work_ms"].get<double>(), work_ms, 0.01);
}

TEST(Workload, TimedRunAtARateLaunchesAboutRateTimesDuration) {
  SimNode node;
  WorkloadRun r = run_workload(node, {"--duration", "1", "--rate", "100", "--kernel-us", "100", "--json"});
  expect_clean(r);
  EXPECT_GE(r.summary["kernels_completed"].get<int>(), 50) << describe(r);
  EXPECT_LE(r.summary["kernels_completed"].get<int>(), 101) << describe(r);
  EXPECT_GE(r.summary["wall_ms"].get<double>(), 990) << describe(r);
  EXPECT_LE(r.summary["wall_ms"].get<double>(), 10'000) << describe(r);
}

TEST(Workload, KernelsSpreadOverSeveralStreamsAllComplete) {
  SimNode node;
  WorkloadRun r = run_workload(node, {"--count", "30", "--streams", "3", "--kernel-us", "500", "--json"});
  expect_clean(r);
  EXPECT_EQ(r.summary["kernels_launched"], 30);
  EXPECT_EQ(r.summary["kernels_completed"], 30);
}

TEST(Workload, TwoSaturatingWorkloadsShareTheEngineAboutEvenly) {
  SimNode node;
  auto common = std::vector<std::string>{"--duration", "3", "--kernel-us", "1000", "--json"};
  auto a_args = common, b_args = common;
  a_args.insert(a_args.end(), {"--label", "a"});
  b_args.insert(b_args.end(), {"--label", "b"});
  auto a_child = start_workload(node, a_args);
  auto b_child = start_workload(node, b_args);
  WorkloadRun a = finish(*a_child), b = finish(*b_child);
  expect_clean(a);
  expect_clean(b);
  double wa = a.summary["work_ms"].get<double>(), wb = b.summary["work_ms"].get<double>();
  ASSERT_GT(wa + wb, 0);
  EXPECT_GE(wa / (wa + wb), 0.3) << describe(a) << "\n" << describe(b);
  EXPECT_LE(wa / (wa + wb), 0.7) << describe(a) << "\n" << describe(b);
  // The engine is one: together they cannot have had more than the wall time,
  // and saturating, they should have kept it mostly busy.
  double wall = std::max(a.summary["wall_ms"].get<double>(), b.summary["wall_ms"].get<double>());
  EXPECT_LE(wa + wb, 1.05 * wall);
  EXPECT_GE(wa + wb, 0.5 * wall);
}

TEST(Workload, BadArgumentsExitTwoWithTheProblemAndUsage) {
  SimNode node;
  struct Case {
    std::vector<std::string> args;
    std::string named;  // what the message must mention
  };
  const std::vector<Case> cases = {
      {{"--bogus"}, "--bogus"},
      {{"--streams", "0"}, "--streams"},
      {{"--alloc-api", "heap"}, "--alloc-api"},
      {{"--alloc-size", "lots"}, "--alloc-size"},
      {{"--kernel-us"}, "--kernel-us"},
      {{"--duration", "1", "--count", "2"}, "--count"},
      {{"--rate", "-5"}, "--rate"},
      {{"--device=x"}, "--device"}};
  for (const Case& c : cases) {
    WorkloadRun r = run_workload(node, c.args);
    EXPECT_EQ(r.status, 2) << c.named << ": " << describe(r);
    EXPECT_NE(r.err.find("usage: vgpu-workload"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find(c.named), std::string::npos) << describe(r);
    EXPECT_TRUE(r.out.empty()) << describe(r);
  }
}

TEST(Workload, HelpPrintsUsageAndSucceeds) {
  SimNode node;
  WorkloadRun r = run_workload(node, {"--help"});
  EXPECT_EQ(r.status, 0) << describe(r);
  EXPECT_NE(r.out.find("--alloc-api"), std::string::npos);
}

TEST(Workload, MemoryHeldByOneWorkloadIsUnavailableToAnother) {
  SimNode node(std::map<std::string, std::string>{{"SIMGPU_MEMORY", "4Gi"}});
  auto holder = start_workload(node, {"--alloc-size", "3Gi", "--hold", "--duration", "60",
                                      "--kernel-us", "1000", "--label", "holder"});
  ASSERT_TRUE(wait_until([&] { return holder->errors().find("launching") != std::string::npos; },
                         60s))
      << holder->errors();
  ASSERT_NE(holder->errors().find("allocations 1/1 ok"), std::string::npos) << holder->errors();
  WorkloadRun r = run_workload(node, {"--alloc-size", "2Gi", "--count", "1", "--json"});
  expect_clean(r);
  EXPECT_EQ(r.summary["allocations"]["errors"]["CUDA_ERROR_OUT_OF_MEMORY"], 1) << describe(r);
  EXPECT_TRUE(holder->running());
}

class WorkloadAllocation : public ::testing::TestWithParam<std::string> {};

TEST_P(WorkloadAllocation, HeldAllocationsAllSucceedAndAreFreed) {
  SimNode node(std::map<std::string, std::string>{{"SIMGPU_MEMORY", "4Gi"}});
  WorkloadRun r = run_workload(node, {"--alloc-api", GetParam(), "--alloc-size", "64Mi", "--alloc-count",
                              "3", "--hold", "--count", "2", "--kernel-us", "100", "--json"});
  expect_clean(r);
  const json& a = r.summary["allocations"];
  EXPECT_EQ(a["api"], GetParam());
  EXPECT_EQ(a["requested"], 3);
  EXPECT_EQ(a["ok"], 3) << describe(r);
  EXPECT_EQ(a["failed"], 0);
  EXPECT_GE(a["peak_bytes"].get<uint64_t>(), 3ull * 64 * 1024 * 1024);
}

// Device capacity is a hard limit for every API that takes device memory.
// (Managed memory is left out: real drivers may oversubscribe it.)
TEST_P(WorkloadAllocation, AllocationLargerThanTheDeviceFailsWithOutOfMemory) {
  if (GetParam() == "managed") GTEST_SKIP() << "managed memory may oversubscribe the device";
  SimNode node(std::map<std::string, std::string>{{"SIMGPU_MEMORY", "1Gi"}});
  WorkloadRun r = run_workload(node, {"--alloc-api", GetParam(), "--alloc-size", "2Gi", "--count", "1",
                              "--kernel-us", "100", "--json"});
  expect_clean(r);
  const json& a = r.summary["allocations"];
  EXPECT_EQ(a["requested"], 1);
  EXPECT_EQ(a["ok"], 0);
  EXPECT_EQ(a["failed"], 1);
  EXPECT_EQ(a["errors"]["CUDA_ERROR_OUT_OF_MEMORY"], 1) << describe(r);
}

INSTANTIATE_TEST_SUITE_P(Apis, WorkloadAllocation,
                         ::testing::Values("alloc", "pitch", "managed", "async", "pool", "vmm",
                                           "array"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace vgpu::test
