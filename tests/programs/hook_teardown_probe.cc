// Context teardown returns the quota: fills a 1 GiB quota from context A
// (linear memory, an array, a stream-ordered allocation and, when the test
// sets one, the context overhead), tears A down, and fills it again from a
// new context B. Prints "ok" or the first step that went wrong.
//
// Usage: hook_teardown_probe MODE OVERHEAD_MIB
//   MODE destroy  A is a created context, torn down with cuCtxDestroy_v2
//        reset    A is the primary context, torn down with cuDevicePrimaryCtxReset_v2
//        release  A is the primary context retained twice: the first release
//                 must keep everything charged, the second (last) returns it
//   OVERHEAD_MIB  the VGPU_CONTEXT_OVERHEAD the test set (0 or below 256)
// The test sets the quota to exactly 1 GiB: in each context 768 MiB linear
// plus (256 - overhead)/2 MiB each of array and pool memory plus the
// overhead, so any charge teardown failed to return makes B's fill fail.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

constexpr size_t kMi = 1ull << 20;

int fail(const char* step, CUresult r) {
  std::printf("FAIL %s: %d\n", step, static_cast<int>(r));
  return 1;
}

#define CHECK(step, call, want)                    \
  do {                                             \
    CUresult r_ = (call);                          \
    if (r_ != (want)) return fail((step), r_);     \
  } while (0)

// Fills the rest of the quota from the current context; then 1 MiB more is refused.
int fill(const char* who, size_t piece_mib) {
  std::string w = who;
  CUdeviceptr linear = 0, pooled = 0;
  CHECK((w + " cuMemAlloc 768 MiB").c_str(), cuMemAlloc_v2(&linear, 768 * kMi), CUDA_SUCCESS);
  CUDA_ARRAY_DESCRIPTOR d{};
  d.Format = CU_AD_FORMAT_FLOAT;
  d.NumChannels = 1;
  d.Width = 8192;
  d.Height = piece_mib * kMi / 4 / 8192;
  CUarray array = nullptr;
  CHECK((w + " cuArrayCreate").c_str(), cuArrayCreate_v2(&array, &d), CUDA_SUCCESS);
  CUstream s = nullptr;
  CHECK((w + " cuStreamCreate").c_str(), cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  CHECK((w + " cuMemAllocAsync").c_str(), cuMemAllocAsync(&pooled, piece_mib * kMi, s), CUDA_SUCCESS);
  CHECK((w + " cuStreamSynchronize").c_str(), cuStreamSynchronize(s), CUDA_SUCCESS);
  CUdeviceptr more = 0;
  CHECK((w + " one more MiB (the quota is full)").c_str(), cuMemAlloc_v2(&more, kMi), CUDA_ERROR_OUT_OF_MEMORY);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s destroy|reset|release OVERHEAD_MIB\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  size_t overhead = std::strtoull(argv[2], nullptr, 10);
  size_t piece = (256 - overhead) / 2;
  CUdevice dev = 0;
  CHECK("cuInit", cuInit(0), CUDA_SUCCESS);
  CHECK("cuDeviceGet", cuDeviceGet(&dev, 0), CUDA_SUCCESS);

  CUcontext a = nullptr;
  if (mode == "destroy") {
    CHECK("cuCtxCreate A", cuCtxCreate_v2(&a, 0, dev), CUDA_SUCCESS);
  } else {
    CHECK("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&a, dev), CUDA_SUCCESS);
    if (mode == "release") {
      CUcontext again = nullptr;
      CHECK("cuDevicePrimaryCtxRetain again", cuDevicePrimaryCtxRetain(&again, dev), CUDA_SUCCESS);
    }
    CHECK("cuCtxSetCurrent A", cuCtxSetCurrent(a), CUDA_SUCCESS);
  }
  if (int rc = fill("A", piece)) return rc;

  if (mode == "destroy") {
    CHECK("cuCtxDestroy A", cuCtxDestroy_v2(a), CUDA_SUCCESS);
  } else if (mode == "reset") {
    CHECK("cuDevicePrimaryCtxReset", cuDevicePrimaryCtxReset_v2(dev), CUDA_SUCCESS);
  } else {
    CHECK("cuDevicePrimaryCtxRelease (not the last)", cuDevicePrimaryCtxRelease_v2(dev), CUDA_SUCCESS);
    // A is alive: what it holds is still charged.
    CUdeviceptr p = 0;
    CHECK("cuMemAlloc 1 MiB after a release that is not the last", cuMemAlloc_v2(&p, kMi),
          CUDA_ERROR_OUT_OF_MEMORY);
    CHECK("cuDevicePrimaryCtxRelease (the last)", cuDevicePrimaryCtxRelease_v2(dev), CUDA_SUCCESS);
  }

  CUcontext b = nullptr;
  CHECK("cuCtxCreate B", cuCtxCreate_v2(&b, 0, dev), CUDA_SUCCESS);
  if (int rc = fill("B", piece)) return rc;
  CHECK("cuCtxDestroy B", cuCtxDestroy_v2(b), CUDA_SUCCESS);
  std::printf("ok\n");
  return 0;
}
