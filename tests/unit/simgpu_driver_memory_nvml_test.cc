// Device memory simgpu's driver takes on the process's behalf, beyond explicit
// allocations: module globals (cuModuleLoad*, cuLibraryLoad*) and context
// limits (cuCtxSetLimit). Each is seen by cuMemGetInfo and by NVML's
// per-process used memory, and goes back on unload / context destroy.
#include <cuda.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "test_support.h"
#include "vgpu/nvml_subset.h"

namespace {

constexpr uint64_t kMi = 1ull << 20;
constexpr uint64_t kOverhead = 64 * kMi;
constexpr uint64_t kResidentThreads = 132ull * 2048;  // simgpu's H100: SMs x threads per SM

// A kernel plus `mib` MiB of .global bytes and a 4 KiB .const table.
std::string ptx_with_globals(uint64_t mib) {
  return ".version 8.0\n.target sm_90\n.address_size 64\n\n"
         "// .global .b8 commented[999999999];\n"
         ".visible .global .align 8 .b8 big[" + std::to_string(mib * kMi) + "];\n"
         ".visible .const .align 4 .u32 table[1024] = {1, 2, 3};\n"
         ".extern .global .b8 elsewhere[1048576];\n"
         ".visible .entry k(\n\t.param .u64 .ptr .global k_param_0\n)\n{\n"
         "\tld.global.u32 %r1, [big];\n\tret;\n}\n";
}

class DriverMemory : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static vgpu::test::SimNode node({{"SIMGPU_MEMORY", "2Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "64Mi"}});
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  }
  void SetUp() override {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(0, &nvml_dev_), NVML_SUCCESS);
    ASSERT_EQ(cuCtxCreate(&ctx_, nullptr, 0, 0), CUDA_SUCCESS);
  }
  void TearDown() override {
    if (ctx_) {
      EXPECT_EQ(cuCtxDestroy(ctx_), CUDA_SUCCESS);
    }
    EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
  }
  static uint64_t used_by_cuda() {
    size_t f = 0, t = 0;
    EXPECT_EQ(cuMemGetInfo(&f, &t), CUDA_SUCCESS);
    return t - f;
  }
  // This process's used memory as NVML's process list reports it.
  uint64_t used_by_nvml() {
    nvmlProcessInfo_t infos[16];
    unsigned n = 16;
    EXPECT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(nvml_dev_, &n, infos), NVML_SUCCESS);
    for (unsigned i = 0; i < n; ++i)
      if (infos[i].pid == static_cast<unsigned>(getpid())) return infos[i].usedGpuMemory;
    return 0;
  }
  void expect_used(uint64_t bytes) {
    if (ctx_) {
      EXPECT_EQ(used_by_cuda(), bytes);
    }
    EXPECT_EQ(used_by_nvml(), bytes);
  }

  nvmlDevice_t nvml_dev_ = nullptr;
  CUcontext ctx_ = nullptr;
};

TEST_F(DriverMemory, GlobalsAreParsedWithSizesAndAlignment) {
  const char* ptx = ".version 8.0\n.target sm_90\n.address_size 64\n"
                    ".global .v4 .f32 m[4][8];\n.global .u8 c;\n.global .align 16 .u64 d;\n"
                    "/* .global .b8 hidden[1]; */\n.visible .entry k()\n{\n\tret;\n}\n";
  CUmodule mod = nullptr;
  ASSERT_EQ(cuModuleLoadData(&mod, ptx), CUDA_SUCCESS);
  CUdeviceptr m = 0, c = 0, d = 0;
  size_t bytes = 0;
  ASSERT_EQ(cuModuleGetGlobal(&m, &bytes, mod, "m"), CUDA_SUCCESS);
  EXPECT_EQ(bytes, 16u * 32);
  ASSERT_EQ(cuModuleGetGlobal(&c, &bytes, mod, "c"), CUDA_SUCCESS);
  EXPECT_EQ(bytes, 1u);
  EXPECT_EQ(c - m, 16u * 32);
  ASSERT_EQ(cuModuleGetGlobal(&d, nullptr, mod, "d"), CUDA_SUCCESS);
  EXPECT_EQ(d - m, 16u * 32 + 16);  // after c, aligned to 16
  EXPECT_EQ(cuModuleGetGlobal(&d, nullptr, mod, "hidden"), CUDA_ERROR_NOT_FOUND);
  expect_used(kOverhead + 4096);  // page-granular
  ASSERT_EQ(cuModuleUnload(mod), CUDA_SUCCESS);
  // A size that overflows 64 bits saturates: out of memory, never a wrap to a small size.
  EXPECT_EQ(cuModuleLoadData(&mod, ".version 8.0\n.target sm_90\n.global .b64 h[99999999999999999];\n"),
            CUDA_ERROR_OUT_OF_MEMORY);
  expect_used(kOverhead);
}

TEST_F(DriverMemory, ModuleGlobalsAreChargedUntilUnload) {
  expect_used(kOverhead);
  std::string ptx = ptx_with_globals(100);
  CUmodule m = nullptr;
  ASSERT_EQ(cuModuleLoadData(&m, ptx.c_str()), CUDA_SUCCESS);
  expect_used(kOverhead + 100 * kMi + 4096);
  CUdeviceptr p = 0;
  size_t bytes = 0;
  ASSERT_EQ(cuModuleGetGlobal(&p, &bytes, m, "table"), CUDA_SUCCESS);
  EXPECT_EQ(bytes, 4096u);
  uint32_t v = 7;
  EXPECT_EQ(cuMemcpyHtoD(p + 8, &v, sizeof v), CUDA_SUCCESS);  // globals are real device memory
  EXPECT_EQ(cuModuleGetGlobal(nullptr, nullptr, m, "elsewhere"), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(cuMemFree(p), CUDA_ERROR_INVALID_VALUE);  // the module owns it
  ASSERT_EQ(cuModuleUnload(m), CUDA_SUCCESS);
  expect_used(kOverhead);
}

TEST_F(DriverMemory, GlobalsThatDoNotFitFailTheLoad) {
  std::string ptx = ptx_with_globals(4096);  // 4 GiB on a 2 GiB device
  CUmodule m = nullptr;
  EXPECT_EQ(cuModuleLoadData(&m, ptx.c_str()), CUDA_ERROR_OUT_OF_MEMORY);
  CUlibrary lib = nullptr;
  EXPECT_EQ(cuLibraryLoadData(&lib, ptx.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0), CUDA_ERROR_OUT_OF_MEMORY);
  expect_used(kOverhead);
}

TEST_F(DriverMemory, LibraryGlobalsInTheCurrentContextAndFreedWithIt) {
  std::string ptx = ptx_with_globals(50);
  CUlibrary lib = nullptr;
  ASSERT_EQ(cuLibraryLoadData(&lib, ptx.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0), CUDA_SUCCESS);
  expect_used(kOverhead + 50 * kMi + 4096);
  size_t bytes = 0;
  EXPECT_EQ(cuLibraryGetGlobal(nullptr, &bytes, lib, "big"), CUDA_SUCCESS);
  EXPECT_EQ(bytes, 50 * kMi);
  ASSERT_EQ(cuLibraryUnload(lib), CUDA_SUCCESS);
  expect_used(kOverhead);
  // A module still loaded when its context dies goes with it.
  CUmodule m = nullptr;
  ASSERT_EQ(cuModuleLoadData(&m, ptx.c_str()), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxDestroy(ctx_), CUDA_SUCCESS);
  ctx_ = nullptr;
  expect_used(0);
}

TEST_F(DriverMemory, StackHeapAndFifoLimitsTakeMemory) {
  size_t v = 0;
  ASSERT_EQ(cuCtxGetLimit(&v, CU_LIMIT_STACK_SIZE), CUDA_SUCCESS);
  EXPECT_EQ(v, 1024u);
  ASSERT_EQ(cuCtxGetLimit(&v, CU_LIMIT_MALLOC_HEAP_SIZE), CUDA_SUCCESS);
  EXPECT_EQ(v, 8 * kMi);
  ASSERT_EQ(cuCtxGetLimit(&v, CU_LIMIT_PRINTF_FIFO_SIZE), CUDA_SUCCESS);
  EXPECT_EQ(v, 1 * kMi);
  ASSERT_EQ(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 2048), CUDA_SUCCESS);
  expect_used(kOverhead + 1024 * kResidentThreads);
  ASSERT_EQ(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 72 * kMi), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSetLimit(CU_LIMIT_PRINTF_FIFO_SIZE, 3 * kMi), CUDA_SUCCESS);
  expect_used(kOverhead + 1024 * kResidentThreads + 64 * kMi + 2 * kMi);
  ASSERT_EQ(cuCtxGetLimit(&v, CU_LIMIT_MALLOC_HEAP_SIZE), CUDA_SUCCESS);
  EXPECT_EQ(v, 72 * kMi);
  // Lowering gives memory back; defaults cost nothing beyond the overhead.
  ASSERT_EQ(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 1024), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 8 * kMi), CUDA_SUCCESS);
  expect_used(kOverhead + 2 * kMi);
  ASSERT_EQ(cuCtxDestroy(ctx_), CUDA_SUCCESS);
  ctx_ = nullptr;
  expect_used(0);
}

TEST_F(DriverMemory, OverLargeLimitsAreRefusedAndLeaveTheOldValue) {
  // 16 KiB x 270336 threads is 3.9 GiB beyond the default: more than the device has.
  EXPECT_EQ(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 16384), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 1 << 20), CUDA_ERROR_INVALID_VALUE);  // above 512 KiB per thread
  EXPECT_EQ(cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 4096 * kMi), CUDA_ERROR_OUT_OF_MEMORY);
  size_t v = 0;
  ASSERT_EQ(cuCtxGetLimit(&v, CU_LIMIT_STACK_SIZE), CUDA_SUCCESS);
  EXPECT_EQ(v, 1024u);
  ASSERT_EQ(cuCtxGetLimit(&v, CU_LIMIT_MALLOC_HEAP_SIZE), CUDA_SUCCESS);
  EXPECT_EQ(v, 8 * kMi);
  expect_used(kOverhead);
  EXPECT_EQ(cuCtxSetLimit(CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH, 4), CUDA_ERROR_UNSUPPORTED_LIMIT);  // cc 9.0
  EXPECT_EQ(cuCtxSetLimit(CU_LIMIT_SHMEM_SIZE, 4), CUDA_ERROR_INVALID_VALUE);                 // query-only
}

}  // namespace
