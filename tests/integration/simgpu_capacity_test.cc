// Device capacity shared by the processes of one simulated node: a child that
// holds memory reduces what the parent may allocate, a kill -9ed child's
// memory comes back, and IPC imports are not charged twice.
#include <cuda.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>

#include "test_support.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;

constexpr size_t kMi = 1ull << 20;
constexpr size_t kTotal = 1024 * kMi;
constexpr size_t kOverhead = 64 * kMi;

class CapacityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    node_ = new vgpu::test::SimNode({{"SIMGPU_MEMORY", "1Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "64Mi"}});
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  }
  void SetUp() override { ASSERT_EQ(cuCtxCreate(&ctx_, nullptr, 0, 0), CUDA_SUCCESS); }
  void TearDown() override { EXPECT_EQ(cuCtxDestroy(ctx_), CUDA_SUCCESS); }

  static size_t free_bytes() {
    size_t f = 0, t = 0;
    EXPECT_EQ(cuMemGetInfo(&f, &t), CUDA_SUCCESS);
    return f;
  }
  static Child start(const std::string& mode, const std::string& arg) {
    return Child({vgpu::test::program("sim_mem_holder"), mode, arg}, node_->env());
  }
  // Waits for a line starting with `prefix` on the child's stdout; returns it.
  static std::string line(Child& c, const std::string& prefix) {
    std::string found;
    bool ok = vgpu::test::wait_until(
        [&] {
          std::string out = c.output();
          size_t at = out.find(prefix);
          size_t end = at == std::string::npos ? at : out.find('\n', at);
          if (end == std::string::npos) return false;
          found = out.substr(at, end - at);
          return true;
        },
        20s);
    EXPECT_TRUE(ok) << "no '" << prefix << "' from child; stderr: " << c.errors();
    return found;
  }

  static vgpu::test::SimNode* node_;
  CUcontext ctx_ = nullptr;
};

vgpu::test::SimNode* CapacityTest::node_ = nullptr;

TEST_F(CapacityTest, TwoProcessesShareTheDevice) {
  ASSERT_EQ(free_bytes(), kTotal - kOverhead);
  Child holder = start("hold", std::to_string(512 * kMi));
  line(holder, "ready");
  size_t avail = free_bytes();
  EXPECT_EQ(avail, kTotal - 2 * kOverhead - 512 * kMi);
  CUdeviceptr p = 0;
  EXPECT_EQ(cuMemAlloc(&p, avail + 1), CUDA_ERROR_OUT_OF_MEMORY);
  ASSERT_EQ(cuMemAlloc(&p, avail), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
  // The child is refused too while we hold the rest.
  ASSERT_EQ(cuMemAlloc(&p, avail), CUDA_SUCCESS);
  Child refused = start("hold", "1");
  EXPECT_EQ(refused.wait(20s), 1);  // cannot even create its context
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
}

TEST_F(CapacityTest, MemoryOfAKilledProcessReturnsWithinASecond) {
  Child holder = start("hold", std::to_string(700 * kMi));
  line(holder, "ready");
  EXPECT_EQ(free_bytes(), kTotal - 2 * kOverhead - 700 * kMi);
  holder.kill(SIGKILL);
  ASSERT_EQ(holder.wait(10s), -SIGKILL);
  auto start_time = std::chrono::steady_clock::now();
  EXPECT_TRUE(vgpu::test::wait_until([] { return free_bytes() == kTotal - kOverhead; }, 1s));
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, kTotal - kOverhead), CUDA_SUCCESS);
  EXPECT_LT(std::chrono::steady_clock::now() - start_time, 1s);
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
}

TEST_F(CapacityTest, KilledProcessMemoryIsReclaimedByAFailedAllocation) {
  // Without any cuMemGetInfo: the allocation itself reaps the dead and retries.
  Child holder = start("hold", std::to_string(700 * kMi));
  line(holder, "ready");
  holder.kill(SIGKILL);
  ASSERT_EQ(holder.wait(10s), -SIGKILL);
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, kTotal - kOverhead), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
}

std::string hex_handle(const CUipcMemHandle& h) {
  std::string s;
  char b[3];
  for (unsigned char c : h.reserved) {
    std::snprintf(b, sizeof b, "%02x", c);
    s += b;
  }
  return s;
}

TEST_F(CapacityTest, IpcImportIsNotChargedTwice) {
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, 256 * kMi), CUDA_SUCCESS);
  CUipcMemHandle h;
  ASSERT_EQ(cuIpcGetMemHandle(&h, p), CUDA_SUCCESS);
  CUdeviceptr self = 0;
  EXPECT_EQ(cuIpcOpenMemHandle(&self, h, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS), CUDA_ERROR_INVALID_CONTEXT);
  Child importer = start("open", hex_handle(h));
  std::string got = line(importer, "open rc=");
  size_t before = 0, after = 0;
  int rc = -1;
  ASSERT_EQ(std::sscanf(got.c_str(), "open rc=%d before=%zu after=%zu", &rc, &before, &after), 3) << got;
  EXPECT_EQ(rc, CUDA_SUCCESS);
  EXPECT_EQ(before, after);
  // Node-wide: our context + 256 MiB + the importer's context only.
  EXPECT_EQ(free_bytes(), kTotal - 2 * kOverhead - 256 * kMi);

  // Once the exporter frees the memory the handle is dead.
  ASSERT_EQ(cuMemFree(p), CUDA_SUCCESS);
  Child late = start("open", hex_handle(h));
  EXPECT_EQ(line(late, "open rc=").rfind("open rc=1 ", 0), 0u);  // CUDA_ERROR_INVALID_VALUE
}

TEST_F(CapacityTest, IpcHandleOfADeadExporterIsInvalid) {
  Child exporter = start("export", std::to_string(64 * kMi));
  std::string handle = line(exporter, "handle=").substr(7);
  exporter.kill(SIGKILL);
  ASSERT_EQ(exporter.wait(10s), -SIGKILL);
  Child importer = start("open", handle);
  EXPECT_EQ(line(importer, "open rc=").rfind("open rc=1 ", 0), 0u);  // CUDA_ERROR_INVALID_VALUE
}

}  // namespace
