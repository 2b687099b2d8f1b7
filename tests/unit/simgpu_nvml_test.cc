// simgpu's NVML in process, cross-checked against the simulated CUDA driver
// on the same node: identity (count, handles, names, UUIDs, PCI ids), memory
// (v1, v2), the running-process list protocol, errors and init refcounting.
#include <cuda.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"
#include "vgpu/nvml_subset.h"

namespace {

constexpr unsigned long long kMi = 1ull << 20;
constexpr unsigned long long kOverhead = 300 * kMi;

// One node for the whole suite: the CUDA driver reads SIMGPU_* once per
// process (cuInit), so every test must see the same node for cross-checks.
class Nvml : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    node_ = new vgpu::test::SimNode({{"SIMGPU_DEVICES", "2"}, {"SIMGPU_MEMORY", "16Gi,8Gi"},
                                     {"SIMGPU_CONTEXT_OVERHEAD", "300Mi"}});
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(0, &dev0_), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(1, &dev1_), NVML_SUCCESS);
  }
  void TearDown() override { EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS); }

  static unsigned long long used(nvmlDevice_t d) {
    nvmlMemory_t m{};
    EXPECT_EQ(nvmlDeviceGetMemoryInfo(d, &m), NVML_SUCCESS);
    return m.used;
  }

  static vgpu::test::SimNode* node_;
  nvmlDevice_t dev0_ = nullptr, dev1_ = nullptr;
};
vgpu::test::SimNode* Nvml::node_ = nullptr;

std::string uuid_text(const CUuuid& u) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char s[64];
  std::snprintf(s, sizeof s, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

// A context created on construction and destroyed at scope end.
struct ScopedContext {
  explicit ScopedContext(int device) {
    CUdevice d;
    EXPECT_EQ(cuDeviceGet(&d, device), CUDA_SUCCESS);
    EXPECT_EQ(cuCtxCreate(&ctx, nullptr, 0, d), CUDA_SUCCESS);
  }
  ~ScopedContext() { EXPECT_EQ(cuCtxDestroy(ctx), CUDA_SUCCESS); }
  CUcontext ctx = nullptr;
};

TEST(NvmlLifecycle, CallsBeforeInitAreUninitialized) {
  unsigned n = 0;
  nvmlDevice_t d;
  EXPECT_EQ(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED);
  EXPECT_EQ(nvmlDeviceGetHandleByIndex_v2(0, &d), NVML_ERROR_UNINITIALIZED);
  EXPECT_EQ(nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
  char version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
  EXPECT_EQ(nvmlSystemGetDriverVersion(version, sizeof version), NVML_ERROR_UNINITIALIZED);
  EXPECT_STREQ(nvmlErrorString(NVML_ERROR_UNINITIALIZED), "Uninitialized");
  int cuda = 0;  // documented to work without nvmlInit
  EXPECT_EQ(nvmlSystemGetCudaDriverVersion_v2(&cuda), NVML_SUCCESS);
  EXPECT_GT(cuda, 0);
}

TEST(NvmlLifecycle, BadConfigurationFailsInitWithoutCounting) {
  vgpu::test::SimNode node{{{"SIMGPU_DEVICES", "99"}}};
  EXPECT_EQ(nvmlInit_v2(), NVML_ERROR_UNKNOWN);
  unsetenv("SIMGPU_DEVICES");
  EXPECT_EQ(nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
  EXPECT_EQ(nvmlInitWithFlags(0x80), NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(Nvml, InitIsReferenceCounted) {
  ASSERT_EQ(nvmlInit(), NVML_SUCCESS);
  ASSERT_EQ(nvmlInitWithFlags(NVML_INIT_FLAG_NO_GPUS), NVML_SUCCESS);
  unsigned n = 0;
  EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
  EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
  EXPECT_EQ(nvmlDeviceGetCount_v2(&n), NVML_SUCCESS);  // the fixture's init still holds
  EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS);
  EXPECT_EQ(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED);
  nvmlMemory_t m;
  EXPECT_EQ(nvmlDeviceGetMemoryInfo(dev0_, &m), NVML_ERROR_UNINITIALIZED);
  ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);  // for TearDown; handles stay valid
  EXPECT_EQ(nvmlDeviceGetMemoryInfo(dev0_, &m), NVML_SUCCESS);
}

TEST_F(Nvml, CountAndHandlesMatchTheDriver) {
  unsigned n = 0, legacy = 0;
  int cuda = 0;
  ASSERT_EQ(nvmlDeviceGetCount_v2(&n), NVML_SUCCESS);
  ASSERT_EQ(nvmlDeviceGetCount(&legacy), NVML_SUCCESS);
  ASSERT_EQ(cuDeviceGetCount(&cuda), CUDA_SUCCESS);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(legacy, n);
  EXPECT_EQ(static_cast<int>(n), cuda);
  EXPECT_NE(dev0_, dev1_);
  nvmlDevice_t again;
  ASSERT_EQ(nvmlDeviceGetHandleByIndex(1, &again), NVML_SUCCESS);
  EXPECT_EQ(again, dev1_);
  for (unsigned i = 0; i < n; ++i) {
    nvmlDevice_t d;
    unsigned index = 99, minor = 99;
    ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(i, &d), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetIndex(d, &index), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetMinorNumber(d, &minor), NVML_SUCCESS);
    EXPECT_EQ(index, i);
    EXPECT_EQ(minor, i);
  }
}

TEST_F(Nvml, NamesAndUuidsMatchTheDriver) {
  nvmlDevice_t devs[] = {dev0_, dev1_};
  for (int i = 0; i < 2; ++i) {
    CUuuid cu;
    char cu_name[256], name[NVML_DEVICE_NAME_V2_BUFFER_SIZE], uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    ASSERT_EQ(cuDeviceGetUuid(&cu, i), CUDA_SUCCESS);
    ASSERT_EQ(cuDeviceGetName(cu_name, sizeof cu_name, i), CUDA_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetUUID(devs[i], uuid, sizeof uuid), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetName(devs[i], name, sizeof name), NVML_SUCCESS);
    EXPECT_EQ(std::string(uuid), uuid_text(cu));
    EXPECT_STREQ(name, cu_name);
    nvmlDevice_t found;
    ASSERT_EQ(nvmlDeviceGetHandleByUUID(uuid, &found), NVML_SUCCESS);
    EXPECT_EQ(found, devs[i]);
  }
  char a[NVML_DEVICE_UUID_V2_BUFFER_SIZE], b[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  ASSERT_EQ(nvmlDeviceGetUUID(dev0_, a, sizeof a), NVML_SUCCESS);
  ASSERT_EQ(nvmlDeviceGetUUID(dev1_, b, sizeof b), NVML_SUCCESS);
  EXPECT_STRNE(a, b);
}

TEST_F(Nvml, StringQueriesRejectShortBuffers) {
  char uuid[41], small[8];
  EXPECT_EQ(nvmlDeviceGetUUID(dev0_, uuid, sizeof uuid), NVML_SUCCESS);  // 40 chars + NUL fits
  EXPECT_EQ(nvmlDeviceGetUUID(dev0_, uuid, 40), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(nvmlDeviceGetName(dev0_, small, sizeof small), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(nvmlDeviceGetName(dev0_, nullptr, 96), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(nvmlSystemGetDriverVersion(small, 4), NVML_ERROR_INSUFFICIENT_SIZE);
}

TEST_F(Nvml, LookupErrors) {
  nvmlDevice_t d;
  EXPECT_EQ(nvmlDeviceGetHandleByIndex_v2(2, &d), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(nvmlDeviceGetHandleByIndex_v2(0, nullptr), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(nvmlDeviceGetHandleByUUID("GPU-00000000-0000-4000-8000-000000000000", &d), NVML_ERROR_NOT_FOUND);
  EXPECT_EQ(nvmlDeviceGetHandleByUUID(nullptr, &d), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(nvmlDeviceGetHandleByPciBusId_v2("0000:ff:00.0", &d), NVML_ERROR_NOT_FOUND);
  int bogus = 0;
  auto foreign = reinterpret_cast<nvmlDevice_t>(&bogus);
  nvmlMemory_t m;
  unsigned index;
  char name[96];
  EXPECT_EQ(nvmlDeviceGetMemoryInfo(nullptr, &m), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(nvmlDeviceGetMemoryInfo(foreign, &m), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(nvmlDeviceGetMemoryInfo(dev0_, nullptr), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(nvmlDeviceGetIndex(foreign, &index), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(nvmlDeviceGetName(foreign, name, sizeof name), NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(Nvml, PciInfoMatchesTheDriver) {
  for (int i = 0; i < 2; ++i) {
    nvmlDevice_t d, found;
    nvmlPciInfo_t pci;
    char cu_bus[32];
    ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(i, &d), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetPciInfo_v3(d, &pci), NVML_SUCCESS);
    ASSERT_EQ(cuDeviceGetPCIBusId(cu_bus, sizeof cu_bus, i), CUDA_SUCCESS);
    int cu_bus_number = 0;
    ASSERT_EQ(cuDeviceGetAttribute(&cu_bus_number, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, i), CUDA_SUCCESS);
    EXPECT_EQ(pci.bus, static_cast<unsigned>(cu_bus_number));
    EXPECT_EQ(strcasecmp(pci.busIdLegacy, cu_bus), 0) << pci.busIdLegacy << " vs " << cu_bus;
    EXPECT_EQ(std::strlen(pci.busId), 16u);
    ASSERT_EQ(nvmlDeviceGetHandleByPciBusId_v2(pci.busId, &found), NVML_SUCCESS);
    EXPECT_EQ(found, d);
    ASSERT_EQ(nvmlDeviceGetHandleByPciBusId_v2(cu_bus, &found), NVML_SUCCESS);
    EXPECT_EQ(found, d);
  }
}

TEST_F(Nvml, MemoryV1AndV2AgreeWithTheDevice) {
  nvmlMemory_t v1;
  nvmlMemory_v2_t v2{};
  v2.version = nvmlMemory_v2;
  ASSERT_EQ(nvmlDeviceGetMemoryInfo(dev1_, &v1), NVML_SUCCESS);
  ASSERT_EQ(nvmlDeviceGetMemoryInfo_v2(dev1_, &v2), NVML_SUCCESS);
  size_t cu_total = 0;
  ASSERT_EQ(cuDeviceTotalMem(&cu_total, 1), CUDA_SUCCESS);
  EXPECT_EQ(v1.total, 8192 * kMi);
  EXPECT_EQ(v1.total, cu_total);
  EXPECT_EQ(v1.free + v1.used, v1.total);
  EXPECT_EQ(v2.total, v1.total);
  EXPECT_EQ(v2.reserved, 0u);
  EXPECT_EQ(v2.used, v1.used);
  EXPECT_EQ(v2.free, v1.free);
  EXPECT_EQ(v2.version, nvmlMemory_v2);
}

TEST_F(Nvml, MemoryV2ChecksTheVersion) {
  nvmlMemory_v2_t v2{};
  v2.version = sizeof(nvmlMemory_v2_t) | (1u << 24);
  EXPECT_EQ(nvmlDeviceGetMemoryInfo_v2(dev0_, &v2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  v2.version = 0;
  EXPECT_EQ(nvmlDeviceGetMemoryInfo_v2(dev0_, &v2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  EXPECT_EQ(nvmlDeviceGetMemoryInfo_v2(dev0_, nullptr), NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(Nvml, UsedMemoryFollowsContextsOnTheirDeviceOnly) {
  const unsigned long long before0 = used(dev0_), before1 = used(dev1_);
  {
    ScopedContext ctx(0);
    EXPECT_EQ(used(dev0_), before0 + kOverhead);
    EXPECT_EQ(used(dev1_), before1);
    nvmlMemory_v2_t v2{};
    v2.version = nvmlMemory_v2;
    ASSERT_EQ(nvmlDeviceGetMemoryInfo_v2(dev0_, &v2), NVML_SUCCESS);
    EXPECT_EQ(v2.used, before0 + kOverhead);
    EXPECT_EQ(v2.free, v2.total - v2.used);
  }
  EXPECT_EQ(used(dev0_), before0);
}

TEST_F(Nvml, UsedMemoryFollowsAllocations) {
  ScopedContext ctx(0);
  const unsigned long long base = used(dev0_);
  CUdeviceptr p = 0;
  CUresult r = cuMemAlloc(&p, 64 * kMi);
  if (r == CUDA_ERROR_NOT_SUPPORTED) GTEST_SKIP() << "cuMemAlloc_v2 is not implemented yet";
  ASSERT_EQ(r, CUDA_SUCCESS);
  EXPECT_EQ(used(dev0_), base + 64 * kMi);
  ASSERT_EQ(cuMemFree(p), CUDA_SUCCESS);
  EXPECT_EQ(used(dev0_), base);
}

// Reads the v3 list with the documented protocol: ask, then fetch.
std::vector<nvmlProcessInfo_t> processes(nvmlDevice_t d) {
  unsigned count = 0;
  nvmlReturn_t r = nvmlDeviceGetComputeRunningProcesses_v3(d, &count, nullptr);
  EXPECT_TRUE(r == NVML_SUCCESS || r == NVML_ERROR_INSUFFICIENT_SIZE) << nvmlErrorString(r);
  std::vector<nvmlProcessInfo_t> out(count);
  if (count == 0) return out;
  EXPECT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(d, &count, out.data()), NVML_SUCCESS);
  out.resize(count);
  return out;
}

TEST_F(Nvml, ProcessListFollowsTheSizeProtocol) {
  unsigned count = 0;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(dev0_, &count, nullptr), NVML_SUCCESS);
  EXPECT_EQ(count, 0u);  // no context yet: SUCCESS, nothing runs
  ScopedContext ctx(0);
  count = 0;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(dev0_, &count, nullptr), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(count, 1u);
  nvmlProcessInfo_t infos[4];
  std::memset(infos, 0, sizeof infos);
  count = 4;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(dev0_, &count, infos), NVML_SUCCESS);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(infos[0].pid, static_cast<unsigned>(getpid()));
  EXPECT_EQ(infos[0].usedGpuMemory, kOverhead);
  EXPECT_EQ(infos[0].gpuInstanceId, 0xFFFFFFFFu);
  EXPECT_EQ(infos[0].computeInstanceId, 0xFFFFFFFFu);
  EXPECT_TRUE(processes(dev1_).empty());  // the context is on device 0 only
  EXPECT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(dev0_, nullptr, infos), NVML_ERROR_INVALID_ARGUMENT);
  count = 2;
  EXPECT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(dev0_, &count, nullptr), NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(Nvml, ProcessListLegacyLayouts) {
  ScopedContext ctx(1);
  nvmlProcessInfo_v1_t v1[2];
  nvmlProcessInfo_t v2[2];
  unsigned n1 = 2, n2 = 2;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses(dev1_, &n1, v1), NVML_SUCCESS);
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v2(dev1_, &n2, v2), NVML_SUCCESS);
  ASSERT_EQ(n1, 1u);
  ASSERT_EQ(n2, 1u);
  EXPECT_EQ(v1[0].pid, static_cast<unsigned>(getpid()));
  EXPECT_EQ(v1[0].usedGpuMemory, kOverhead);
  EXPECT_EQ(v2[0].pid, v1[0].pid);
  EXPECT_EQ(v2[0].usedGpuMemory, kOverhead);
}

TEST_F(Nvml, TwoContextsInOneProcessAreOneEntry) {
  ScopedContext a(0), b(0);
  auto list = processes(dev0_);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].usedGpuMemory, 2 * kOverhead);
}

TEST_F(Nvml, UtilizationIsZeroWhenIdle) {
  nvmlUtilization_t u{77, 77};
  ASSERT_EQ(nvmlDeviceGetUtilizationRates(dev0_, &u), NVML_SUCCESS);
  EXPECT_EQ(u.gpu, 0u);
  EXPECT_EQ(u.memory, 0u);
  EXPECT_EQ(nvmlDeviceGetUtilizationRates(dev0_, nullptr), NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(Nvml, VersionsFollowTheSimulatedDriver) {
  int cuda = 0, nvml = 0, nvml2 = 0;
  ASSERT_EQ(cuDriverGetVersion(&cuda), CUDA_SUCCESS);
  ASSERT_EQ(nvmlSystemGetCudaDriverVersion(&nvml), NVML_SUCCESS);
  ASSERT_EQ(nvmlSystemGetCudaDriverVersion_v2(&nvml2), NVML_SUCCESS);
  EXPECT_EQ(nvml, cuda);
  EXPECT_EQ(nvml2, cuda);
  EXPECT_EQ(nvmlSystemGetCudaDriverVersion(nullptr), NVML_ERROR_INVALID_ARGUMENT);
  setenv("SIMGPU_DRIVER_VERSION", "12040", 1);
  char version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
  EXPECT_EQ(nvmlSystemGetCudaDriverVersion(&nvml), NVML_SUCCESS);
  EXPECT_EQ(nvmlSystemGetDriverVersion(version, sizeof version), NVML_SUCCESS);
  unsetenv("SIMGPU_DRIVER_VERSION");
  EXPECT_EQ(nvml, 12040);
  EXPECT_STREQ(version, "550.54.14");
}

// Each thread holds its own reference while it queries, so every call must
// succeed however init and shutdown interleave (the library is thread-safe).
TEST_F(Nvml, ConcurrentInitQueryShutdown) {
  ScopedContext ctx(0);
  ASSERT_EQ(nvmlShutdown(), NVML_SUCCESS);  // let the count reach 0: attach/detach race too
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        nvmlDevice_t d;
        nvmlMemory_t m;
        nvmlProcessInfo_t infos[4];
        unsigned n = 4;
        bool ok = nvmlInit_v2() == NVML_SUCCESS && nvmlDeviceGetHandleByIndex_v2(0, &d) == NVML_SUCCESS &&
                  nvmlDeviceGetMemoryInfo(d, &m) == NVML_SUCCESS &&
                  nvmlDeviceGetComputeRunningProcesses_v3(d, &n, infos) == NVML_SUCCESS && n == 1 &&
                  nvmlShutdown() == NVML_SUCCESS;
        if (!ok) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  unsigned n = 0;
  EXPECT_EQ(nvmlDeviceGetCount_v2(&n), NVML_ERROR_UNINITIALIZED);  // every init was matched
  ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);  // the fixture's reference, for TearDown
}

TEST(NvmlAbi, LayoutsMatchTheRealLibrary) {
  EXPECT_EQ(sizeof(nvmlMemory_v2_t), 40u);
  EXPECT_EQ(nvmlMemory_v2, 0x02000028u);
  EXPECT_EQ(offsetof(nvmlMemory_v2_t, total), 8u);
  EXPECT_EQ(offsetof(nvmlMemory_v2_t, used), 32u);
  EXPECT_EQ(offsetof(nvmlProcessInfo_t, gpuInstanceId), 16u);
  EXPECT_EQ(sizeof(nvmlProcessInfo_v1_t), 16u);
  EXPECT_EQ(offsetof(nvmlPciInfo_t, busId), 36u);
  EXPECT_EQ(NVML_ERROR_ARGUMENT_VERSION_MISMATCH, 25);
  EXPECT_EQ(NVML_ERROR_UNKNOWN, 999);
}

}  // namespace
