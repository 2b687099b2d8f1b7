// Stream-ordered pools under the hook with a 1 GiB quota (hook_pool_nvml_test):
//   hook_pool_probe MODE GO_DIR
// After each step the probe prints "STEP <name>" and waits (up to 30 s) for
// the file GO_DIR/<name>, so the test can read NVML's view of this process
// in every state it passes through. Prints "ok" at the end, or "FAIL ..."
// and exits 1.
// MODE kept:   default pool with release threshold UINT64_MAX; 768 MiB
//              cuMemAllocAsync, free, synchronize (the pool keeps it); then
//              a 768 MiB cuMemAlloc succeeds because the hook trims the pool.
// MODE inuse:  the same without the free: the cuMemAlloc is refused and the
//              pool keeps its memory; after free + synchronize it succeeds.
// MODE follow: a created pool (release threshold 0); cuMemGetInfo's used
//              (quota - free) equals RESERVED_MEM_CURRENT after the
//              allocation, after the free and after the synchronization.
#include <cuda.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

namespace {

constexpr size_t kMi = 1ull << 20;
constexpr size_t kQuota = 1024 * kMi;
std::string g_dir;

void step(const char* name) {
  std::printf("STEP %s\n", name);
  std::fflush(stdout);
  std::string go = g_dir + "/" + name;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (access(go.c_str(), F_OK) != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

int fail(const char* what, long long got) {
  std::printf("FAIL %s (got %lld)\n", what, got);
  return 1;
}

uint64_t reserved(CUmemoryPool pool) {
  cuuint64_t v = ~0ull;
  cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v);
  return v;
}

uint64_t quota_used() {
  size_t free = 0, total = 0;
  if (cuMemGetInfo(&free, &total) != CUDA_SUCCESS) return ~0ull;
  return kQuota - free;
}

int kept_or_inuse(CUstream s, bool do_free) {
  CUmemoryPool pool = nullptr;
  if (cuDeviceGetDefaultMemPool(&pool, 0) != CUDA_SUCCESS) return fail("default pool", 0);
  cuuint64_t keep_all = UINT64_MAX;
  if (cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep_all) != CUDA_SUCCESS)
    return fail("set threshold", 0);
  CUdeviceptr a = 0, b = 0;
  if (CUresult r = cuMemAllocAsync(&a, 768 * kMi, s)) return fail("alloc async 768 MiB", r);
  step("alloc");
  if (do_free && cuMemFreeAsync(a, s) != CUDA_SUCCESS) return fail("free async", 0);
  if (cuStreamSynchronize(s) != CUDA_SUCCESS) return fail("sync", 0);
  if (reserved(pool) != 768 * kMi) return fail("the pool keeps its memory after sync", (long long)reserved(pool));
  step("synced");
  CUresult r = cuMemAlloc(&b, 768 * kMi);
  if (do_free) {
    if (r != CUDA_SUCCESS) return fail("cuMemAlloc 768 MiB after the pool's memory was freed", r);
    step("sync_alloc");
    if (reserved(pool) != 0) return fail("the hook trimmed the pool", (long long)reserved(pool));
    return 0;
  }
  if (r != CUDA_ERROR_OUT_OF_MEMORY) return fail("cuMemAlloc 768 MiB while the pool's memory is in use", r);
  if (reserved(pool) != 768 * kMi) return fail("in-use memory stays in the pool", (long long)reserved(pool));
  step("refused");
  if (cuMemFreeAsync(a, s) != CUDA_SUCCESS || cuStreamSynchronize(s) != CUDA_SUCCESS) return fail("free", 0);
  if (CUresult r2 = cuMemAlloc(&b, 768 * kMi)) return fail("cuMemAlloc after free + sync", r2);
  step("sync_alloc");
  return 0;
}

int follow(CUstream s) {
  CUmemPoolProps props{};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location = {CU_MEM_LOCATION_TYPE_DEVICE, 0};
  CUmemoryPool pool = nullptr;
  if (cuMemPoolCreate(&pool, &props) != CUDA_SUCCESS) return fail("pool create", 0);
  CUdeviceptr a = 0;
  if (CUresult r = cuMemAllocFromPoolAsync(&a, 300 * kMi, pool, s)) return fail("alloc from pool", r);
  if (quota_used() != reserved(pool) || reserved(pool) < 300 * kMi) return fail("charge after alloc", (long long)quota_used());
  step("alloc");
  if (cuMemFreeAsync(a, s) != CUDA_SUCCESS) return fail("free async", 0);
  if (quota_used() != reserved(pool)) return fail("charge after free (not yet synchronized)", (long long)quota_used());
  step("freed");
  if (cuStreamSynchronize(s) != CUDA_SUCCESS) return fail("sync", 0);
  if (reserved(pool) != 0) return fail("threshold 0: released at sync", (long long)reserved(pool));
  if (quota_used() != 0) return fail("charge after sync", (long long)quota_used());
  step("synced");
  if (cuMemPoolDestroy(pool) != CUDA_SUCCESS) return fail("pool destroy", 0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: hook_pool_probe kept|inuse|follow GO_DIR\n");
    return 2;
  }
  std::string mode = argv[1];
  g_dir = argv[2];
  CUcontext ctx;
  CUstream s;
  if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS || cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
    std::printf("FAIL: no context\n");
    return 1;
  }
  step("ctx");
  int rc = mode == "kept" ? kept_or_inuse(s, true) : mode == "inuse" ? kept_or_inuse(s, false) : follow(s);
  if (rc == 0) std::printf("ok\n");
  return rc;
}
