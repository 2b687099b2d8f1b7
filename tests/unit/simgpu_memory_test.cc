// simgpu device/host memory, copies, pointer attributes and arrays, in
// process on an isolated node of 1 GiB with a 64 MiB context overhead.
#include <cuda.h>
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "test_support.h"

// Per-thread-default-stream exports (cuda.h declares them only when compiling
// with CUDA_API_PER_THREAD_DEFAULT_STREAM, which would rename everything).
extern "C" {
CUresult CUDAAPI cuMemsetD8_v2_ptds(CUdeviceptr, unsigned char, size_t);
CUresult CUDAAPI cuMemsetD8Async_ptsz(CUdeviceptr, unsigned char, size_t, CUstream);
CUresult CUDAAPI cuMemcpyDtoH_v2_ptds(void*, CUdeviceptr, size_t);
}

namespace {

constexpr size_t kMi = 1ull << 20;
constexpr size_t kTotal = 1024 * kMi;
constexpr size_t kOverhead = 64 * kMi;

class MemoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static vgpu::test::SimNode node({{"SIMGPU_MEMORY", "1Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "64Mi"}});
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  }
  void SetUp() override { ASSERT_EQ(cuCtxCreate(&ctx_, nullptr, 0, 0), CUDA_SUCCESS); }
  void TearDown() override { EXPECT_EQ(cuCtxDestroy(ctx_), CUDA_SUCCESS); }

  static size_t free_bytes() {
    size_t f = 0, t = 0;
    EXPECT_EQ(cuMemGetInfo(&f, &t), CUDA_SUCCESS);
    return f;
  }

  CUcontext ctx_ = nullptr;
};

TEST(MemoryBeforeInit, EntryPointsReturnNotInitialized) {
  // A forked child starts uninitialised, like a process that never called cuInit.
  auto probe = [] {
    CUdeviceptr p;
    size_t f, t;
    bool ok = cuMemAlloc(&p, 16) == CUDA_ERROR_NOT_INITIALIZED &&
              cuMemGetInfo(&f, &t) == CUDA_ERROR_NOT_INITIALIZED &&
              cuMemFree(0x1000) == CUDA_ERROR_NOT_INITIALIZED;
    _exit(ok ? 0 : 1);
  };
  EXPECT_EXIT(probe(), ::testing::ExitedWithCode(0), "");
}

TEST_F(MemoryTest, WithoutCurrentContextIsInvalidContext) {
  CUresult alloc = CUDA_SUCCESS, info = CUDA_SUCCESS;
  std::thread([&] {
    CUdeviceptr p;
    size_t f, t;
    alloc = cuMemAlloc(&p, 16);
    info = cuMemGetInfo(&f, &t);
  }).join();
  EXPECT_EQ(alloc, CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(info, CUDA_ERROR_INVALID_CONTEXT);
}

TEST_F(MemoryTest, ExactCapacityBoundary) {
  size_t f = 0, t = 0;
  ASSERT_EQ(cuMemGetInfo(&f, &t), CUDA_SUCCESS);
  EXPECT_EQ(t, kTotal);
  ASSERT_EQ(f, kTotal - kOverhead);
  CUdeviceptr p = 0, q = 0;
  EXPECT_EQ(cuMemAlloc(&p, f + 1), CUDA_ERROR_OUT_OF_MEMORY);
  ASSERT_EQ(cuMemAlloc(&p, f), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), 0u);
  EXPECT_EQ(cuMemAlloc(&q, 1), CUDA_ERROR_OUT_OF_MEMORY);
  ASSERT_EQ(cuMemFree(p), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), f);
  ASSERT_EQ(cuMemAlloc(&q, 1), CUDA_SUCCESS);  // room again
  EXPECT_EQ(free_bytes(), f - 1);
  EXPECT_EQ(cuMemFree(q), CUDA_SUCCESS);
}

TEST_F(MemoryTest, InvalidArgumentsAndDoubleFree) {
  CUdeviceptr p = 0;
  EXPECT_EQ(cuMemAlloc(&p, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemAlloc(nullptr, 16), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuMemAlloc(&p, 4096), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(p + 256), CUDA_ERROR_INVALID_VALUE);  // not a base
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(p), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemFree(0xdead0000), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(free_bytes(), kTotal - kOverhead);
}

TEST_F(MemoryTest, PointersAreAlignedAndDisjoint) {
  std::vector<CUdeviceptr> ptrs;
  for (size_t size : {1, 3, 255, 257, 4097, 100000}) {
    CUdeviceptr p = 0;
    ASSERT_EQ(cuMemAlloc(&p, size), CUDA_SUCCESS);
    EXPECT_EQ(p % 256, 0u);
    for (CUdeviceptr q : ptrs) EXPECT_NE(p, q);
    ptrs.push_back(p);
  }
  for (CUdeviceptr p : ptrs) EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
}

TEST_F(MemoryTest, CopiesAndMemsetMoveRealBytes) {
  constexpr size_t n = 1 << 16;
  std::vector<unsigned char> in(n), out(n);
  for (size_t i = 0; i < n; ++i) in[i] = static_cast<unsigned char>(i * 7 + 1);
  CUdeviceptr a = 0, b = 0;
  ASSERT_EQ(cuMemAlloc(&a, n), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAlloc(&b, n), CUDA_SUCCESS);
  ASSERT_EQ(cuMemcpyHtoD(a, in.data(), n), CUDA_SUCCESS);
  ASSERT_EQ(cuMemcpyDtoD(b, a, n), CUDA_SUCCESS);
  ASSERT_EQ(cuMemcpyDtoH(out.data(), b, n), CUDA_SUCCESS);
  EXPECT_EQ(in, out);

  ASSERT_EQ(cuMemsetD32(a, 0xA1B2C3D4u, n / 4), CUDA_SUCCESS);
  uint32_t w = 0;
  ASSERT_EQ(cuMemcpyDtoH(&w, a + 40, 4), CUDA_SUCCESS);
  EXPECT_EQ(w, 0xA1B2C3D4u);
  ASSERT_EQ(cuMemsetD16(a, 0x1234, 8), CUDA_SUCCESS);
  uint16_t h = 0;
  ASSERT_EQ(cuMemcpyDtoH(&h, a + 14, 2), CUDA_SUCCESS);
  EXPECT_EQ(h, 0x1234);
  EXPECT_EQ(cuMemsetD16(a + 1, 0, 1), CUDA_ERROR_INVALID_VALUE);  // misaligned
  EXPECT_EQ(cuMemsetD32(a + 2, 0, 1), CUDA_ERROR_INVALID_VALUE);

  // Async forms on the NULL stream, then a unified cuMemcpy back.
  ASSERT_EQ(cuMemsetD8Async(b, 0x5a, n, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuMemcpyHtoDAsync(b, in.data(), 16, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  std::fill(out.begin(), out.end(), 0);
  ASSERT_EQ(cuMemcpy(reinterpret_cast<CUdeviceptr>(out.data()), b, n), CUDA_SUCCESS);
  EXPECT_EQ(std::memcmp(out.data(), in.data(), 16), 0);
  EXPECT_EQ(out[16], 0x5a);
  EXPECT_EQ(out[n - 1], 0x5a);
  EXPECT_EQ(cuMemFree(a), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(b), CUDA_SUCCESS);
}

TEST_F(MemoryTest, CopiesOutsideAnAllocationAreRejected) {
  CUdeviceptr a = 0;
  ASSERT_EQ(cuMemAlloc(&a, 1000), CUDA_SUCCESS);
  char buf[2000] = {};
  EXPECT_EQ(cuMemcpyHtoD(a, buf, 1001), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemcpyDtoH(buf, a + 999, 2), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemsetD8(a, 0, 1001), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemcpyHtoD(a + 999, buf, 1), CUDA_SUCCESS);
  ASSERT_EQ(cuMemFree(a), CUDA_SUCCESS);
  EXPECT_EQ(cuMemcpyHtoD(a, buf, 1), CUDA_ERROR_INVALID_VALUE);  // freed
}

TEST_F(MemoryTest, PerThreadDefaultStreamVariants) {
  CUdeviceptr a = 0;
  ASSERT_EQ(cuMemAlloc(&a, 64), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD8_v2_ptds(a, 7, 64), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD8Async_ptsz(a, 9, 32, nullptr), CUDA_SUCCESS);
  unsigned char out[64];
  ASSERT_EQ(cuMemcpyDtoH_v2_ptds(out, a, 64), CUDA_SUCCESS);
  EXPECT_EQ(out[0], 9);
  EXPECT_EQ(out[63], 7);
  EXPECT_EQ(cuMemFree(a), CUDA_SUCCESS);
}

TEST_F(MemoryTest, Memcpy2DCopiesRows) {
  CUdeviceptr d = 0;
  size_t pitch = 0;
  ASSERT_EQ(cuMemAllocPitch(&d, &pitch, 10, 4, 4), CUDA_SUCCESS);
  char src[40], dst[40] = {};
  for (int i = 0; i < 40; ++i) src[i] = static_cast<char>(i);
  CUDA_MEMCPY2D c{};
  c.srcMemoryType = CU_MEMORYTYPE_HOST;
  c.srcHost = src;
  c.srcPitch = 10;
  c.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  c.dstDevice = d;
  c.dstPitch = pitch;
  c.WidthInBytes = 10;
  c.Height = 4;
  ASSERT_EQ(cuMemcpy2D(&c), CUDA_SUCCESS);
  CUDA_MEMCPY2D back = c;
  std::swap(back.srcMemoryType, back.dstMemoryType);
  back.srcDevice = d;
  back.srcPitch = pitch;
  back.dstHost = dst;
  back.dstPitch = 10;
  ASSERT_EQ(cuMemcpy2D(&back), CUDA_SUCCESS);
  EXPECT_EQ(std::memcmp(src, dst, 40), 0);
  c.Height = 5;  // one row past the allocation
  EXPECT_EQ(cuMemcpy2D(&c), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemFree(d), CUDA_SUCCESS);
}

TEST_F(MemoryTest, PitchIsRoundedAndChargedPitchTimesHeight) {
  CUdeviceptr p = 0;
  size_t pitch = 0;
  size_t before = free_bytes();
  EXPECT_EQ(cuMemAllocPitch(&p, &pitch, 1000, 10, 3), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemAllocPitch(&p, &pitch, 0, 10, 4), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuMemAllocPitch(&p, &pitch, 1000, 10, 16), CUDA_SUCCESS);
  EXPECT_EQ(pitch, 1024u);
  EXPECT_EQ(before - free_bytes(), 1024u * 10);
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), before);
}

TEST_F(MemoryTest, ManagedMemoryIsChargedAndHostAccessible) {
  CUdeviceptr p = 0;
  size_t before = free_bytes();
  EXPECT_EQ(cuMemAllocManaged(&p, 4096, 7), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuMemAllocManaged(&p, 4096, CU_MEM_ATTACH_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(before - free_bytes(), 4096u);
  reinterpret_cast<int*>(p)[3] = 42;  // managed memory is host-accessible
  int v = 0;
  ASSERT_EQ(cuMemcpyDtoH(&v, p + 12, 4), CUDA_SUCCESS);
  EXPECT_EQ(v, 42);
  unsigned managed = 0;
  ASSERT_EQ(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, p), CUDA_SUCCESS);
  EXPECT_EQ(managed, 1u);
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), before);
}

TEST_F(MemoryTest, HostMemoryIsNotChargedToTheDevice) {
  size_t before = free_bytes();
  void* h = nullptr;
  void* h2 = nullptr;
  ASSERT_EQ(cuMemAllocHost(&h, 1 << 20), CUDA_SUCCESS);
  ASSERT_EQ(cuMemHostAlloc(&h2, 4096, CU_MEMHOSTALLOC_DEVICEMAP), CUDA_SUCCESS);
  EXPECT_EQ(cuMemHostAlloc(&h2, 4096, 0x80), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(free_bytes(), before);
  CUdeviceptr d = 0;
  ASSERT_EQ(cuMemHostGetDevicePointer(&d, h2, 0), CUDA_SUCCESS);
  EXPECT_EQ(d, reinterpret_cast<CUdeviceptr>(h2));
  unsigned type = 0;
  ASSERT_EQ(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, reinterpret_cast<CUdeviceptr>(h)),
            CUDA_SUCCESS);
  EXPECT_EQ(type, static_cast<unsigned>(CU_MEMORYTYPE_HOST));
  EXPECT_EQ(cuMemFreeHost(h), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFreeHost(h), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemFreeHost(h2), CUDA_SUCCESS);

  std::vector<char> buf(8192);
  ASSERT_EQ(cuMemHostRegister(buf.data(), buf.size(), 0), CUDA_SUCCESS);
  EXPECT_EQ(cuMemHostRegister(buf.data() + 100, 10, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
  EXPECT_EQ(free_bytes(), before);
  EXPECT_EQ(cuMemHostUnregister(buf.data()), CUDA_SUCCESS);
  EXPECT_EQ(cuMemHostUnregister(buf.data()), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
}

TEST_F(MemoryTest, PointerAttributesAndAddressRange) {
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAlloc(&p, 5000), CUDA_SUCCESS);
  CUcontext c = nullptr;
  ASSERT_EQ(cuPointerGetAttribute(&c, CU_POINTER_ATTRIBUTE_CONTEXT, p + 10), CUDA_SUCCESS);
  EXPECT_EQ(c, ctx_);
  unsigned type = 0;
  ASSERT_EQ(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p), CUDA_SUCCESS);
  EXPECT_EQ(type, static_cast<unsigned>(CU_MEMORYTYPE_DEVICE));
  int ordinal = -1;
  ASSERT_EQ(cuPointerGetAttribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p), CUDA_SUCCESS);
  EXPECT_EQ(ordinal, 0);
  CUdeviceptr start = 0, dp = 0;
  size_t size = 0;
  ASSERT_EQ(cuPointerGetAttribute(&start, CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, p + 4999), CUDA_SUCCESS);
  ASSERT_EQ(cuPointerGetAttribute(&size, CU_POINTER_ATTRIBUTE_RANGE_SIZE, p + 4999), CUDA_SUCCESS);
  ASSERT_EQ(cuPointerGetAttribute(&dp, CU_POINTER_ATTRIBUTE_DEVICE_POINTER, p + 7), CUDA_SUCCESS);
  EXPECT_EQ(start, p);
  EXPECT_EQ(size, 5000u);
  EXPECT_EQ(dp, p + 7);
  unsigned managed = 1;
  ASSERT_EQ(cuPointerGetAttribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, p), CUDA_SUCCESS);
  EXPECT_EQ(managed, 0u);
  CUdeviceptr base = 0;
  size_t len = 0;
  ASSERT_EQ(cuMemGetAddressRange(&base, &len, p + 123), CUDA_SUCCESS);
  EXPECT_EQ(base, p);
  EXPECT_EQ(len, 5000u);
  EXPECT_EQ(cuMemGetAddressRange(&base, &len, p + 5000 + (1 << 30)), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(cuPointerGetAttribute(&c, CU_POINTER_ATTRIBUTE_CONTEXT, 0x10), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
}

TEST_F(MemoryTest, DestroyingAContextFreesItsMemory) {
  size_t before = free_bytes();
  CUcontext other = nullptr;
  ASSERT_EQ(cuCtxCreate(&other, nullptr, 0, 0), CUDA_SUCCESS);
  CUdeviceptr p = 0, q = 0;
  size_t pitch = 0;
  ASSERT_EQ(cuMemAlloc(&p, 100 * kMi), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAllocPitch(&q, &pitch, 512, 512, 4), CUDA_SUCCESS);
  EXPECT_EQ(before - free_bytes(), kOverhead + 100 * kMi + 512 * 512);
  ASSERT_EQ(cuCtxDestroy(other), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), before);
  EXPECT_EQ(cuMemFree(p), CUDA_ERROR_INVALID_VALUE);  // gone with its context
}

TEST_F(MemoryTest, ArraysChargeAlignedRowsTimesHeight) {
  size_t before = free_bytes();
  CUDA_ARRAY_DESCRIPTOR d{};
  d.Width = 100;
  d.Height = 10;
  d.Format = CU_AD_FORMAT_UNSIGNED_INT8;
  d.NumChannels = 4;
  CUarray a = nullptr;
  ASSERT_EQ(cuArrayCreate(&a, &d), CUDA_SUCCESS);
  EXPECT_EQ(before - free_bytes(), 512u * 10);  // 400-byte rows padded to 512
  CUDA_ARRAY_DESCRIPTOR got{};
  ASSERT_EQ(cuArrayGetDescriptor(&got, a), CUDA_SUCCESS);
  EXPECT_EQ(got.Width, 100u);
  EXPECT_EQ(got.NumChannels, 4u);
  d.NumChannels = 3;
  CUarray bad = nullptr;
  EXPECT_EQ(cuArrayCreate(&bad, &d), CUDA_ERROR_INVALID_VALUE);
  d.NumChannels = 1;
  d.Format = static_cast<CUarray_format>(0x7777);
  EXPECT_EQ(cuArrayCreate(&bad, &d), CUDA_ERROR_INVALID_VALUE);

  CUDA_ARRAY3D_DESCRIPTOR d3{};
  d3.Width = 256;
  d3.Height = 4;
  d3.Depth = 3;
  d3.Format = CU_AD_FORMAT_FLOAT;
  d3.NumChannels = 2;
  CUarray a3 = nullptr;
  ASSERT_EQ(cuArray3DCreate(&a3, &d3), CUDA_SUCCESS);
  EXPECT_EQ(before - free_bytes(), 512u * 10 + 2048u * 4 * 3);
  CUDA_ARRAY3D_DESCRIPTOR got3{};
  ASSERT_EQ(cuArray3DGetDescriptor(&got3, a3), CUDA_SUCCESS);
  EXPECT_EQ(got3.Depth, 3u);
  EXPECT_EQ(cuArrayDestroy(a), CUDA_SUCCESS);
  EXPECT_EQ(cuArrayDestroy(a), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(cuArrayDestroy(a3), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), before);
}

TEST_F(MemoryTest, MipmappedArrayChargesTheSumOfItsLevels) {
  size_t before = free_bytes();
  CUDA_ARRAY3D_DESCRIPTOR d{};
  d.Width = 64;
  d.Height = 64;
  d.Format = CU_AD_FORMAT_FLOAT;
  d.NumChannels = 1;
  CUmipmappedArray m = nullptr;
  EXPECT_EQ(cuMipmappedArrayCreate(&m, &d, 8), CUDA_ERROR_INVALID_VALUE);  // 64 has 7 levels
  ASSERT_EQ(cuMipmappedArrayCreate(&m, &d, 3), CUDA_SUCCESS);
  // Rows of 256, 128 and 64 bytes all pad to 512: 512 * (64 + 32 + 16).
  EXPECT_EQ(before - free_bytes(), 512u * 112);
  CUarray level = nullptr;
  ASSERT_EQ(cuMipmappedArrayGetLevel(&level, m, 2), CUDA_SUCCESS);
  CUDA_ARRAY3D_DESCRIPTOR got{};
  ASSERT_EQ(cuArray3DGetDescriptor(&got, level), CUDA_SUCCESS);
  EXPECT_EQ(got.Width, 16u);
  EXPECT_EQ(got.Height, 16u);
  EXPECT_EQ(cuMipmappedArrayGetLevel(&level, m, 3), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuArrayDestroy(level), CUDA_ERROR_INVALID_HANDLE);  // owned by the mipmap
  EXPECT_EQ(cuMipmappedArrayDestroy(m), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes(), before);
}

}  // namespace
