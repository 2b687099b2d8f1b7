// cuGetProcAddress / _v2 against the documented semantics, for every entry
// point of the toolkit's table: the lookup of (base, version, flags) must give
// exactly the exported symbol of that version.
#include <cuda.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace {

struct Row {
  const char* symbol;
  const char* base;
  int version;
  bool per_thread;
};

const Row kRows[] = {
#define VGPU_DRIVER_API(sym, base, version, suffix) {#sym, #base, version, sizeof(#suffix) > 1},
#include "driver_api.inc"
#undef VGPU_DRIVER_API
};

void* exported(const char* name) { return dlsym(RTLD_DEFAULT, name); }

class ProcAddress : public ::testing::Test {
 protected:
  vgpu::test::SimNode node_;
};

TEST_F(ProcAddress, EveryTableRowResolvesToItsOwnSymbol) {
  size_t checked = 0;
  for (const Row& r : kRows) {
    void* pfn = nullptr;
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    cuuint64_t flags = r.per_thread ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_LEGACY_STREAM;
    ASSERT_EQ(cuGetProcAddress_v2(r.base, &pfn, r.version, flags, &status), CUDA_SUCCESS) << r.symbol;
    ASSERT_EQ(status, CU_GET_PROC_ADDRESS_SUCCESS) << r.symbol;
    ASSERT_NE(exported(r.symbol), nullptr) << r.symbol;
    ASSERT_EQ(pfn, exported(r.symbol)) << r.symbol << " @" << r.version;
    ++checked;
  }
  EXPECT_GT(checked, 600u);
}

TEST_F(ProcAddress, NewestVersionNotAboveTheRequestIsChosen) {
  void* pfn = nullptr;
  ASSERT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 12000, 0, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuMemAlloc_v2"));
  ASSERT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 3010, 0, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuMemAlloc"));
  ASSERT_EQ(cuGetProcAddress_v2("cuCtxCreate", &pfn, 12050, 0, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuCtxCreate_v4"));
  ASSERT_EQ(cuGetProcAddress_v2("cuCtxCreate", &pfn, 12040, 0, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuCtxCreate_v3"));
}

TEST_F(ProcAddress, PerThreadFlagSelectsPtszVariantOfTheSameAbi) {
  void* pfn = nullptr;
  ASSERT_EQ(cuGetProcAddress_v2("cuLaunchKernel", &pfn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuLaunchKernel_ptsz"));
  ASSERT_EQ(cuGetProcAddress_v2("cuLaunchKernel", &pfn, 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuLaunchKernel"));
  ASSERT_EQ(cuGetProcAddress_v2("cuLaunchKernel", &pfn, 12000, CU_GET_PROC_ADDRESS_DEFAULT, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuLaunchKernel"));
  // LEGACY|PER_THREAD (3) searches as PER_THREAD, as the real driver does.
  ASSERT_EQ(cuGetProcAddress_v2("cuLaunchKernel", &pfn, 12000,
                                CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM | CU_GET_PROC_ADDRESS_LEGACY_STREAM,
                                nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuLaunchKernel_ptsz"));
  // A function without per-thread variants answers PER_THREAD with its legacy function.
  ASSERT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuMemAlloc_v2"));
  ASSERT_EQ(cuGetProcAddress_v2("cuStreamBeginCapture", &pfn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
                                nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuStreamBeginCapture_v2_ptsz"));
  ASSERT_EQ(cuGetProcAddress_v2("cuMemcpyHtoD", &pfn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuMemcpyHtoD_v2_ptds"));
}

TEST_F(ProcAddress, UnknownNameIsSuccessWithNullAndSymbolNotFound) {
  void* pfn = reinterpret_cast<void*>(0x1);
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
  EXPECT_EQ(cuGetProcAddress_v2("cuNoSuchFunction", &pfn, 12000, 0, &status), CUDA_SUCCESS);
  EXPECT_EQ(pfn, nullptr);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
}

TEST_F(ProcAddress, VersionOlderThanTheSymbolIsNotSufficient) {
  void* pfn = reinterpret_cast<void*>(0x1);
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAllocAsync", &pfn, 11000, 0, &status), CUDA_SUCCESS);
  EXPECT_EQ(pfn, nullptr);
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
}

// The real driver (535.261.03, 12.2) departs from cuda.h here: a version above
// its own is not INVALID_VALUE but its newest function (docs/simgpu.md).
TEST_F(ProcAddress, VersionAboveTheDriverGivesItsNewestFunction) {
  int driver = 0;
  ASSERT_EQ(cuDriverGetVersion(&driver), CUDA_SUCCESS);
  void* pfn = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, driver + 10, 0, &status), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuMemAlloc_v2"));
  EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SUCCESS);
  // A negative version reads as a huge unsigned one.
  pfn = nullptr;
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, -1, 0, &status), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuMemAlloc_v2"));
}

TEST_F(ProcAddress, BadArgumentsAreInvalidValueAndTouchNothing) {
  void* pfn = reinterpret_cast<void*>(0x1);
  auto status = static_cast<CUdriverProcAddressQueryResult>(77);
  EXPECT_EQ(cuGetProcAddress_v2(nullptr, &pfn, 12000, 0, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", nullptr, 12000, 0, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 12000, 0x80, &status), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 12000, 4, &status), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(pfn, reinterpret_cast<void*>(0x1));
  EXPECT_EQ(static_cast<int>(status), 77);
}

TEST_F(ProcAddress, LegacyEntryPointWithoutStatusAndItsOwnLookup) {
  using Legacy = CUresult (*)(const char*, void**, int, cuuint64_t);
  auto legacy = reinterpret_cast<Legacy>(exported("cuGetProcAddress"));
  ASSERT_NE(legacy, nullptr);
  void* pfn = nullptr;
  EXPECT_EQ(legacy("cuInit", &pfn, 12000, 0), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuInit"));
  EXPECT_EQ(legacy("cuGetProcAddress", &pfn, 12000, 0), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuGetProcAddress_v2"));
}

// Without a status to report, the legacy entry point fails a lookup with
// CUDA_ERROR_NOT_FOUND and leaves *pfn alone (real driver; cuda.h is silent).
TEST_F(ProcAddress, LegacyEntryPointFailsUnknownOrTooOldWithNotFound) {
  using Legacy = CUresult (*)(const char*, void**, int, cuuint64_t);
  auto legacy = reinterpret_cast<Legacy>(exported("cuGetProcAddress"));
  ASSERT_NE(legacy, nullptr);
  for (cuuint64_t flags : {0, 1, 2, 3}) {
    void* pfn = reinterpret_cast<void*>(0x1);
    EXPECT_EQ(legacy("cuNoSuchFunction", &pfn, 12000, flags), CUDA_ERROR_NOT_FOUND) << flags;
    EXPECT_EQ(legacy("cuMemAllocAsync", &pfn, 11000, flags), CUDA_ERROR_NOT_FOUND) << flags;
    EXPECT_EQ(pfn, reinterpret_cast<void*>(0x1)) << flags;
    EXPECT_EQ(legacy("cuMemAllocAsync", &pfn, 12000, flags), CUDA_SUCCESS) << flags;
    EXPECT_EQ(pfn, exported(flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM ? "cuMemAllocAsync_ptsz"
                                                                                   : "cuMemAllocAsync"))
        << flags;
  }
}

// Unknown names, with every valid flag, on both entry points.
TEST_F(ProcAddress, UnknownNameWithEveryFlag) {
  for (cuuint64_t flags : {0, 1, 2, 3})
    for (const char* name : {"cuNoSuchFunction", "cuMemAlloc_v2", "cuLaunchKernel_ptsz", ""}) {
      void* pfn = reinterpret_cast<void*>(0x1);
      CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
      EXPECT_EQ(cuGetProcAddress_v2(name, &pfn, 12000, flags, &status), CUDA_SUCCESS) << name << " " << flags;
      EXPECT_EQ(pfn, nullptr) << name;
      EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND) << name << " " << flags;
    }
}

// PER_THREAD below 7.0 (before per-thread variants): the real driver answers
// VERSION_NOT_SUFFICIENT for a function that has per-thread variants, where
// cuda.h promises the legacy function.
TEST_F(ProcAddress, PerThreadBeforeSevenIsNotSufficientForFunctionsWithVariants) {
  for (cuuint64_t flags : {2, 3}) {
    void* pfn = reinterpret_cast<void*>(0x1);
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
    EXPECT_EQ(cuGetProcAddress_v2("cuLaunchKernel", &pfn, 6050, flags, &status), CUDA_SUCCESS);
    EXPECT_EQ(pfn, nullptr);
    EXPECT_EQ(status, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    EXPECT_EQ(cuGetProcAddress_v2("cuMemcpyHtoD", &pfn, 3020, flags, &status), CUDA_SUCCESS);
    EXPECT_EQ(pfn, nullptr);
    EXPECT_EQ(status, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    // Without per-thread variants, the legacy function still answers.
    EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 3020, flags, &status), CUDA_SUCCESS);
    EXPECT_EQ(pfn, exported("cuMemAlloc_v2"));
    EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SUCCESS);
  }
  void* pfn = nullptr;
  EXPECT_EQ(cuGetProcAddress_v2("cuLaunchKernel", &pfn, 6050, CU_GET_PROC_ADDRESS_LEGACY_STREAM, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuLaunchKernel"));
}

class ProcAddressAtDriver12020 : public ProcAddress {
 protected:
  void SetUp() override { setenv("SIMGPU_DRIVER_VERSION", "12020", 1); }
  void TearDown() override { unsetenv("SIMGPU_DRIVER_VERSION"); }
};

TEST_F(ProcAddressAtDriver12020, DriverVersionIsConfigurable) {
  int v = 0;
  EXPECT_EQ(cuDriverGetVersion(&v), CUDA_SUCCESS);
  EXPECT_EQ(v, 12020);
}

// As 535.261.03 answers: a request above 12.2 gets the newest ABI a 12.2
// driver has (cuCtxCreate_v3, cuGraphAddNode), never the newer one.
TEST_F(ProcAddressAtDriver12020, AboveTheDriverGivesItsNewestOlderFunction) {
  for (int version : {12050, 13000, 99999})
    for (cuuint64_t flags : {0, 1, 2, 3}) {
      void* pfn = nullptr;
      CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
      ASSERT_EQ(cuGetProcAddress_v2("cuCtxCreate", &pfn, version, flags, &status), CUDA_SUCCESS);
      EXPECT_EQ(pfn, exported("cuCtxCreate_v3")) << version << " " << flags;
      EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SUCCESS);
      ASSERT_EQ(cuGetProcAddress_v2("cuGraphAddNode", &pfn, version, flags, &status), CUDA_SUCCESS);
      EXPECT_EQ(pfn, exported("cuGraphAddNode")) << version << " " << flags;
      ASSERT_EQ(cuGetProcAddress_v2("cuLaunchKernel", &pfn, version, flags, &status), CUDA_SUCCESS);
      EXPECT_EQ(pfn, exported(flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM ? "cuLaunchKernel_ptsz"
                                                                                     : "cuLaunchKernel"));
    }
  void* pfn = nullptr;
  ASSERT_EQ(cuGetProcAddress_v2("cuCtxCreate", &pfn, 11000, 0, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuCtxCreate_v2"));
  ASSERT_EQ(cuGetProcAddress_v2("cuGraphAddNode", &pfn, 12010, 0, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(pfn, nullptr);
}

// Functions introduced after the driver's version are unknown to it.
TEST_F(ProcAddressAtDriver12020, FunctionsNewerThanTheDriverAreNotFound) {
  for (int version : {12080, 13000}) {
    void* pfn = reinterpret_cast<void*>(0x1);
    CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SUCCESS;
    EXPECT_EQ(cuGetProcAddress_v2("cuStreamGetDevice", &pfn, version, 0, &status), CUDA_SUCCESS);
    EXPECT_EQ(pfn, nullptr);
    EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  }
}

}  // namespace
