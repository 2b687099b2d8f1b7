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
  // Before per-thread variants existed (7.0), the legacy function is returned.
  ASSERT_EQ(cuGetProcAddress_v2("cuLaunchKernel", &pfn, 6050, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(pfn, exported("cuLaunchKernel"));
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

TEST_F(ProcAddress, VersionAboveTheDriverIsInvalidValue) {
  int driver = 0;
  ASSERT_EQ(cuDriverGetVersion(&driver), CUDA_SUCCESS);
  void* pfn = nullptr;
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, driver + 10, 0, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, driver, 0, nullptr), CUDA_SUCCESS);
}

TEST_F(ProcAddress, BadArgumentsAreInvalidValue) {
  void* pfn = nullptr;
  EXPECT_EQ(cuGetProcAddress_v2(nullptr, &pfn, 12000, 0, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", nullptr, 12000, 0, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGetProcAddress_v2("cuMemAlloc", &pfn, 12000, 0x80, nullptr), CUDA_ERROR_INVALID_VALUE);
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

TEST_F(ProcAddress, DriverVersionIsConfigurable) {
  setenv("SIMGPU_DRIVER_VERSION", "12040", 1);
  int v = 0;
  EXPECT_EQ(cuDriverGetVersion(&v), CUDA_SUCCESS);
  EXPECT_EQ(v, 12040);
  void* pfn = nullptr;
  EXPECT_EQ(cuGetProcAddress_v2("cuCtxCreate", &pfn, 12050, 0, nullptr), CUDA_ERROR_INVALID_VALUE);
  unsetenv("SIMGPU_DRIVER_VERSION");
}

}  // namespace
