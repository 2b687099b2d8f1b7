// Initialisation, errors, devices and contexts of simgpu, in process.
#include <cuda.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "test_support.h"

namespace {

class SimContext : public ::testing::Test {
 protected:
  vgpu::test::SimNode node_{{{"SIMGPU_MEMORY", "2Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "100Mi"}, {"SIMGPU_DEVICES", "2"}}};
};

// Runs `body` in a forked child (a process that has never called cuInit) and
// returns its exit code.
int in_fresh_process(int (*body)()) {
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

TEST_F(SimContext, CallsBeforeInitAreNotInitialized) {
  int rc = in_fresh_process([] {
    int n = 0;
    CUdevice d;
    CUcontext c;
    if (cuDeviceGetCount(&n) != CUDA_ERROR_NOT_INITIALIZED) return 1;
    if (cuDeviceGet(&d, 0) != CUDA_ERROR_NOT_INITIALIZED) return 2;
    if (cuCtxGetCurrent(&c) != CUDA_ERROR_NOT_INITIALIZED) return 3;
    if (cuInit(0) != CUDA_SUCCESS) return 4;
    if (cuDeviceGetCount(&n) != CUDA_SUCCESS || n != 2) return 5;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST_F(SimContext, BadConfigurationFailsInitClearly) {
  int rc = in_fresh_process([] {
    setenv("SIMGPU_MEMORY", "lots", 1);
    return cuInit(0) == CUDA_ERROR_NO_DEVICE ? 0 : 1;
  });
  EXPECT_EQ(rc, 0);
}

TEST_F(SimContext, DevicesLookLikeH100WithConfiguredMemory) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  int n = 0, sms = 0, major = 0, minor = 0;
  ASSERT_EQ(cuDeviceGetCount(&n), CUDA_SUCCESS);
  EXPECT_EQ(n, 2);
  CUdevice d0, d1;
  ASSERT_EQ(cuDeviceGet(&d0, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuDeviceGet(&d1, 1), CUDA_SUCCESS);
  EXPECT_EQ(cuDeviceGet(&d1, 2), CUDA_ERROR_INVALID_DEVICE);
  ASSERT_EQ(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d0), CUDA_SUCCESS);
  EXPECT_EQ(sms, 132);
  cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d0);
  cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d0);
  EXPECT_EQ(major * 10 + minor, 90);
  EXPECT_EQ(cuDeviceGetAttribute(&sms, static_cast<CUdevice_attribute>(100000), d0), CUDA_ERROR_INVALID_VALUE);
  size_t total = 0;
  ASSERT_EQ(cuDeviceTotalMem(&total, d0), CUDA_SUCCESS);
  EXPECT_EQ(total, 2ull << 30);
  char name[128];
  ASSERT_EQ(cuDeviceGetName(name, sizeof name, d0), CUDA_SUCCESS);
  EXPECT_NE(std::strstr(name, "H100"), nullptr);
  CUuuid u0, u1;
  ASSERT_EQ(cuDeviceGetUuid(&u0, d0), CUDA_SUCCESS);
  ASSERT_EQ(cuDeviceGetUuid(&u1, d1), CUDA_SUCCESS);
  EXPECT_NE(std::memcmp(u0.bytes, u1.bytes, 16), 0);
}

TEST_F(SimContext, ErrorNamesAndStrings) {
  const char* s = nullptr;
  ASSERT_EQ(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &s), CUDA_SUCCESS);
  EXPECT_STREQ(s, "CUDA_ERROR_OUT_OF_MEMORY");
  ASSERT_EQ(cuGetErrorString(CUDA_ERROR_OUT_OF_MEMORY, &s), CUDA_SUCCESS);
  EXPECT_STREQ(s, "out of memory");
  ASSERT_EQ(cuGetErrorName(CUDA_ERROR_NOT_PERMITTED, &s), CUDA_SUCCESS);
  EXPECT_STREQ(s, "CUDA_ERROR_NOT_PERMITTED");
  EXPECT_EQ(cuGetErrorName(static_cast<CUresult>(12345), &s), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(SimContext, NoCurrentContextIsInvalidContext) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUdevice d;
  EXPECT_EQ(cuCtxGetDevice(&d), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
  CUstream s;
  EXPECT_EQ(cuStreamCreate(&s, 0), CUDA_ERROR_INVALID_CONTEXT);
}

TEST_F(SimContext, CreatePushPopDestroy) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUcontext a, b, cur;
  ASSERT_EQ(cuCtxCreate(&a, nullptr, 0, 0), CUDA_SUCCESS);  // v4, pushes
  ASSERT_EQ(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
  EXPECT_EQ(cur, a);
  ASSERT_EQ(cuCtxCreate(&b, nullptr, 0, 1), CUDA_SUCCESS);
  CUdevice dev = -1;
  ASSERT_EQ(cuCtxGetDevice(&dev), CUDA_SUCCESS);
  EXPECT_EQ(dev, 1);
  ASSERT_EQ(cuCtxPopCurrent(&cur), CUDA_SUCCESS);
  EXPECT_EQ(cur, b);
  ASSERT_EQ(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
  EXPECT_EQ(cur, a);
  EXPECT_EQ(cuCtxDestroy(b), CUDA_SUCCESS);
  EXPECT_EQ(cuCtxDestroy(b), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxPushCurrent(b), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxCreate(&b, nullptr, 0x12345, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuCtxDestroy(a), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
  EXPECT_EQ(cur, nullptr);
}

TEST_F(SimContext, CurrentContextIsPerThread) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUcontext a;
  ASSERT_EQ(cuCtxCreate(&a, nullptr, 0, 0), CUDA_SUCCESS);
  CUcontext seen = a;
  std::thread([&] { cuCtxGetCurrent(&seen); }).join();
  EXPECT_EQ(seen, nullptr);
  cuCtxDestroy(a);
}

TEST_F(SimContext, PrimaryContextIsReferenceCounted) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUcontext p1, p2;
  unsigned flags = 0;
  int active = -1;
  ASSERT_EQ(cuDevicePrimaryCtxGetState(0, &flags, &active), CUDA_SUCCESS);
  EXPECT_EQ(active, 0);
  ASSERT_EQ(cuDevicePrimaryCtxSetFlags(0, CU_CTX_SCHED_BLOCKING_SYNC), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&p1, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&p2, 0), CUDA_SUCCESS);
  EXPECT_EQ(p1, p2);
  ASSERT_EQ(cuDevicePrimaryCtxGetState(0, &flags, &active), CUDA_SUCCESS);
  EXPECT_EQ(active, 1);
  EXPECT_EQ(flags, static_cast<unsigned>(CU_CTX_SCHED_BLOCKING_SYNC));
  EXPECT_EQ(cuCtxDestroy(p1), CUDA_ERROR_INVALID_CONTEXT);  // primary: release, not destroy
  ASSERT_EQ(cuDevicePrimaryCtxRelease(0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxGetState(0, &flags, &active), CUDA_SUCCESS);
  EXPECT_EQ(active, 1);
  ASSERT_EQ(cuDevicePrimaryCtxRelease(0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxGetState(0, &flags, &active), CUDA_SUCCESS);
  EXPECT_EQ(active, 0);
  EXPECT_EQ(cuDevicePrimaryCtxRelease(0), CUDA_ERROR_INVALID_CONTEXT);
  ASSERT_EQ(cuDevicePrimaryCtxRetain(&p1, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxReset(0), CUDA_SUCCESS);
  ASSERT_EQ(cuDevicePrimaryCtxGetState(0, &flags, &active), CUDA_SUCCESS);
  EXPECT_EQ(active, 0);
}

TEST_F(SimContext, ContextOverheadIsChargedAndReturned) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  CUcontext a;
  ASSERT_EQ(cuCtxCreate(&a, nullptr, 0, 0), CUDA_SUCCESS);
  size_t free0 = 0, total = 0;
  ASSERT_EQ(cuMemGetInfo(&free0, &total), CUDA_SUCCESS);
  EXPECT_EQ(total - free0, 100ull << 20);
  CUcontext b;
  ASSERT_EQ(cuCtxCreate(&b, nullptr, 0, 0), CUDA_SUCCESS);
  size_t free1 = 0;
  ASSERT_EQ(cuMemGetInfo(&free1, &total), CUDA_SUCCESS);
  EXPECT_EQ(free0 - free1, 100ull << 20);
  cuCtxDestroy(b);
  ASSERT_EQ(cuMemGetInfo(&free1, &total), CUDA_SUCCESS);
  EXPECT_EQ(free1, free0);
  cuCtxDestroy(a);
}

TEST_F(SimContext, UnimplementedEntryPointsAreNotSupported) {
  ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  // Graphics interop has no meaning on simgpu.
  EXPECT_EQ(cuGraphicsUnregisterResource(nullptr), CUDA_ERROR_NOT_SUPPORTED);
}

}  // namespace
