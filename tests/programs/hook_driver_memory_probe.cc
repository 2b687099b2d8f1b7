// Driver-held memory is charged to the quota (run under libvgpu.so with a
// 1 GiB quota on GPU 0). Prints "ok" or the first step that went wrong.
//
// Usage: hook_driver_memory_probe MODE
//   context  the context takes 300 MiB (the driver's, or vgpud's floor):
//            700 MiB more fit, 800 MiB do not
//   module   a module with 600 MiB of globals loads once; a second is refused
//            (and not left loaded); after an unload it loads again; the same
//            for a library
//   limit    cuCtxSetLimit(STACK_SIZE) that would take 1.8 GiB is refused and
//            the limit stays; one taking 528 MiB is charged, and returned when
//            the stack size goes back
// After every step the process's own use per NVML (its per-process list)
// must stay within the 1 GiB quota.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "vgpu/nvml_subset.h"

namespace {

constexpr size_t kMi = 1ull << 20;
constexpr unsigned long long kQuota = 1024 * kMi;

int fail(const std::string& step, long long r) {
  std::printf("FAIL %s: %lld\n", step.c_str(), r);
  return 1;
}

#define CHECK(step, call, want)                                 \
  do {                                                          \
    CUresult r_ = (call);                                       \
    if (r_ != (want)) return fail((step), static_cast<int>(r_)); \
  } while (0)

// This process's used memory on GPU 0 per NVML.
unsigned long long nvml_used() {
  static void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (!lib) return ~0ull;
  static auto init = reinterpret_cast<PFN_nvmlInit_v2>(dlsym(lib, "nvmlInit_v2"));
  static auto handle = reinterpret_cast<PFN_nvmlDeviceGetHandleByIndex_v2>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  static auto list = reinterpret_cast<PFN_nvmlDeviceGetComputeRunningProcesses_v3>(
      dlsym(lib, "nvmlDeviceGetComputeRunningProcesses_v3"));
  nvmlDevice_t d = nullptr;
  nvmlProcessInfo_t infos[8];
  unsigned n = 8;
  if (!init || !handle || !list || init() != NVML_SUCCESS || handle(0, &d) != NVML_SUCCESS ||
      list(d, &n, infos) != NVML_SUCCESS)
    return ~0ull;
  for (unsigned i = 0; i < n; ++i)
    if (infos[i].pid == static_cast<unsigned>(getpid())) return infos[i].usedGpuMemory;
  return 0;
}

#define WITHIN_QUOTA(step)                                            \
  do {                                                                \
    unsigned long long u_ = nvml_used();                              \
    if (u_ > kQuota) return fail(std::string(step) + ": NVML use above the quota", static_cast<long long>(u_)); \
  } while (0)

std::string ptx_with_globals(size_t mib) {
  return ".version 8.0\n.target sm_90\n.address_size 64\n"
         ".visible .global .align 8 .b8 big[" + std::to_string(mib * kMi) + "];\n"
         ".visible .entry k()\n{\n\tret;\n}\n";
}

int context_mode() {
  CUdeviceptr p = 0;
  CHECK("cuMemAlloc 800 MiB (with a 300 MiB context: over 1 GiB)", cuMemAlloc_v2(&p, 800 * kMi),
        CUDA_ERROR_OUT_OF_MEMORY);
  WITHIN_QUOTA("after the refusal");
  CHECK("cuMemAlloc 700 MiB", cuMemAlloc_v2(&p, 700 * kMi), CUDA_SUCCESS);
  WITHIN_QUOTA("after 700 MiB");
  CHECK("cuMemFree", cuMemFree_v2(p), CUDA_SUCCESS);
  return 0;
}

int module_mode() {
  std::string ptx = ptx_with_globals(600);
  CUmodule a = nullptr, b = nullptr;
  CHECK("cuModuleLoadData A", cuModuleLoadData(&a, ptx.c_str()), CUDA_SUCCESS);
  WITHIN_QUOTA("after module A");
  CHECK("cuModuleLoadData B (over quota)", cuModuleLoadData(&b, ptx.c_str()), CUDA_ERROR_OUT_OF_MEMORY);
  if (b) return fail("module B handle left set", 0);
  WITHIN_QUOTA("after module B was refused");
  CUdeviceptr p = 0;
  CHECK("cuMemAlloc 500 MiB beside module A", cuMemAlloc_v2(&p, 500 * kMi), CUDA_ERROR_OUT_OF_MEMORY);
  CHECK("cuModuleUnload A", cuModuleUnload(a), CUDA_SUCCESS);
  CUlibrary lib = nullptr, lib2 = nullptr;
  CHECK("cuLibraryLoadData", cuLibraryLoadData(&lib, ptx.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0),
        CUDA_SUCCESS);
  WITHIN_QUOTA("after the library");
  CHECK("cuLibraryLoadData again (over quota)",
        cuLibraryLoadData(&lib2, ptx.c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0), CUDA_ERROR_OUT_OF_MEMORY);
  WITHIN_QUOTA("after the second library was refused");
  CHECK("cuLibraryUnload", cuLibraryUnload(lib), CUDA_SUCCESS);
  CHECK("cuMemAlloc 700 MiB after the unloads", cuMemAlloc_v2(&p, 700 * kMi), CUDA_SUCCESS);
  WITHIN_QUOTA("after 700 MiB");
  return 0;
}

int limit_mode() {
  // simgpu's device: 132 SMs x 2048 threads; the 1 KiB default is in the overhead.
  CHECK("cuCtxSetLimit STACK 8 KiB (1.8 GiB)", cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 8192), CUDA_ERROR_OUT_OF_MEMORY);
  size_t v = 0;
  CHECK("cuCtxGetLimit", cuCtxGetLimit(&v, CU_LIMIT_STACK_SIZE), CUDA_SUCCESS);
  if (v != 1024) return fail("stack size after the refusal", static_cast<long long>(v));
  WITHIN_QUOTA("after the refused limit");
  CHECK("cuCtxSetLimit STACK 3 KiB (528 MiB)", cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 3072), CUDA_SUCCESS);
  WITHIN_QUOTA("after the stack grew");
  CUdeviceptr p = 0;
  CHECK("cuMemAlloc 600 MiB beside the stack", cuMemAlloc_v2(&p, 600 * kMi), CUDA_ERROR_OUT_OF_MEMORY);
  CHECK("cuCtxSetLimit STACK back to 1 KiB", cuCtxSetLimit(CU_LIMIT_STACK_SIZE, 1024), CUDA_SUCCESS);
  CHECK("cuMemAlloc 600 MiB after", cuMemAlloc_v2(&p, 600 * kMi), CUDA_SUCCESS);
  WITHIN_QUOTA("after 600 MiB");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s context|module|limit\n", argv[0]);
    return 2;
  }
  std::string mode = argv[1];
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  CHECK("cuInit", cuInit(0), CUDA_SUCCESS);
  CHECK("cuDeviceGet", cuDeviceGet(&dev, 0), CUDA_SUCCESS);
  CHECK("cuCtxCreate", cuCtxCreate_v2(&ctx, 0, dev), CUDA_SUCCESS);
  WITHIN_QUOTA("after cuCtxCreate");
  int rc = mode == "context" ? context_mode() : mode == "module" ? module_mode() : mode == "limit" ? limit_mode() : 2;
  if (rc != 0) return rc;
  CHECK("cuCtxDestroy", cuCtxDestroy_v2(ctx), CUDA_SUCCESS);
  std::printf("ok\n");
  return 0;
}
