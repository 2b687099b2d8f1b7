// Initialisation, errors, devices and contexts of simgpu, in process.
#include <cuda.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

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

// As NVIDIA's real driver: a child forked after its parent initialised CUDA
// gets CUDA_ERROR_NOT_INITIALIZED from cuInit and every later call, and so do
// its own children; a child forked before any cuInit may initialise.
TEST_F(SimContext, ChildForkedAfterInitCannotInitialise) {
  int rc = in_fresh_process([] {
    if (in_fresh_process([] { return cuInit(0) == CUDA_SUCCESS ? 0 : 1; }) != 0) return 1;
    if (cuInit(0) != CUDA_SUCCESS) return 2;
    int child = in_fresh_process([] {
      int n = 0;
      CUdevice d;
      if (cuInit(0) != CUDA_ERROR_NOT_INITIALIZED) return 3;
      if (cuDeviceGetCount(&n) != CUDA_ERROR_NOT_INITIALIZED) return 4;
      if (cuDeviceGet(&d, 0) != CUDA_ERROR_NOT_INITIALIZED) return 5;
      if (cuInit(0) != CUDA_ERROR_NOT_INITIALIZED) return 6;  // for good, not once
      return in_fresh_process([] { return cuInit(0) == CUDA_ERROR_NOT_INITIALIZED ? 0 : 7; });
    });
    if (child != 0) return child;
    // The parent itself is unaffected.
    int n = 0;
    return cuDeviceGetCount(&n) == CUDA_SUCCESS && n == 2 ? 0 : 8;
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

namespace {

// UUIDs of the devices a fresh process sees with CUDA_VISIBLE_DEVICES=`cvd`
// (nullptr: unset), as hex strings; "init=<code>" if cuInit fails.
std::vector<std::string> visible_uuids(const char* cvd) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (cvd) setenv("CUDA_VISIBLE_DEVICES", cvd, 1);
    else unsetenv("CUDA_VISIBLE_DEVICES");
    std::string out;
    CUresult r = cuInit(0);
    int n = 0;
    if (r != CUDA_SUCCESS) out = "init=" + std::to_string(r) + "\n";
    else cuDeviceGetCount(&n);
    for (int i = 0; i < n; ++i) {
      CUuuid u;
      cuDeviceGetUuid(&u, i);
      char hex[40] = {0};
      for (int b = 0; b < 16; ++b) std::snprintf(hex + 2 * b, 3, "%02x", static_cast<unsigned char>(u.bytes[b]));
      out += std::string(hex) + "\n";
    }
    if (write(fds[1], out.data(), out.size()) < 0) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  std::string all;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  std::vector<std::string> lines;
  for (size_t p = 0, e; (e = all.find('\n', p)) != std::string::npos; p = e + 1) lines.push_back(all.substr(p, e - p));
  return lines;
}

TEST_F(SimContext, CudaVisibleDevicesReordersAndFilters) {
  auto all = visible_uuids(nullptr);
  ASSERT_EQ(all.size(), 2u);
  auto swapped = visible_uuids("1,0");
  ASSERT_EQ(swapped.size(), 2u);
  EXPECT_EQ(swapped[0], all[1]);
  EXPECT_EQ(swapped[1], all[0]);
  std::string by_uuid = "GPU-" + all[1].substr(0, 8);
  auto one = visible_uuids(by_uuid.c_str());
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0], all[1]);
  // Parsing stops at the first invalid entry, as documented.
  auto prefix = visible_uuids("0,7,1");
  ASSERT_EQ(prefix.size(), 1u);
  EXPECT_EQ(prefix[0], all[0]);
  auto none = visible_uuids("5");
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0], "init=" + std::to_string(CUDA_ERROR_NO_DEVICE));
}

}  // namespace
