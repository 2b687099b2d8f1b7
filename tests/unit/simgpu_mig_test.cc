// simgpu's MIG profile (SIMGPU_MIG): NVML's MIG mode and MIG device handles,
// the CUDA view of a MIG device (MIG UUID from cuDeviceGetUuid_v2, the
// instance's memory and multiprocessors), memory and process lists per MIG
// device, CUDA_VISIBLE_DEVICES with MIG UUIDs (in child processes: CUDA reads
// it once per process), and configuration errors.
#include <cuda.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "test_support.h"
#include "vgpu/nvml_subset.h"

namespace {

using namespace std::chrono_literals;
constexpr unsigned long long kGi = 1ull << 30;
constexpr unsigned long long kMi = 1ull << 20;

// GPU 0 in MIG mode with three MIG devices, GPU 1 not.
class Mig : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    node_ = new vgpu::test::SimNode({{"SIMGPU_DEVICES", "2"},
                                     {"SIMGPU_MEMORY", "80Gi"},
                                     {"SIMGPU_CONTEXT_OVERHEAD", "100Mi"},
                                     {"SIMGPU_MIG", "0:3g.40gb,2g.20gb,1g.10gb"}});
    unsetenv("CUDA_VISIBLE_DEVICES");
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
  }
  void SetUp() override {
    ASSERT_EQ(nvmlInit_v2(), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(0, &gpu0_), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetHandleByIndex_v2(1, &gpu1_), NVML_SUCCESS);
    for (unsigned i = 0; i < 3; ++i) ASSERT_EQ(nvmlDeviceGetMigDeviceHandleByIndex(gpu0_, i, &mig_[i]), NVML_SUCCESS);
  }
  void TearDown() override { EXPECT_EQ(nvmlShutdown(), NVML_SUCCESS); }

  static std::string uuid(nvmlDevice_t d) {
    char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
    EXPECT_EQ(nvmlDeviceGetUUID(d, text, sizeof text), NVML_SUCCESS);
    return text;
  }
  // "MIG-xxxxxxxx-xxxx-..." -> 32 hex digits, as mig_probe prints them.
  static std::string flat(const std::string& text) {
    std::string out;
    for (char c : text.substr(4))
      if (c != '-') out += c;
    return out;
  }
  static unsigned long long used(nvmlDevice_t d) {
    nvmlMemory_t m{};
    EXPECT_EQ(nvmlDeviceGetMemoryInfo(d, &m), NVML_SUCCESS);
    return m.used;
  }
  // mig_probe on this node with CUDA_VISIBLE_DEVICES = `visible` (unset if empty).
  static std::string probe(const std::string& visible, const std::string& alloc = "0") {
    auto env = node_->env();
    if (!visible.empty()) env["CUDA_VISIBLE_DEVICES"] = visible;
    vgpu::test::Child c({vgpu::test::program("mig_probe"), alloc}, env);
    EXPECT_EQ(c.wait(30s), 0) << c.errors();
    return c.output();
  }

  static vgpu::test::SimNode* node_;
  nvmlDevice_t gpu0_ = nullptr, gpu1_ = nullptr, mig_[3] = {};
};
vgpu::test::SimNode* Mig::node_ = nullptr;

TEST_F(Mig, NvmlReportsMigModeAndMigDevices) {
  unsigned count = 0, current = 9, pending = 9, max = 9;
  ASSERT_EQ(nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  EXPECT_EQ(count, 2u);  // MIG devices are not NVML indexes
  ASSERT_EQ(nvmlDeviceGetMigMode(gpu0_, &current, &pending), NVML_SUCCESS);
  EXPECT_EQ(current, unsigned{NVML_DEVICE_MIG_ENABLE});
  EXPECT_EQ(pending, unsigned{NVML_DEVICE_MIG_ENABLE});
  ASSERT_EQ(nvmlDeviceGetMigMode(gpu1_, &current, &pending), NVML_SUCCESS);
  EXPECT_EQ(current, unsigned{NVML_DEVICE_MIG_DISABLE});
  ASSERT_EQ(nvmlDeviceGetMaxMigDeviceCount(gpu0_, &max), NVML_SUCCESS);
  EXPECT_EQ(max, 7u);
  ASSERT_EQ(nvmlDeviceGetMaxMigDeviceCount(gpu1_, &max), NVML_SUCCESS);
  EXPECT_EQ(max, 0u);
  nvmlDevice_t h;
  EXPECT_EQ(nvmlDeviceGetMigDeviceHandleByIndex(gpu0_, 3, &h), NVML_ERROR_NOT_FOUND);
  EXPECT_EQ(nvmlDeviceGetMigDeviceHandleByIndex(gpu0_, 7, &h), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(nvmlDeviceGetMigDeviceHandleByIndex(gpu1_, 0, &h), NVML_ERROR_INVALID_ARGUMENT);
  // A MIG device handle is not a GPU handle for MIG-mode queries.
  EXPECT_EQ(nvmlDeviceGetMigMode(mig_[0], &current, &pending), NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(Mig, MigDeviceHandlesHaveTheirOwnIdentity) {
  const unsigned long long sizes[] = {40 * kGi, 20 * kGi, 10 * kGi};
  std::vector<std::string> seen{uuid(gpu0_), uuid(gpu1_)};
  for (unsigned i = 0; i < 3; ++i) {
    unsigned is_mig = 0, gi = 0, ci = 9;
    ASSERT_EQ(nvmlDeviceIsMigDeviceHandle(mig_[i], &is_mig), NVML_SUCCESS);
    EXPECT_EQ(is_mig, 1u);
    nvmlDevice_t parent = nullptr, by_uuid = nullptr;
    ASSERT_EQ(nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig_[i], &parent), NVML_SUCCESS);
    EXPECT_EQ(parent, gpu0_);
    ASSERT_EQ(nvmlDeviceGetGpuInstanceId(mig_[i], &gi), NVML_SUCCESS);
    ASSERT_EQ(nvmlDeviceGetComputeInstanceId(mig_[i], &ci), NVML_SUCCESS);
    EXPECT_EQ(gi, i + 1);
    EXPECT_EQ(ci, 0u);
    std::string u = uuid(mig_[i]);
    EXPECT_EQ(u.rfind("MIG-", 0), 0u) << u;
    EXPECT_EQ(std::count(seen.begin(), seen.end(), u), 0) << "UUIDs must be unique: " << u;
    seen.push_back(u);
    ASSERT_EQ(nvmlDeviceGetHandleByUUID(u.c_str(), &by_uuid), NVML_SUCCESS);
    EXPECT_EQ(by_uuid, mig_[i]);
    nvmlMemory_t m{};
    ASSERT_EQ(nvmlDeviceGetMemoryInfo(mig_[i], &m), NVML_SUCCESS);
    EXPECT_EQ(m.total, sizes[i]);
  }
  unsigned is_mig = 1, gi = 0;
  ASSERT_EQ(nvmlDeviceIsMigDeviceHandle(gpu0_, &is_mig), NVML_SUCCESS);
  EXPECT_EQ(is_mig, 0u);
  EXPECT_EQ(nvmlDeviceGetGpuInstanceId(gpu0_, &gi), NVML_ERROR_NOT_SUPPORTED);
  nvmlDevice_t parent;
  EXPECT_EQ(nvmlDeviceGetDeviceHandleFromMigDeviceHandle(gpu1_, &parent), NVML_ERROR_INVALID_ARGUMENT);
  nvmlMemory_t m{};
  ASSERT_EQ(nvmlDeviceGetMemoryInfo(gpu0_, &m), NVML_SUCCESS);
  EXPECT_EQ(m.total, 80 * kGi);  // the GPU keeps its whole memory as total
  nvmlUtilization_t util;
  EXPECT_EQ(nvmlDeviceGetUtilizationRates(gpu0_, &util), NVML_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(nvmlDeviceGetUtilizationRates(gpu1_, &util), NVML_SUCCESS);
}

// Without CUDA_VISIBLE_DEVICES: GPU 0's first MIG device, then GPU 1.
TEST_F(Mig, CudaSeesTheMigDeviceWithItsMigUuidAndMemory) {
  int n = 0;
  ASSERT_EQ(cuDeviceGetCount(&n), CUDA_SUCCESS);
  ASSERT_EQ(n, 2);
  CUuuid v2;
  ASSERT_EQ(cuDeviceGetUuid_v2(&v2, 0), CUDA_SUCCESS);
  char hex[33];
  for (int i = 0; i < 16; ++i) std::snprintf(hex + 2 * i, 3, "%02x", static_cast<unsigned char>(v2.bytes[i]));
  EXPECT_EQ(std::string(hex), flat(uuid(mig_[0])));
  std::string out = probe("");
  EXPECT_NE(out.find("count=2"), std::string::npos) << out;
  EXPECT_NE(out.find("ordinal=0 uuid_v2=" + flat(uuid(mig_[0])) + " uuid_v1=" + flat(uuid(gpu0_))), std::string::npos)
      << "cuDeviceGetUuid (legacy) names the GPU, _v2 the MIG device:\n" << out;
  EXPECT_NE(out.find("total=" + std::to_string(40 * kGi) + " sms=60"), std::string::npos) << out;
  EXPECT_NE(out.find("ordinal=1 uuid_v2=" + flat(uuid(gpu1_))), std::string::npos) << out;
  char name[128];
  ASSERT_EQ(cuDeviceGetName(name, sizeof name, 0), CUDA_SUCCESS);
  EXPECT_NE(std::strstr(name, "MIG 3g.40gb"), nullptr) << name;
  size_t total = 0;
  ASSERT_EQ(cuDeviceTotalMem(&total, 0), CUDA_SUCCESS);
  EXPECT_EQ(total, 40 * kGi);
}

TEST_F(Mig, MemoryAndProcessesAreCountedPerMigDevice) {
  CUcontext ctx;
  ASSERT_EQ(cuCtxCreate(&ctx, nullptr, 0, 0), CUDA_SUCCESS);
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, 1 * kGi), CUDA_SUCCESS);
  EXPECT_EQ(used(mig_[0]), 1 * kGi + 100 * kMi);
  EXPECT_EQ(used(mig_[1]), 0u);
  EXPECT_EQ(used(gpu0_), used(mig_[0]));  // the GPU reports its MIG devices' sum
  size_t free_b = 0, total_b = 0;
  ASSERT_EQ(cuMemGetInfo(&free_b, &total_b), CUDA_SUCCESS);
  EXPECT_EQ(total_b, 40 * kGi);
  EXPECT_EQ(free_b, 40 * kGi - 1 * kGi - 100 * kMi);

  nvmlProcessInfo_t infos[4];
  unsigned n = 4;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(mig_[0], &n, infos), NVML_SUCCESS);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(infos[0].pid, static_cast<unsigned>(getpid()));
  EXPECT_EQ(infos[0].usedGpuMemory, 1 * kGi + 100 * kMi);
  EXPECT_EQ(infos[0].gpuInstanceId, 1u);
  EXPECT_EQ(infos[0].computeInstanceId, 0u);
  n = 4;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(gpu0_, &n, infos), NVML_SUCCESS);
  EXPECT_EQ(n, 1u);  // the GPU's list aggregates its MIG devices
  n = 4;
  ASSERT_EQ(nvmlDeviceGetComputeRunningProcesses_v3(mig_[1], &n, infos), NVML_SUCCESS);
  EXPECT_EQ(n, 0u);

  // The MIG device's memory is the limit, not the GPU's.
  CUdeviceptr big = 0;
  EXPECT_EQ(cuMemAlloc(&big, 39 * kGi), CUDA_ERROR_OUT_OF_MEMORY);
  ASSERT_EQ(cuMemFree(p), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxDestroy(ctx), CUDA_SUCCESS);
  EXPECT_EQ(used(gpu0_), 0u);
}

TEST_F(Mig, VisibleDevicesSelectMigDevicesByUuid) {
  std::string m1 = uuid(mig_[1]), m2 = uuid(mig_[2]);
  std::string out = probe(m1);
  EXPECT_NE(out.find("count=1\nordinal=0 uuid_v2=" + flat(m1)), std::string::npos) << out;
  EXPECT_NE(out.find("total=" + std::to_string(20 * kGi) + " sms=32"), std::string::npos) << out;
  // A unique prefix is enough, as for GPU UUIDs.
  out = probe(m2.substr(0, 14));
  EXPECT_NE(out.find("count=1\nordinal=0 uuid_v2=" + flat(m2)), std::string::npos) << out;
  // One MIG device per process: the second is left out, later entries stay.
  out = probe(m1 + "," + m2 + ",1");
  EXPECT_NE(out.find("count=2\nordinal=0 uuid_v2=" + flat(m1)), std::string::npos) << out;
  EXPECT_NE(out.find("ordinal=1 uuid_v2=" + flat(uuid(gpu1_))), std::string::npos) << out;
  // The pre-R470 form names the GPU and the instance ids.
  out = probe("MIG-" + uuid(gpu0_) + "/3/0");
  EXPECT_NE(out.find("count=1\nordinal=0 uuid_v2=" + flat(m2)), std::string::npos) << out;
  // GPU 1 alone: no MIG device.
  out = probe("1");
  EXPECT_NE(out.find("count=1\nordinal=0 uuid_v2=" + flat(uuid(gpu1_))), std::string::npos) << out;
}

TEST(MigConfig, BadProfilesFailWithAClearError) {
  const char* bad[] = {"0:3g.40gb,9g.10gb", "0:4g.40gb,4g.40gb", "2:1g.10gb", "0:7g.90gb", "0:1g10gb", "x"};
  for (const char* v : bad) {
    vgpu::test::SimNode node{{{"SIMGPU_DEVICES", "2"}, {"SIMGPU_MEMORY", "80Gi"}, {"SIMGPU_MIG", v}}};
    vgpu::test::Child c({vgpu::test::program("mig_probe"), "0"}, node.env());
    EXPECT_EQ(c.wait(30s), 1) << v;
    EXPECT_NE(c.errors().find("SIMGPU_MIG='"), std::string::npos) << v << ": " << c.errors();
  }
}

}  // namespace
