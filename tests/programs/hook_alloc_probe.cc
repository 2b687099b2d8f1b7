// Exercises one allocation API through one lookup path against a quota, as a
// real driver-API program would, and prints "ok" or what went wrong.
//
// Usage: hook_alloc_probe API PATH UNIT_BYTES
//   API:  alloc pitch managed async async_ptsz pool vmm array array3d mipmap
//   PATH: direct      the exported symbol (the program links libcuda.so.1)
//         proc        cuGetProcAddress_v2 (per-thread flag for *_ptsz)
//         dlsym       dlsym() on a dlopen("libcuda.so.1") handle
//         dlsym_proc  cuGetProcAddress_v2 itself found with dlsym
// The test sets the quota to 4 × UNIT_BYTES. Scenario: allocate 1, 2 and 1
// units (success, the last one lands exactly on the quota), one more unit
// (CUDA_ERROR_OUT_OF_MEMORY), free the 2-unit allocation, allocate 2 units
// again (success: the free made room).
#define __CUDA_API_VERSION_INTERNAL 1  // exact versioned names (cuMemAlloc_v2, ...)
#include <cuda.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

namespace {

std::string g_path;
bool g_per_thread = false;

// Resolves `symbol` (exact export) / `base` (cuGetProcAddress name) by g_path.
void* resolve(const char* symbol, const char* base, void* direct) {
  if (g_path == "direct") return direct;
  void* h = dlopen("libcuda.so.1", RTLD_NOW);
  if (!h) return nullptr;
  if (g_path == "dlsym") return dlsym(h, symbol);
  using GetProc = CUresult (*)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*);
  GetProc gp = &cuGetProcAddress_v2;
  if (g_path == "dlsym_proc") gp = reinterpret_cast<GetProc>(dlsym(h, "cuGetProcAddress_v2"));
  void* p = nullptr;
  CUdriverProcAddressQueryResult status;
  cuuint64_t flags = g_per_thread ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_DEFAULT;
  if (!gp || gp(base, &p, CUDA_VERSION, flags, &status) != CUDA_SUCCESS) return nullptr;
  return p;
}

#define RESOLVE(sym, base) reinterpret_cast<decltype(&sym)>(resolve(#sym, #base, reinterpret_cast<void*>(&sym)))

// One allocation API: allocate n units (returns a handle as uint64) and free.
struct Api {
  std::function<CUresult(size_t units, unsigned long long* handle)> alloc;
  std::function<CUresult(unsigned long long handle)> free;
};

size_t g_unit = 0;
CUstream g_stream = nullptr;

Api linear_api(const std::string& name) {
  auto free_fn = RESOLVE(cuMemFree_v2, cuMemFree);
  Api api;
  api.free = [=](unsigned long long h) { return free_fn(h); };
  if (name == "alloc") {
    auto fn = RESOLVE(cuMemAlloc_v2, cuMemAlloc);
    api.alloc = [=](size_t n, unsigned long long* h) { return fn(reinterpret_cast<CUdeviceptr*>(h), n * g_unit); };
  } else if (name == "pitch") {
    auto fn = RESOLVE(cuMemAllocPitch_v2, cuMemAllocPitch);
    api.alloc = [=](size_t n, unsigned long long* h) {
      size_t pitch = 0;  // width 4096 (a multiple of any pitch alignment) × rows
      return fn(reinterpret_cast<CUdeviceptr*>(h), &pitch, 4096, n * g_unit / 4096, 4);
    };
  } else if (name == "managed") {
    auto fn = RESOLVE(cuMemAllocManaged, cuMemAllocManaged);
    api.alloc = [=](size_t n, unsigned long long* h) {
      return fn(reinterpret_cast<CUdeviceptr*>(h), n * g_unit, CU_MEM_ATTACH_GLOBAL);
    };
  }
  return api;
}

Api async_api(const std::string& name) {
  Api api;
  if (name == "async_ptsz") g_per_thread = true;
  bool pt = g_per_thread;
  auto alloc_fn = pt && g_path == "direct" ? &cuMemAllocAsync_ptsz : RESOLVE(cuMemAllocAsync, cuMemAllocAsync);
  auto free_fn = pt && g_path == "direct" ? &cuMemFreeAsync_ptsz : RESOLVE(cuMemFreeAsync, cuMemFreeAsync);
  if (pt && g_path == "dlsym") {
    alloc_fn = reinterpret_cast<decltype(alloc_fn)>(resolve("cuMemAllocAsync_ptsz", "", nullptr));
    free_fn = reinterpret_cast<decltype(free_fn)>(resolve("cuMemFreeAsync_ptsz", "", nullptr));
  }
  if (name == "pool") {
    CUmemoryPool pool = nullptr;
    cuDeviceGetDefaultMemPool(&pool, 0);
    auto fn = RESOLVE(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync);
    api.alloc = [=](size_t n, unsigned long long* h) {
      return fn(reinterpret_cast<CUdeviceptr*>(h), n * g_unit, pool, g_stream);
    };
  } else {
    api.alloc = [=](size_t n, unsigned long long* h) {
      return alloc_fn(reinterpret_cast<CUdeviceptr*>(h), n * g_unit, g_stream);
    };
  }
  api.free = [=](unsigned long long h) {
    CUresult r = free_fn(h, g_stream);
    return r == CUDA_SUCCESS ? cuStreamSynchronize(g_stream) : r;
  };
  return api;
}

Api vmm_api() {
  auto create = RESOLVE(cuMemCreate, cuMemCreate);
  auto release = RESOLVE(cuMemRelease, cuMemRelease);
  Api api;
  api.alloc = [=](size_t n, unsigned long long* h) {
    CUmemAllocationProp prop = {};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    return create(h, n * g_unit, &prop, 0);
  };
  api.free = [=](unsigned long long h) { return release(h); };
  return api;
}

Api array_api(const std::string& name) {
  auto destroy = RESOLVE(cuArrayDestroy, cuArrayDestroy);
  Api api;
  api.free = [=](unsigned long long h) { return destroy(reinterpret_cast<CUarray>(h)); };
  if (name == "array") {
    auto fn = RESOLVE(cuArrayCreate_v2, cuArrayCreate);
    api.alloc = [=](size_t n, unsigned long long* h) {
      CUDA_ARRAY_DESCRIPTOR d = {1024, n * g_unit / 4096, CU_AD_FORMAT_FLOAT, 1};  // 4 bytes × 1024 per row
      return fn(reinterpret_cast<CUarray*>(h), &d);
    };
  } else if (name == "array3d") {
    auto fn = RESOLVE(cuArray3DCreate_v2, cuArray3DCreate);
    api.alloc = [=](size_t n, unsigned long long* h) {
      CUDA_ARRAY3D_DESCRIPTOR d = {256, 16, n * g_unit / (256 * 16 * 4), CU_AD_FORMAT_UNSIGNED_INT8, 4, 0};  // 16 KiB slices
      return fn(reinterpret_cast<CUarray*>(h), &d);
    };
  } else {
    auto fn = RESOLVE(cuMipmappedArrayCreate, cuMipmappedArrayCreate);
    auto mdestroy = RESOLVE(cuMipmappedArrayDestroy, cuMipmappedArrayDestroy);
    api.alloc = [=](size_t n, unsigned long long* h) {
      CUDA_ARRAY3D_DESCRIPTOR d = {1024, n * g_unit / 4096, 0, CU_AD_FORMAT_FLOAT, 1, 0};
      return fn(reinterpret_cast<CUmipmappedArray*>(h), &d, 1);
    };
    api.free = [=](unsigned long long h) { return mdestroy(reinterpret_cast<CUmipmappedArray>(h)); };
  }
  return api;
}

bool expect(const char* step, CUresult got, CUresult want) {
  if (got == want) return true;
  std::printf("FAIL %s: got %d, want %d\n", step, static_cast<int>(got), static_cast<int>(want));
  return false;
}

int run(const Api& api) {
  if (!api.alloc || !api.free) {
    std::printf("FAIL: entry points not resolved\n");
    return 1;
  }
  unsigned long long a = 0, b = 0, c = 0, d = 0;
  bool ok = expect("alloc 1 unit", api.alloc(1, &a), CUDA_SUCCESS) &&
            expect("alloc 2 units", api.alloc(2, &b), CUDA_SUCCESS) &&
            expect("alloc to the exact quota", api.alloc(1, &c), CUDA_SUCCESS) &&
            expect("alloc one unit over", api.alloc(1, &d), CUDA_ERROR_OUT_OF_MEMORY) &&
            expect("free 2 units", api.free(b), CUDA_SUCCESS) &&
            expect("alloc 2 units after free", api.alloc(2, &b), CUDA_SUCCESS) &&
            expect("free", api.free(a), CUDA_SUCCESS) && expect("free", api.free(b), CUDA_SUCCESS) &&
            expect("free", api.free(c), CUDA_SUCCESS);
  if (ok) std::printf("ok\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: hook_alloc_probe API PATH UNIT_BYTES\n");
    return 2;
  }
  std::string name = argv[1];
  g_path = argv[2];
  g_unit = std::strtoull(argv[3], nullptr, 10);
  CUcontext ctx;
  if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS || cuStreamCreate(&g_stream, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
    std::printf("FAIL: no context\n");
    return 1;
  }
  if (name == "alloc" || name == "pitch" || name == "managed") return run(linear_api(name));
  if (name == "async" || name == "async_ptsz" || name == "pool") return run(async_api(name));
  if (name == "vmm") return run(vmm_api());
  return run(array_api(name));
}
