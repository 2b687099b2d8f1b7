// What a process pays for libvgpu.so before it reaches the driver, and what
// happens when it does (libhook/stub_abi.h). Run under LD_PRELOAD=libvgpu.so
// with VGPU_MEMORY_LIMIT=4*UNIT on one simulated GPU; prints "ok" or the first
// check that failed.
//
// Usage: hook_preload_probe MODE UNIT_BYTES
//   lazy     nothing but the stub is mapped until the first hooked call: not
//            after dlsym of unhooked names, not after cuInit (not hooked);
//            then cuDeviceTotalMem_v2 loads the core, which answers (the
//            quota as the GPU's size) and enforces the quota.
//   dlsym    dlsym(RTLD_DEFAULT) of a hooked name loads the core and yields
//            libvgpu.so's exported function (the program's own &name).
//   race     8 threads make the process's first hooked call at once; each
//            gets the core's answer.
//   chdir    the working directory changes before the first hooked call (for
//            a stub preloaded by a relative path); the core is still found.
//   fork     the child of a process that never used CUDA uses it.
//   missing  the core is absent: a hooked call fails (its code is printed),
//            an unhooked one works.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <dlfcn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

size_t g_unit = 0;

bool mapped(const char* file) {
  std::ifstream maps("/proc/self/maps");
  std::stringstream all;
  all << maps.rdbuf();
  return all.str().find(std::string("/") + file + "\n") != std::string::npos;
}
bool core_mapped() { return mapped("libvgpu-core.so"); }

bool fail(const char* what) {
  std::printf("FAIL %s\n", what);
  return false;
}

// The hooked view of the GPU's size is the quota: only the core answers that.
bool core_answers() {
  size_t total = 0;
  CUresult r = cuDeviceTotalMem_v2(&total, 0);
  if (r != CUDA_SUCCESS) return std::printf("FAIL cuDeviceTotalMem_v2: %d\n", static_cast<int>(r)), false;
  if (total != 4 * g_unit) return std::printf("FAIL total %zu, want the quota %zu\n", total, 4 * g_unit), false;
  return true;
}

bool lazy() {
  if (!mapped("libvgpu.so")) return fail("libvgpu.so is not preloaded");
  if (core_mapped()) return fail("the core is loaded at start");
  if (!dlsym(RTLD_DEFAULT, "malloc") || !dlsym(RTLD_DEFAULT, "cuDeviceGetCount")) return fail("dlsym of unhooked names");
  dlsym(RTLD_DEFAULT, "curl_easy_init");
  dlsym(RTLD_NEXT, "cuserid");
  if (core_mapped()) return fail("dlsym of unhooked names loaded the core");
  if (cuInit(0) != CUDA_SUCCESS) return fail("cuInit");
  if (core_mapped()) return fail("cuInit (not hooked) loaded the core");
  if (!core_answers()) return false;
  if (!core_mapped()) return fail("the core is not loaded after a hooked call");
  CUcontext ctx;
  CUdeviceptr a, b;
  if (cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS) return fail("context");
  if (cuMemAlloc_v2(&a, 4 * g_unit) != CUDA_SUCCESS) return fail("alloc the quota");
  if (cuMemAlloc_v2(&b, g_unit) != CUDA_ERROR_OUT_OF_MEMORY) return fail("one unit over the quota is not refused");
  return cuMemFree_v2(a) == CUDA_SUCCESS || fail("free");
}

bool dlsym_loads() {
  if (core_mapped()) return fail("the core is loaded at start");
  void* p = dlsym(RTLD_DEFAULT, "cuMemAlloc_v2");
  Dl_info info;
  if (!p || !dladdr(p, &info) || !info.dli_fname || !std::strstr(info.dli_fname, "/libvgpu.so"))
    return fail("dlsym(RTLD_DEFAULT, cuMemAlloc_v2) is not libvgpu.so's");
  if (p != reinterpret_cast<void*>(&cuMemAlloc_v2)) return fail("dlsym differs from the program's own link");
  if (!core_mapped()) return fail("dlsym of a hooked name did not load the core");
  return (cuInit(0) == CUDA_SUCCESS || fail("cuInit")) && core_answers();
}

bool race() {
  if (cuInit(0) != CUDA_SUCCESS) return fail("cuInit");
  if (core_mapped()) return fail("the core is loaded before the race");
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      ready.fetch_add(1);
      while (!go.load()) {
      }
      size_t total = 0;
      if (cuDeviceTotalMem_v2(&total, 0) == CUDA_SUCCESS && total == 4 * g_unit) good.fetch_add(1);
    });
  while (ready.load() < 8) std::this_thread::yield();
  go.store(true);
  for (auto& t : threads) t.join();
  if (good.load() != 8) return std::printf("FAIL %d of 8 racing first calls got the core's answer\n", good.load()), false;
  return true;
}

bool chdir_first() {
  if (chdir("/") != 0) return fail("chdir");
  return (cuInit(0) == CUDA_SUCCESS || fail("cuInit")) && core_answers();
}

bool fork_child() {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) _exit(cuInit(0) == CUDA_SUCCESS && core_answers() && core_mapped() ? 0 : 1);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return fail("fork");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return fail("the child's first hooked call");
  if (core_mapped()) return fail("the child's load reached the parent");
  return (cuInit(0) == CUDA_SUCCESS || fail("cuInit")) && core_answers();
}

bool missing() {
  if (cuInit(0) != CUDA_SUCCESS) return fail("cuInit");
  size_t total = 0;
  std::printf("rc=%d\n", static_cast<int>(cuDeviceTotalMem_v2(&total, 0)));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: hook_preload_probe lazy|dlsym|race|chdir|fork|missing UNIT_BYTES\n");
    return 2;
  }
  g_unit = std::strtoull(argv[2], nullptr, 10);
  std::string mode = argv[1];
  bool ok = mode == "lazy"    ? lazy()
            : mode == "dlsym" ? dlsym_loads()
            : mode == "race"  ? race()
            : mode == "chdir" ? chdir_first()
            : mode == "fork"  ? fork_child()
            : mode == "missing" ? missing()
                                : fail("unknown mode");
  if (ok && mode != "missing") std::printf("ok\n");
  return ok ? 0 : 1;
}
