// Lookup paths that must land in the right place under the hook. Prints "ok"
// or the first check that failed.
//
// Usage: hook_paths_probe ptsz KERNEL_NS
//   cuGetProcAddress("cuLaunchKernel", PER_THREAD_DEFAULT_STREAM) must return
//   the hook's wrapper (a function of libvgpu.so), and that wrapper must reach
//   the real cuLaunchKernel_ptsz: a spin_ns kernel launched on the NULL
//   stream runs on the per-thread default stream, so the real per-thread
//   cuStreamQuery (also found by cuGetProcAddress) sees it busy while the
//   legacy NULL stream (cuStreamQuery(CU_STREAM_LEGACY)) is idle.
// Usage: hook_paths_probe rtld_next UNIT_BYTES   (quota: 4 units)
//   dlsym(RTLD_NEXT, "cuMemAlloc_v2") from the program (linked against
//   libcuda) yields the hook's wrapper, the quota applies through it (4 units
//   fit, one more is OUT_OF_MEMORY); an unhooked name (cuDeviceGetCount)
//   yields the driver's own function.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "spin_ptx.h"

namespace {

bool expect(const std::string& step, CUresult got, CUresult want) {
  if (got == want) return true;
  std::printf("FAIL %s: got %d, want %d\n", step.c_str(), static_cast<int>(got), static_cast<int>(want));
  return false;
}

// The file name of the object that defines `fn` ("" if unknown).
std::string object_of(void* fn) {
  Dl_info info;
  if (!fn || !dladdr(fn, &info) || !info.dli_fname) return "";
  return info.dli_fname;
}

bool expect_in(const std::string& what, void* fn, const char* object) {
  std::string file = object_of(fn);
  if (file.find(object) != std::string::npos) return true;
  std::printf("FAIL %s is in '%s', want %s\n", what.c_str(), file.c_str(), object);
  return false;
}

void* proc(const char* name, cuuint64_t flags) {
  void* p = nullptr;
  CUdriverProcAddressQueryResult status;
  if (cuGetProcAddress_v2(name, &p, CUDA_VERSION, flags, &status) != CUDA_SUCCESS) return nullptr;
  return p;
}

int ptsz(unsigned long long ns) {
  CUmodule mod;
  CUfunction spin;
  if (!expect("module", cuModuleLoadData(&mod, kSpinPtx), CUDA_SUCCESS) ||
      !expect("function", cuModuleGetFunction(&spin, mod, "spin_ns"), CUDA_SUCCESS))
    return 1;
  const cuuint64_t pt = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  void* launch = proc("cuLaunchKernel", pt);
  auto query_pt = reinterpret_cast<PFN_cuStreamQuery_v7000_ptsz>(proc("cuStreamQuery", pt));
  auto sync_pt = reinterpret_cast<PFN_cuStreamSynchronize_v7000_ptsz>(proc("cuStreamSynchronize", pt));
  if (!expect_in("per-thread cuLaunchKernel", launch, "libvgpu.so") || !query_pt || !sync_pt) return 1;
  if (launch == proc("cuLaunchKernel", CU_GET_PROC_ADDRESS_LEGACY_STREAM)) {
    std::printf("FAIL per-thread and legacy cuLaunchKernel are the same function\n");
    return 1;
  }
  void* params[] = {&ns};
  auto start = std::chrono::steady_clock::now();
  CUresult launched = reinterpret_cast<PFN_cuLaunchKernel_v7000_ptsz>(launch)(spin, 1, 1, 1, 1, 1, 1, 0, nullptr,
                                                                               params, nullptr);
  CUresult per_thread = query_pt(nullptr);
  CUresult legacy = cuStreamQuery(CU_STREAM_LEGACY);
  auto queried = std::chrono::steady_clock::now() - start;
  if (queried >= std::chrono::nanoseconds(ns)) {
    std::printf("INCONCLUSIVE the queries took longer than the kernel\n");
    return 3;
  }
  bool ok = expect("launch", launched, CUDA_SUCCESS) &&
            expect("per-thread stream busy", per_thread, CUDA_ERROR_NOT_READY) &&
            expect("legacy stream idle", legacy, CUDA_SUCCESS) &&
            expect("per-thread sync", sync_pt(nullptr), CUDA_SUCCESS) &&
            expect("per-thread stream done", query_pt(nullptr), CUDA_SUCCESS);
  if (ok) std::printf("ok\n");
  return ok ? 0 : 1;
}

int rtld_next(size_t unit) {
  auto alloc = reinterpret_cast<PFN_cuMemAlloc_v3020>(dlsym(RTLD_NEXT, "cuMemAlloc_v2"));
  void* count = dlsym(RTLD_NEXT, "cuDeviceGetCount");
  if (!expect_in("RTLD_NEXT cuMemAlloc_v2", reinterpret_cast<void*>(alloc), "libvgpu.so") ||
      !expect_in("RTLD_NEXT cuDeviceGetCount", count, "libcuda.so"))
    return 1;
  CUdeviceptr a, b;
  bool ok = expect("alloc the quota", alloc(&a, 4 * unit), CUDA_SUCCESS) &&
            expect("one unit over", alloc(&b, unit), CUDA_ERROR_OUT_OF_MEMORY) &&
            expect("free", cuMemFree_v2(a), CUDA_SUCCESS) && expect("alloc after free", alloc(&b, unit), CUDA_SUCCESS);
  int n = 0;
  ok = ok && expect("unhooked call", reinterpret_cast<PFN_cuDeviceGetCount_v2000>(count)(&n), CUDA_SUCCESS);
  if (ok) std::printf("ok\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: hook_paths_probe ptsz KERNEL_NS | rtld_next UNIT_BYTES\n");
    return 2;
  }
  CUcontext ctx;
  if (!expect("cuInit", cuInit(0), CUDA_SUCCESS) || !expect("context", cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS) ||
      !expect("set current", cuCtxSetCurrent(ctx), CUDA_SUCCESS))
    return 1;
  unsigned long long n = std::strtoull(argv[2], nullptr, 10);
  if (std::strcmp(argv[1], "ptsz") == 0) return ptsz(n);
  if (std::strcmp(argv[1], "rtld_next") == 0) return rtld_next(n);
  return 2;
}
