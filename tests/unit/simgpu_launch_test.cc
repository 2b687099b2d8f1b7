// Modules, launches, streams and events of simgpu, in process.
#include <cuda.h>
#include <cudaTypedefs.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <vector>

#include "../programs/spin_ptx.h"
#include "test_support.h"

namespace {

using Clock = std::chrono::steady_clock;

class SimLaunch : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxCreate(&ctx_, nullptr, 0, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleLoadData(&mod_, kSpinPtx), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleGetFunction(&spin_, mod_, "spin_ns"), CUDA_SUCCESS);
  }
  void TearDown() override { cuCtxDestroy(ctx_); }
  CUresult spin(unsigned long long ns, CUstream s) {
    void* params[] = {&ns};
    return cuLaunchKernel(spin_, 1, 1, 1, 32, 1, 1, 0, s, params, nullptr);
  }

  vgpu::test::SimNode node_{{{"SIMGPU_MEMORY", "1Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}}};
  CUcontext ctx_ = nullptr;
  CUmodule mod_ = nullptr;
  CUfunction spin_ = nullptr;
};

TEST_F(SimLaunch, ModuleFunctionsComeFromPtxEntries) {
  CUfunction f;
  EXPECT_EQ(cuModuleGetFunction(&f, mod_, "touch"), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleGetFunction(&f, mod_, "nope"), CUDA_ERROR_NOT_FOUND);
  const char* name = nullptr;
  ASSERT_EQ(cuFuncGetName(&name, spin_), CUDA_SUCCESS);
  EXPECT_STREQ(name, "spin_ns");
  size_t off = 0, size = 0;
  ASSERT_EQ(cuFuncGetParamInfo(f, 2, &off, &size), CUDA_SUCCESS);
  EXPECT_EQ(off, 16u);
  EXPECT_EQ(size, 16u);
  CUmodule bad;
  EXPECT_EQ(cuModuleLoadData(&bad, "this is not ptx"), CUDA_ERROR_INVALID_PTX);
  EXPECT_EQ(cuModuleUnload(mod_), CUDA_SUCCESS);
  EXPECT_EQ(cuModuleGetFunction(&f, mod_, "spin_ns"), CUDA_ERROR_INVALID_HANDLE);
  ASSERT_EQ(cuModuleLoadData(&mod_, kSpinPtx), CUDA_SUCCESS);
  ASSERT_EQ(cuModuleGetFunction(&spin_, mod_, "spin_ns"), CUDA_SUCCESS);
}

TEST_F(SimLaunch, LaunchIsAsynchronous) {
  CUstream s;
  ASSERT_EQ(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  auto t0 = Clock::now();
  ASSERT_EQ(spin(300'000'000, s), CUDA_SUCCESS);
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(150));
  EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
  ASSERT_EQ(cuStreamSynchronize(s), CUDA_SUCCESS);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(295));
  EXPECT_EQ(cuStreamQuery(s), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamDestroy(s), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
}

TEST_F(SimLaunch, EventsMeasureKernelTime) {
  CUevent a, b, untimed;
  ASSERT_EQ(cuEventCreate(&a, CU_EVENT_DEFAULT), CUDA_SUCCESS);
  ASSERT_EQ(cuEventCreate(&b, CU_EVENT_DEFAULT), CUDA_SUCCESS);
  ASSERT_EQ(cuEventCreate(&untimed, CU_EVENT_DISABLE_TIMING), CUDA_SUCCESS);
  float ms = 0;
  EXPECT_EQ(cuEventElapsedTime(&ms, a, b), CUDA_ERROR_INVALID_HANDLE);  // never recorded
  EXPECT_EQ(cuEventQuery(a), CUDA_SUCCESS);                              // nothing to wait for
  ASSERT_EQ(cuEventRecord(a, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(spin(80'000'000, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(b, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(b), CUDA_ERROR_NOT_READY);
  EXPECT_EQ(cuEventElapsedTime(&ms, a, b), CUDA_ERROR_NOT_READY);
  ASSERT_EQ(cuEventSynchronize(b), CUDA_SUCCESS);
  ASSERT_EQ(cuEventElapsedTime(&ms, a, b), CUDA_SUCCESS);
  EXPECT_GE(ms, 79.0f);
  EXPECT_LT(ms, 400.0f);
  ASSERT_EQ(cuEventRecord(untimed, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuEventSynchronize(untimed), CUDA_SUCCESS);
  EXPECT_EQ(cuEventElapsedTime(&ms, a, untimed), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuEventDestroy(a), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(a), CUDA_ERROR_INVALID_HANDLE);
}

TEST_F(SimLaunch, StreamWaitEventOrdersAcrossStreams) {
  CUstream s1, s2;
  CUevent e;
  ASSERT_EQ(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  ASSERT_EQ(cuEventCreate(&e, CU_EVENT_DISABLE_TIMING), CUDA_SUCCESS);
  std::atomic<int> order{0};
  int seen_at = -1;
  ASSERT_EQ(spin(100'000'000, s1), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchHostFunc(s1, [](void* p) { static_cast<std::atomic<int>*>(p)->store(1); }, &order),
            CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e, s1), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(s2, e, 0), CUDA_SUCCESS);
  struct Probe {
    std::atomic<int>* order;
    int* seen;
  } probe{&order, &seen_at};
  ASSERT_EQ(cuLaunchHostFunc(s2, [](void* p) {
              auto* pr = static_cast<Probe*>(p);
              *pr->seen = pr->order->load();
            }, &probe),
            CUDA_SUCCESS);
  ASSERT_EQ(cuStreamSynchronize(s2), CUDA_SUCCESS);
  EXPECT_EQ(seen_at, 1);
}

TEST_F(SimLaunch, LegacyNullStreamWaitsForBlockingStreams) {
  CUstream blocking;
  ASSERT_EQ(cuStreamCreate(&blocking, CU_STREAM_DEFAULT), CUDA_SUCCESS);
  std::atomic<int> done{0};
  ASSERT_EQ(spin(100'000'000, blocking), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchHostFunc(blocking, [](void* p) { static_cast<std::atomic<int>*>(p)->store(1); }, &done),
            CUDA_SUCCESS);
  int seen = -1;
  struct P {
    std::atomic<int>* d;
    int* s;
  } p{&done, &seen};
  ASSERT_EQ(cuLaunchHostFunc(nullptr, [](void* v) { *static_cast<P*>(v)->s = static_cast<P*>(v)->d->load(); }, &p),
            CUDA_SUCCESS);
  ASSERT_EQ(cuStreamSynchronize(nullptr), CUDA_SUCCESS);
  EXPECT_EQ(seen, 1);
}

TEST_F(SimLaunch, PerThreadVariantsUseThePerThreadStream) {
  // What a program built with --default-stream per-thread gets.
  const cuuint64_t pt = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  void *launch = nullptr, *query = nullptr, *sync = nullptr;
  ASSERT_EQ(cuGetProcAddress("cuLaunchKernel", &launch, 12000, pt, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuGetProcAddress("cuStreamQuery", &query, 12000, pt, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuGetProcAddress("cuStreamSynchronize", &sync, 12000, pt, nullptr), CUDA_SUCCESS);
  auto launch_pt = reinterpret_cast<PFN_cuLaunchKernel_v7000_ptsz>(launch);
  auto query_pt = reinterpret_cast<PFN_cuStreamQuery_v7000_ptsz>(query);
  auto sync_pt = reinterpret_cast<PFN_cuStreamSynchronize_v7000_ptsz>(sync);
  unsigned long long ns = 200'000'000;
  void* params[] = {&ns};
  ASSERT_EQ(launch_pt(spin_, 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr), CUDA_SUCCESS);
  // The legacy NULL stream is a different stream: idle, while the per-thread one is busy.
  EXPECT_EQ(query_pt(CU_STREAM_PER_THREAD), CUDA_ERROR_NOT_READY);
  EXPECT_EQ(query_pt(nullptr), CUDA_ERROR_NOT_READY);
  EXPECT_EQ(cuStreamQuery(CU_STREAM_LEGACY), CUDA_SUCCESS);
  EXPECT_EQ(sync_pt(nullptr), CUDA_SUCCESS);
  EXPECT_EQ(query_pt(nullptr), CUDA_SUCCESS);
}

TEST_F(SimLaunch, LaunchValidation) {
  unsigned long long ns = 1000;
  void* params[] = {&ns};
  EXPECT_EQ(cuLaunchKernel(spin_, 0, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuLaunchKernel(spin_, 1, 1, 1, 1025, 1, 1, 0, nullptr, params, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuLaunchKernel(reinterpret_cast<CUfunction>(&ns), 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuLaunchKernel(spin_, 1, 1, 1, 1, 1, 1, 0, reinterpret_cast<CUstream>(&ns), params, nullptr),
            CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuLaunchCooperativeKernel(spin_, 10000, 1, 1, 1, 1, 1, 0, nullptr, params),
            CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
  EXPECT_EQ(cuLaunchCooperativeKernel(spin_, 132, 1, 1, 1, 1, 1, 0, nullptr, params), CUDA_SUCCESS);
  EXPECT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
}

TEST_F(SimLaunch, LaunchKernelExAndExtraBuffer) {
  unsigned long long ns = 50'000'000;
  CUlaunchConfig cfg{};
  cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = 1;
  cfg.blockDimX = cfg.blockDimY = cfg.blockDimZ = 1;
  void* params[] = {&ns};
  auto t0 = Clock::now();
  ASSERT_EQ(cuLaunchKernelEx(&cfg, spin_, params, nullptr), CUDA_SUCCESS);
  size_t size = sizeof ns;
  void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &ns, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
  ASSERT_EQ(cuLaunchKernel(spin_, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, extra), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(99));
}

TEST_F(SimLaunch, CtxSynchronizeV2TakesAnExplicitContext) {
  unsigned long long ns = 50'000'000;
  void* params[] = {&ns};
  ASSERT_EQ(cuLaunchKernel(spin_, 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr), CUDA_SUCCESS);
  CUcontext popped;
  ASSERT_EQ(cuCtxPopCurrent(&popped), CUDA_SUCCESS);  // no current context now
  EXPECT_EQ(cuCtxSynchronize_v2(nullptr), CUDA_ERROR_INVALID_CONTEXT);
  auto t0 = Clock::now();
  ASSERT_EQ(cuCtxSynchronize_v2(ctx_), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamQuery(nullptr), CUDA_ERROR_INVALID_CONTEXT);
  ASSERT_EQ(cuCtxPushCurrent(ctx_), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamQuery(nullptr), CUDA_SUCCESS);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(SimLaunch, LibraryKernelsResolvePerContext) {
  CUlibrary lib;
  CUkernel k;
  CUfunction f;
  ASSERT_EQ(cuLibraryLoadData(&lib, kSpinPtx, nullptr, nullptr, 0, nullptr, nullptr, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuLibraryGetKernel(&k, lib, "spin_ns"), CUDA_SUCCESS);
  EXPECT_EQ(cuLibraryGetKernel(&k, lib, "missing"), CUDA_ERROR_NOT_FOUND);
  ASSERT_EQ(cuLibraryGetKernel(&k, lib, "spin_ns"), CUDA_SUCCESS);
  ASSERT_EQ(cuKernelGetFunction(&f, k), CUDA_SUCCESS);
  unsigned long long ns = 1000;
  void* params[] = {&ns};
  EXPECT_EQ(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr), CUDA_SUCCESS);
  // A CUkernel is accepted where a CUfunction is expected.
  EXPECT_EQ(cuLaunchKernel(reinterpret_cast<CUfunction>(k), 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(cuLibraryUnload(lib), CUDA_SUCCESS);
  EXPECT_EQ(cuKernelGetFunction(&f, k), CUDA_ERROR_INVALID_HANDLE);
}

}  // namespace
