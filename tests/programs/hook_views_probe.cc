// Prints what a program sees of each device through the hook, one line per
// CUDA ordinal:
//   ordinal=<i> uuid=<hex> nvml_index=<j> total_mem=<cuDeviceTotalMem>
//   info_total=<cuMemGetInfo total> info_free=<free> nvml_total=<v1 total>
//   nvml_free=<v1 free> nvml2_total=<v2 total> alloc_limit_ok=<bool>
// after allocating ALLOC_BYTES on each device (argument, default 0), and a
// final "passthrough=<ok|FAIL>" line checking an unhooked call and lookup.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "vgpu/nvml_subset.h"

namespace {

// NVML is reached the way monitoring code often does it: dlopen + dlsym, which
// is also one of the paths the hook must cover.
struct Nvml {
  PFN_nvmlInit_v2 init;
  PFN_nvmlDeviceGetCount_v2 count;
  PFN_nvmlDeviceGetHandleByIndex_v2 handle;
  PFN_nvmlDeviceGetUUID uuid;
  PFN_nvmlDeviceGetMemoryInfo mem;
  PFN_nvmlDeviceGetMemoryInfo_v2 mem2;
} nvml;

bool load_nvml() {
  void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (!h) return false;
  nvml.init = reinterpret_cast<PFN_nvmlInit_v2>(dlsym(h, "nvmlInit_v2"));
  nvml.count = reinterpret_cast<PFN_nvmlDeviceGetCount_v2>(dlsym(h, "nvmlDeviceGetCount_v2"));
  nvml.handle = reinterpret_cast<PFN_nvmlDeviceGetHandleByIndex_v2>(dlsym(h, "nvmlDeviceGetHandleByIndex_v2"));
  nvml.uuid = reinterpret_cast<PFN_nvmlDeviceGetUUID>(dlsym(h, "nvmlDeviceGetUUID"));
  nvml.mem = reinterpret_cast<PFN_nvmlDeviceGetMemoryInfo>(dlsym(h, "nvmlDeviceGetMemoryInfo"));
  nvml.mem2 = reinterpret_cast<PFN_nvmlDeviceGetMemoryInfo_v2>(dlsym(h, "nvmlDeviceGetMemoryInfo_v2"));
  return nvml.init && nvml.count && nvml.handle && nvml.uuid && nvml.mem && nvml.mem2 && nvml.init() == NVML_SUCCESS;
}

void hex(const CUuuid& u, char out[33]) {
  for (int i = 0; i < 16; ++i) std::snprintf(out + 2 * i, 3, "%02x", static_cast<unsigned char>(u.bytes[i]));
}

// NVML index of the device with this UUID, via NVML's own UUID strings.
int nvml_index_of(const char* hexuuid, nvmlDevice_t* out) {
  unsigned count = 0;
  nvml.count(&count);
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t d;
    char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    if (nvml.handle(i, &d) || nvml.uuid(d, text, sizeof text)) continue;
    char flat[64] = {};
    int n = 0;
    for (const char* p = text + 4; *p && n < 32; ++p)
      if (*p != '-') flat[n++] = *p;
    if (strcasecmp(flat, hexuuid) == 0) {
      *out = d;
      return static_cast<int>(i);
    }
  }
  return -1;
}

bool passthrough_ok() {
  char name[64] = {};
  void* h = dlopen("libcuda.so.1", RTLD_NOW);
  void* by_dlsym = h ? dlsym(h, "cuDeviceGetName") : nullptr;
  void* by_proc = nullptr;
  CUdriverProcAddressQueryResult st;
  cuGetProcAddress_v2("cuDeviceGetName", &by_proc, CUDA_VERSION, 0, &st);
  return cuDeviceGetName(name, sizeof name, 0) == CUDA_SUCCESS && name[0] && by_dlsym && by_dlsym == by_proc &&
         by_dlsym == reinterpret_cast<void*>(&cuDeviceGetName);
}

}  // namespace

int main(int argc, char** argv) {
  size_t alloc = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 0;
  int count = 0;
  if (cuInit(0) || cuDeviceGetCount(&count) || !load_nvml()) return 1;
  for (int i = 0; i < count; ++i) {
    CUuuid u;
    char uuid[33];
    CUcontext ctx;
    size_t total = 0, info_free = 0, info_total = 0;
    CUdeviceptr p = 0;
    if (cuDeviceGetUuid_v2(&u, i) || cuDeviceTotalMem_v2(&total, i) || cuDevicePrimaryCtxRetain(&ctx, i) ||
        cuCtxSetCurrent(ctx))
      return 1;
    if (alloc && cuMemAlloc_v2(&p, alloc)) return 1;
    cuMemGetInfo_v2(&info_free, &info_total);
    hex(u, uuid);
    nvmlDevice_t d = nullptr;
    int index = nvml_index_of(uuid, &d);
    nvmlMemory_t m1 = {};
    nvmlMemory_v2_t m2 = {};
    m2.version = nvmlMemory_v2;
    if (d) {
      nvml.mem(d, &m1);
      nvml.mem2(d, &m2);
    }
    std::printf("ordinal=%d uuid=%s nvml_index=%d total_mem=%zu info_total=%zu info_free=%zu nvml_total=%llu "
                "nvml_free=%llu nvml2_total=%llu nvml2_free=%llu\n",
                i, uuid, index, total, info_total, info_free, m1.total, m1.free, m2.total, m2.free);
  }
  std::printf("passthrough=%s\n", passthrough_ok() ? "ok" : "FAIL");
  return 0;
}
