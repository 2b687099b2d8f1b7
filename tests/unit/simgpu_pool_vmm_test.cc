// simgpu stream-ordered pools and VMM, in process on an isolated node of
// 1 GiB with a 64 MiB context overhead.
#include <cuda.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "test_support.h"

namespace {

constexpr size_t kMi = 1ull << 20;
constexpr size_t kTotal = 1024 * kMi;
constexpr size_t kOverhead = 64 * kMi;

class PoolVmmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static vgpu::test::SimNode node({{"SIMGPU_MEMORY", "1Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "64Mi"}});
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  }
  void SetUp() override {
    ASSERT_EQ(cuCtxCreate(&ctx_, nullptr, 0, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuDeviceGetDefaultMemPool(&pool_, 0), CUDA_SUCCESS);
  }
  void TearDown() override {
    EXPECT_EQ(cuCtxDestroy(ctx_), CUDA_SUCCESS);
  }

  static size_t free_bytes() {
    size_t f = 0, t = 0;
    EXPECT_EQ(cuMemGetInfo(&f, &t), CUDA_SUCCESS);
    return f;
  }
  static uint64_t attr(CUmemoryPool p, CUmemPool_attribute a) {
    cuuint64_t v = ~0ull;
    EXPECT_EQ(cuMemPoolGetAttribute(p, a, &v), CUDA_SUCCESS);
    return v;
  }
  static CUmemAllocationProp device_prop() {
    CUmemAllocationProp p{};
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = 0;
    return p;
  }

  CUcontext ctx_ = nullptr;
  CUmemoryPool pool_ = nullptr;
};

// --- pools ---------------------------------------------------------------------

TEST_F(PoolVmmTest, AllocAsyncReservesAndFreeReleasesAtSynchronize) {
  size_t before = free_bytes();
  CUstream s = nullptr;
  ASSERT_EQ(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAllocAsync(&p, 3 * kMi, s), CUDA_SUCCESS);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 4 * kMi);  // 2 MiB blocks
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 4 * kMi);
  EXPECT_EQ(before - free_bytes(), 4 * kMi);
  ASSERT_EQ(cuMemsetD8Async(p, 3, 3 * kMi, s), CUDA_SUCCESS);
  ASSERT_EQ(cuMemFreeAsync(p, s), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFreeAsync(p, s), CUDA_ERROR_INVALID_VALUE);  // double free
  ASSERT_EQ(cuStreamSynchronize(s), CUDA_SUCCESS);
  // Default release threshold is 0: everything goes back at the sync point.
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0u);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0u);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), 4 * kMi);
  EXPECT_EQ(free_bytes(), before);
  EXPECT_EQ(cuStreamDestroy(s), CUDA_SUCCESS);
}

TEST_F(PoolVmmTest, ReleaseThresholdKeepsMemoryUntilTrim) {
  size_t before = free_bytes();
  cuuint64_t keep = UINT64_MAX;
  ASSERT_EQ(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep), CUDA_SUCCESS);
  CUdeviceptr p = 0, q = 0;
  ASSERT_EQ(cuMemAllocAsync(&p, 8 * kMi, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuMemFreeAsync(p, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0u);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 8 * kMi);
  EXPECT_EQ(before - free_bytes(), 8 * kMi);  // still charged to the node
  ASSERT_EQ(cuMemAllocAsync(&q, 6 * kMi, nullptr), CUDA_SUCCESS);  // reuses the block
  EXPECT_EQ(q, p);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 8 * kMi);
  ASSERT_EQ(cuMemFreeAsync(q, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  ASSERT_EQ(cuMemPoolTrimTo(pool_, 0), CUDA_SUCCESS);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), 0u);
  EXPECT_EQ(free_bytes(), before);
  cuuint64_t zero = 0;
  ASSERT_EQ(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &zero), CUDA_SUCCESS);
}

TEST_F(PoolVmmTest, HighWaterMarksResetOnlyToZero) {
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAllocAsync(&p, 2 * kMi, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuMemFreeAsync(p, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_USED_MEM_HIGH) >= 2 * kMi, true);
  cuuint64_t v = 5;
  EXPECT_EQ(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &v), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v), CUDA_ERROR_INVALID_VALUE);
  v = 0;
  ASSERT_EQ(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &v), CUDA_SUCCESS);
  ASSERT_EQ(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH, &v), CUDA_SUCCESS);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_USED_MEM_HIGH), 0u);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH), 0u);
  int follow = 0;
  ASSERT_EQ(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES, &follow), CUDA_SUCCESS);
  follow = 7;
  ASSERT_EQ(cuMemPoolGetAttribute(pool_, CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES, &follow), CUDA_SUCCESS);
  EXPECT_EQ(follow, 0);
  follow = 1;
  ASSERT_EQ(cuMemPoolSetAttribute(pool_, CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES, &follow), CUDA_SUCCESS);
}

TEST_F(PoolVmmTest, ExplicitPoolsAndErrors) {
  CUmemPoolProps props{};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.handleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  props.location = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
  CUmemoryPool mine = nullptr;
  ASSERT_EQ(cuMemPoolCreate(&mine, &props), CUDA_SUCCESS);
  CUmemPoolProps bad = props;
  bad.location.id = 5;
  CUmemoryPool other = nullptr;
  EXPECT_EQ(cuMemPoolCreate(&other, &bad), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemPoolDestroy(pool_), CUDA_ERROR_INVALID_VALUE);  // default pool
  ASSERT_EQ(cuDeviceSetMemPool(0, mine), CUDA_SUCCESS);
  CUmemoryPool current = nullptr;
  ASSERT_EQ(cuDeviceGetMemPool(&current, 0), CUDA_SUCCESS);
  EXPECT_EQ(current, mine);
  CUdeviceptr p = 0, q = 0;
  ASSERT_EQ(cuMemAllocAsync(&p, kMi, nullptr), CUDA_SUCCESS);  // from the current pool
  ASSERT_EQ(cuMemAllocFromPoolAsync(&q, kMi, mine, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(attr(mine, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 4 * kMi);
  EXPECT_EQ(attr(pool_, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0u);
  EXPECT_EQ(cuMemAllocAsync(&p, 0, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemAllocAsync(&p, 2 * kTotal, nullptr), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(cuMemFree(q), CUDA_SUCCESS);  // cuMemFree accepts pool memory
  ASSERT_EQ(cuMemFreeAsync(p, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(attr(mine, CU_MEMPOOL_ATTR_USED_MEM_CURRENT), 0u);
  ASSERT_EQ(cuMemPoolDestroy(mine), CUDA_SUCCESS);
  ASSERT_EQ(cuDeviceGetMemPool(&current, 0), CUDA_SUCCESS);
  EXPECT_EQ(current, pool_);  // back to the default pool
  EXPECT_EQ(cuMemAllocFromPoolAsync(&q, kMi, mine, nullptr), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(free_bytes(), kTotal - kOverhead);
}

TEST_F(PoolVmmTest, PoolAllocationUpToCapacityThenOutOfMemory) {
  size_t avail = free_bytes();  // a multiple of 2 MiB here
  CUdeviceptr p = 0, q = 0;
  ASSERT_EQ(cuMemAllocAsync(&p, avail, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), 0u);
  EXPECT_EQ(cuMemAllocAsync(&q, 1, nullptr), CUDA_ERROR_OUT_OF_MEMORY);
  ASSERT_EQ(cuMemFreeAsync(p, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), avail);
}

// --- VMM -------------------------------------------------------------------------

TEST_F(PoolVmmTest, GranularityAndCreateValidation) {
  CUmemAllocationProp prop = device_prop();
  size_t g = 0;
  ASSERT_EQ(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM), CUDA_SUCCESS);
  EXPECT_EQ(g, 2 * kMi);
  ASSERT_EQ(cuMemGetAllocationGranularity(&g, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED), CUDA_SUCCESS);
  EXPECT_EQ(g, 2 * kMi);
  CUmemGenericAllocationHandle h = 0;
  EXPECT_EQ(cuMemCreate(&h, 3 * kMi, &prop, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemCreate(&h, 0, &prop, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemCreate(&h, kTotal, &prop, 0), CUDA_ERROR_OUT_OF_MEMORY);
  size_t before = free_bytes();
  ASSERT_EQ(cuMemCreate(&h, 4 * kMi, &prop, 0), CUDA_SUCCESS);
  EXPECT_EQ(before - free_bytes(), 4 * kMi);
  CUmemAllocationProp got{};
  ASSERT_EQ(cuMemGetAllocationPropertiesFromHandle(&got, h), CUDA_SUCCESS);
  EXPECT_EQ(got.location.id, 0);
  EXPECT_EQ(got.type, CU_MEM_ALLOCATION_TYPE_PINNED);
  ASSERT_EQ(cuMemRelease(h), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), before);
}

TEST_F(PoolVmmTest, MapAccessRoundTripAndReleaseAfterUnmap) {
  CUmemAllocationProp prop = device_prop();
  size_t before = free_bytes();
  CUmemGenericAllocationHandle h = 0;
  ASSERT_EQ(cuMemCreate(&h, 4 * kMi, &prop, 0), CUDA_SUCCESS);
  CUdeviceptr va = 0;
  ASSERT_EQ(cuMemAddressReserve(&va, 8 * kMi, 0, 0, 0), CUDA_SUCCESS);
  EXPECT_EQ(va % (2 * kMi), 0u);
  EXPECT_EQ(cuMemMap(va + kMi, 4 * kMi, 0, h, 0), CUDA_ERROR_INVALID_VALUE);  // misaligned
  EXPECT_EQ(cuMemMap(va + 6 * kMi, 4 * kMi, 0, h, 0), CUDA_ERROR_INVALID_VALUE);  // past the reservation
  ASSERT_EQ(cuMemMap(va, 4 * kMi, 0, h, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemMap(va, 2 * kMi, 0, h, 0), CUDA_ERROR_INVALID_VALUE);  // already mapped

  char in[64] = "vmm bytes", out[64] = {};
  EXPECT_EQ(cuMemcpyHtoD(va, in, sizeof in), CUDA_ERROR_INVALID_VALUE);  // no access yet
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  ASSERT_EQ(cuMemSetAccess(va, 4 * kMi, &access, 1), CUDA_SUCCESS);
  unsigned long long flags = 0;
  ASSERT_EQ(cuMemGetAccess(&flags, &prop.location, va + 100), CUDA_SUCCESS);
  EXPECT_EQ(flags, static_cast<unsigned long long>(CU_MEM_ACCESS_FLAGS_PROT_READWRITE));
  ASSERT_EQ(cuMemcpyHtoD(va + 3 * kMi, in, sizeof in), CUDA_SUCCESS);
  ASSERT_EQ(cuMemcpyDtoH(out, va + 3 * kMi, sizeof out), CUDA_SUCCESS);
  EXPECT_STREQ(out, "vmm bytes");

  CUmemGenericAllocationHandle again = 0;
  ASSERT_EQ(cuMemRetainAllocationHandle(&again, reinterpret_cast<void*>(va + 5)), CUDA_SUCCESS);
  EXPECT_EQ(again, h);
  ASSERT_EQ(cuMemRelease(again), CUDA_SUCCESS);
  // Released while mapped: the memory stays charged until the unmap.
  ASSERT_EQ(cuMemRelease(h), CUDA_SUCCESS);
  EXPECT_EQ(before - free_bytes(), 4 * kMi);
  EXPECT_EQ(cuMemUnmap(va, 2 * kMi), CUDA_ERROR_INVALID_VALUE);  // part of a mapping
  ASSERT_EQ(cuMemUnmap(va, 4 * kMi), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), before);
  EXPECT_EQ(cuMemcpyHtoD(va, in, 1), CUDA_ERROR_INVALID_VALUE);  // unmapped
  ASSERT_EQ(cuMemAddressFree(va, 8 * kMi), CUDA_SUCCESS);
}

TEST_F(PoolVmmTest, UnmapBeforeReleaseKeepsChargeUntilRelease) {
  CUmemAllocationProp prop = device_prop();
  size_t before = free_bytes();
  CUmemGenericAllocationHandle h = 0;
  ASSERT_EQ(cuMemCreate(&h, 2 * kMi, &prop, 0), CUDA_SUCCESS);
  CUdeviceptr va = 0;
  ASSERT_EQ(cuMemAddressReserve(&va, 2 * kMi, 0, 0, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuMemMap(va, 2 * kMi, 0, h, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemAddressFree(va, 2 * kMi), CUDA_ERROR_INVALID_VALUE);  // still mapped
  ASSERT_EQ(cuMemUnmap(va, 2 * kMi), CUDA_SUCCESS);
  EXPECT_EQ(before - free_bytes(), 2 * kMi);  // the handle still holds it
  ASSERT_EQ(cuMemRelease(h), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), before);
  EXPECT_EQ(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuMemAddressFree(va, 2 * kMi), CUDA_SUCCESS);
  EXPECT_EQ(cuMemAddressFree(va, 2 * kMi), CUDA_ERROR_INVALID_VALUE);
}

}  // namespace
