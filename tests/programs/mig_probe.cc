// Prints what a program sees of its CUDA devices, for the MIG tests:
//   count=<n>
//   ordinal=<i> uuid_v2=<hex> uuid_v1=<hex> total=<cuDeviceTotalMem> sms=<n>
// then, on ordinal 0 (primary context): "info_free=<f> info_total=<t>" from
// cuMemGetInfo, and "alloc=ok|oom|err<code>" for one cuMemAlloc of
// ALLOC_BYTES (0: none). With HOLD_FILE, a successful allocation is held
// ("holding" is printed) until that file exists (60 s at most), so that a
// test can look at two processes at once.
#include <cuda.h>
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace {

void hex(const CUuuid& u, char out[33]) {
  for (int i = 0; i < 16; ++i) std::snprintf(out + 2 * i, 3, "%02x", static_cast<unsigned char>(u.bytes[i]));
}

// The legacy export cuDeviceGetUuid (cuda.h maps the name to _v2).
void legacy_uuid(CUuuid* out, int dev) {
  using Fn = CUresult (*)(CUuuid*, CUdevice);
  static void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  auto fn = lib ? reinterpret_cast<Fn>(dlsym(lib, "cuDeviceGetUuid")) : nullptr;
  if (fn) fn(out, dev);
}

void hold_until(const char* path) {
  std::printf("holding\n");
  std::fflush(stdout);
  for (int i = 0; i < 6000 && access(path, F_OK) != 0; ++i) {
    timespec ts{0, 10'000'000};
    nanosleep(&ts, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: mig_probe ALLOC_BYTES [HOLD_FILE]\n");
    return 2;
  }
  size_t alloc = std::strtoull(argv[1], nullptr, 10);
  int n = 0;
  if (cuInit(0) != CUDA_SUCCESS || cuDeviceGetCount(&n) != CUDA_SUCCESS) {
    std::printf("count=0\n");
    return 1;
  }
  std::printf("count=%d\n", n);
  for (int i = 0; i < n; ++i) {
    CUuuid v2{}, v1{};
    size_t total = 0;
    int sms = 0;
    char a[33], b[33];
    cuDeviceGetUuid_v2(&v2, i);
    legacy_uuid(&v1, i);
    cuDeviceTotalMem(&total, i);
    cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, i);
    hex(v2, a);
    hex(v1, b);
    std::printf("ordinal=%d uuid_v2=%s uuid_v1=%s total=%zu sms=%d\n", i, a, b, total, sms);
  }
  CUcontext ctx = nullptr;
  if (cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS) return 1;
  size_t free_b = 0, total_b = 0;
  cuMemGetInfo(&free_b, &total_b);
  std::printf("info_free=%zu info_total=%zu\n", free_b, total_b);
  if (alloc > 0) {
    CUdeviceptr p = 0;
    CUresult r = cuMemAlloc(&p, alloc);
    if (r == CUDA_SUCCESS) std::printf("alloc=ok\n");
    else if (r == CUDA_ERROR_OUT_OF_MEMORY) std::printf("alloc=oom\n");
    else std::printf("alloc=err%d\n", static_cast<int>(r));
    std::fflush(stdout);
    if (r == CUDA_SUCCESS && argc > 2) hold_until(argv[2]);
    if (r == CUDA_SUCCESS) cuMemFree(p);
  }
  std::fflush(stdout);
  return 0;
}
