// nvml_filter.h against fake drivers that follow NVML's size protocols: every
// count the caller sees is of the filtered list, the caller's buffer never
// receives a hidden pid (not even past the returned count), driver errors
// pass through, and a list that grows between query and read is still read.
#include "nvml_filter.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

namespace vgpu::hook {
namespace {

// A driver's running-process list, with the documented protocol.
struct FakeList {
  std::vector<unsigned> pids;
  nvmlReturn_t error = NVML_SUCCESS;  // returned first when set
  int grow_on_query = 0;              // pids added after each INSUFFICIENT_SIZE
  bool double_on_query = false;       // the list more than doubles after each
  int calls = 0;

  template <class Info>
  nvmlReturn_t operator()(nvmlDevice_t, unsigned* n, Info* infos) {
    ++calls;
    if (error != NVML_SUCCESS) return error;
    if (!n || (*n > 0 && !infos)) return NVML_ERROR_INVALID_ARGUMENT;
    if (pids.size() > *n) {
      *n = static_cast<unsigned>(pids.size());
      int grow = grow_on_query + (double_on_query ? static_cast<int>(pids.size()) + 10 : 0);
      for (int i = 0; i < grow; ++i) pids.push_back(9000 + static_cast<unsigned>(pids.size()));
      return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (size_t i = 0; i < pids.size(); ++i) {
      infos[i] = Info{};
      infos[i].pid = pids[i];
      infos[i].usedGpuMemory = 1000ull * pids[i];
    }
    *n = static_cast<unsigned>(pids.size());
    return NVML_SUCCESS;
  }
};

const auto kKeepEven = [](unsigned pid) { return pid % 2 == 0; };
constexpr unsigned kPoison = 0xDEADu;

template <class Info>
nvmlReturn_t call(FakeList& f, unsigned* n, Info* infos) {
  return nvml_filtered_processes(
      [&](nvmlDevice_t d, unsigned* c, Info* a) { return f(d, c, a); }, nullptr, n, infos, kKeepEven);
}

TEST(HookNvmlFilter, CountsAreOfTheFilteredList) {
  FakeList f{{11, 12, 13, 14, 15}};
  unsigned n = 0;
  EXPECT_EQ(call<nvmlProcessInfo_t>(f, &n, nullptr), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(n, 2u);
  std::vector<nvmlProcessInfo_t> buf(8, nvmlProcessInfo_t{kPoison, 0, 0, 0});
  n = 1;
  EXPECT_EQ(call(f, &n, buf.data()), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(buf[0].pid, kPoison) << "nothing is written when the list does not fit";
  n = 8;
  ASSERT_EQ(call(f, &n, buf.data()), NVML_SUCCESS);
  ASSERT_EQ(n, 2u);
  EXPECT_EQ(buf[0].pid, 12u);
  EXPECT_EQ(buf[0].usedGpuMemory, 12000u);
  EXPECT_EQ(buf[1].pid, 14u);
  for (size_t i = 2; i < buf.size(); ++i) EXPECT_EQ(buf[i].pid, kPoison) << "entry " << i << " past the count";
}

TEST(HookNvmlFilter, V1LayoutIsFilteredToo) {
  FakeList f{{2, 3, 4}};
  std::vector<nvmlProcessInfo_v1_t> buf(4, nvmlProcessInfo_v1_t{kPoison, 0});
  unsigned n = 4;
  ASSERT_EQ(call(f, &n, buf.data()), NVML_SUCCESS);
  ASSERT_EQ(n, 2u);
  EXPECT_EQ(buf[0].pid, 2u);
  EXPECT_EQ(buf[1].pid, 4u);
  EXPECT_EQ(buf[2].pid, kPoison);
}

TEST(HookNvmlFilter, NothingVisibleAnswersTheQueryWithSuccessAndZero) {
  FakeList f{{1, 3, 5}};
  unsigned n = 0;
  EXPECT_EQ(call<nvmlProcessInfo_t>(f, &n, nullptr), NVML_SUCCESS);
  EXPECT_EQ(n, 0u);
}

TEST(HookNvmlFilter, BadArgumentsAndDriverErrors) {
  FakeList f{{2, 4}};
  EXPECT_EQ(call<nvmlProcessInfo_t>(f, nullptr, nullptr), NVML_ERROR_INVALID_ARGUMENT);
  unsigned n = 3;
  EXPECT_EQ(call<nvmlProcessInfo_t>(f, &n, nullptr), NVML_ERROR_INVALID_ARGUMENT);
  f.error = NVML_ERROR_UNINITIALIZED;
  n = 0;
  EXPECT_EQ(call<nvmlProcessInfo_t>(f, &n, nullptr), NVML_ERROR_UNINITIALIZED);
}

TEST(HookNvmlFilter, AListThatGrowsBetweenQueryAndReadIsStillRead) {
  FakeList f{{2, 4, 6}};
  f.grow_on_query = 20;  // every size query is stale by the time of the read
  std::vector<nvmlProcessInfo_t> buf(64);
  unsigned n = 64;
  ASSERT_EQ(call(f, &n, buf.data()), NVML_SUCCESS);
  std::set<unsigned> got;
  for (unsigned i = 0; i < n; ++i) got.insert(buf[i].pid);
  for (unsigned p : f.pids) EXPECT_EQ(got.count(p), p % 2 == 0 ? 1u : 0u) << p;
  EXPECT_LE(f.calls, kNvmlListAttempts);
}

TEST(HookNvmlFilter, ADriverThatNeverSettlesIsAnErrorNotALoop) {
  FakeList f{{2}};
  f.double_on_query = true;  // outgrows the headroom every time
  unsigned n = 0;
  EXPECT_EQ(call<nvmlProcessInfo_t>(f, &n, nullptr), NVML_ERROR_UNKNOWN);
  EXPECT_EQ(f.calls, kNvmlListAttempts);
}

TEST(HookNvmlFilter, AnAbsurdCountIsAnErrorNotAnAllocation) {
  FakeList f{{2}};
  f.grow_on_query = static_cast<int>(kNvmlMaxEntries) + 1;
  unsigned n = 0;
  EXPECT_EQ(call<nvmlProcessInfo_t>(f, &n, nullptr), NVML_ERROR_UNKNOWN);
  EXPECT_EQ(f.calls, 2);
}

// Utilization samples: NOT_FOUND when nothing is left, INSUFFICIENT_SIZE on a
// NULL array, counts of the filtered samples.
struct FakeSamples {
  std::vector<unsigned> pids;
  nvmlReturn_t operator()(unsigned* n, nvmlProcessUtilizationSample_t* s) const {
    if (pids.empty()) {
      *n = 0;
      return NVML_ERROR_NOT_FOUND;
    }
    if (!s || *n < pids.size()) {
      *n = static_cast<unsigned>(pids.size());
      return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (size_t i = 0; i < pids.size(); ++i) s[i] = {pids[i], 100 + i, 50, 0, 0, 0};
    *n = static_cast<unsigned>(pids.size());
    return NVML_SUCCESS;
  }
};

TEST(HookNvmlFilter, SamplesFollowTheUtilizationProtocol) {
  FakeSamples f{{7, 8, 9, 10}};
  unsigned n = 0;
  EXPECT_EQ(nvml_filtered_samples<nvmlProcessUtilizationSample_t>(f, nullptr, &n, kKeepEven),
            NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(n, 2u);
  std::vector<nvmlProcessUtilizationSample_t> buf(5, nvmlProcessUtilizationSample_t{kPoison, 0, 0, 0, 0, 0});
  n = 5;
  ASSERT_EQ(nvml_filtered_samples(f, buf.data(), &n, kKeepEven), NVML_SUCCESS);
  ASSERT_EQ(n, 2u);
  EXPECT_EQ(buf[0].pid, 8u);
  EXPECT_EQ(buf[1].pid, 10u);
  EXPECT_EQ(buf[2].pid, kPoison);
  EXPECT_EQ(nvml_filtered_samples<nvmlProcessUtilizationSample_t>(f, nullptr, nullptr, kKeepEven),
            NVML_ERROR_INVALID_ARGUMENT);
}

TEST(HookNvmlFilter, OnlyHiddenSamplesAnswerNotFound) {
  FakeSamples f{{7, 9}};
  unsigned n = 4;
  std::vector<nvmlProcessUtilizationSample_t> buf(4, nvmlProcessUtilizationSample_t{kPoison, 0, 0, 0, 0, 0});
  EXPECT_EQ(nvml_filtered_samples(f, buf.data(), &n, kKeepEven), NVML_ERROR_NOT_FOUND);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(buf[0].pid, kPoison);
  FakeSamples none{};
  n = 4;
  EXPECT_EQ(nvml_filtered_samples(none, buf.data(), &n, kKeepEven), NVML_ERROR_NOT_FOUND);
  EXPECT_EQ(n, 0u);
}

}  // namespace
}  // namespace vgpu::hook
