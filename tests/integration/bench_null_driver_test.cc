// The benchmark null driver (build/benchmarks/null-driver/libcuda.so.1):
// it exports every entry point libvgpu.so hooks, answers cuGetProcAddress
// from its own table with the right ABI version, and libvgpu.so runs on it in
// daemon mode (hook_cost_bench's three workers reach their measurements).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_support.h"

namespace {

using vgpu::test::build_dir;

const char* const kHooked[] = {
#define VGPU_HOOK(sym, base, version, suffix) #sym,
#include "../../libhook/hooks.inc"
#undef VGPU_HOOK
};

using GetProcV2 = int (*)(const char*, void**, int, unsigned long long, int*);
using MemAlloc = int (*)(unsigned long long*, size_t);
using SetCurrent = int (*)(void*);
using Retain = int (*)(void**, int);
using Init = int (*)(unsigned);
using NoArgs = int (*)();

class NullDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = build_dir() + "/benchmarks/null-driver/libcuda.so.1";
    h_ = dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(h_, nullptr) << path_ << ": " << dlerror();
  }
  void TearDown() override {
    if (h_) dlclose(h_);
  }
  template <class F>
  F sym(const char* name) {
    return reinterpret_cast<F>(dlsym(h_, name));
  }
  std::string path_;
  void* h_ = nullptr;
};

TEST_F(NullDriver, ExportsEveryHookedEntryPoint) {
  for (const char* name : kHooked) EXPECT_NE(dlsym(h_, name), nullptr) << name;
}

TEST_F(NullDriver, GetProcAddressPicksTheVersionedExport) {
  auto get = sym<GetProcV2>("cuGetProcAddress_v2");
  ASSERT_NE(get, nullptr);
  void* p = nullptr;
  int status = -1;
  ASSERT_EQ(get("cuMemAlloc", &p, 12000, 0, &status), 0);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(p, dlsym(h_, "cuMemAlloc_v2"));
  ASSERT_EQ(get("cuMemAlloc", &p, 2000, 0, &status), 0);
  EXPECT_EQ(p, dlsym(h_, "cuMemAlloc"));
  ASSERT_EQ(get("cuLaunchKernel", &p, 12000, 2 /* per-thread */, &status), 0);
  EXPECT_EQ(p, dlsym(h_, "cuLaunchKernel_ptsz"));
  ASSERT_EQ(get("cuLaunchKernel", &p, 12000, 1 /* legacy */, &status), 0);
  EXPECT_EQ(p, dlsym(h_, "cuLaunchKernel"));
  EXPECT_NE(get("cuMemAllocAsync", &p, 11000, 0, &status), 0);
  EXPECT_EQ(status, 2);  // CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
  EXPECT_EQ(p, nullptr);
  EXPECT_NE(get("cuNoSuchFunction", &p, 12000, 0, &status), 0);
  EXPECT_EQ(status, 1);  // CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND
}

TEST_F(NullDriver, AllocationsAreDistinctAndUnimplementedCallsSayNotSupported) {
  ASSERT_EQ(sym<Init>("cuInit")(0), 0);
  void* ctx = nullptr;
  ASSERT_EQ(sym<Retain>("cuDevicePrimaryCtxRetain")(&ctx, 0), 0);
  ASSERT_NE(ctx, nullptr);
  auto alloc = sym<MemAlloc>("cuMemAlloc_v2");
  unsigned long long a = 0, b = 0;
  EXPECT_NE(alloc(&a, 4096), 0) << "no current context yet";
  ASSERT_EQ(sym<SetCurrent>("cuCtxSetCurrent")(ctx), 0);
  ASSERT_EQ(alloc(&a, 4096), 0);
  ASSERT_EQ(alloc(&b, 4096), 0);
  EXPECT_NE(a, 0u);
  EXPECT_GE(b, a + 4096);
  EXPECT_EQ(sym<NoArgs>("cuMemCreate")(), 801);  // CUDA_ERROR_NOT_SUPPORTED
}

// libvgpu.so on the null driver, standalone and in daemon mode with a held
// lease: the benchmark's workers set up, launch and allocate without a
// failure and the benchmark prints its P1 and P2 lines (whatever the figures).
TEST(NullDriverBench, HookRunsOnTheNullDriverInEveryMode) {
  std::string dir = build_dir() + "/benchmarks/null-driver";
  vgpu::test::Child bench({build_dir() + "/bin/hook_cost_bench", "--rounds", "3", "--launches", "200", "--allocs", "200"},
                          {{"LD_LIBRARY_PATH", dir}});
  int rc = bench.wait(std::chrono::seconds(120));
  ASSERT_TRUE(rc == 0 || rc == 1) << "exit " << rc << "\n" << bench.errors() << bench.output();
  EXPECT_NE(bench.output().find("P1 (daemon mode, lease held, uncontended)"), std::string::npos) << bench.output();
  EXPECT_NE(bench.output().find("P2 (standalone)"), std::string::npos) << bench.output();
  EXPECT_NE(bench.output().find("P2 (daemon)"), std::string::npos) << bench.output();
  EXPECT_EQ(bench.errors().find("a call failed"), std::string::npos) << bench.errors();
}

}  // namespace
