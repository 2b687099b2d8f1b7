// A hostile tenant program: what arbitrary code in a container can do to get
// more than its share. Run under LD_PRELOAD=libvgpu.so with a tenant token.
//   hostile_tenant rollback CHUNK TARGET   allocate CHUNK at a time through the
//       hook, rolling the tenant ledger back to zero before each, until TARGET
//       bytes are held; print "held <bytes>" after each and "done", then wait
//   hostile_tenant control                 try to write vgpud's control block
//       (mprotect, a writable mapping, write() through /proc/self/fd); print
//       "control <n> writes succeeded", then exit
//   hostile_tenant bypass BYTES            allocate BYTES through a second copy
//       of the driver (dlmopen: the shim does not see it); "ready", then wait
//   hostile_tenant unleased MS             register through the hook, then
//       launch 1 ms kernels through a dlmopen'ed driver (no lease) for MS ms;
//       print "launched <n>", exit
// Lines are flushed; waiting ends with SIGKILL.
#include <cuda.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "spin_ptx.h"
#include "vgpu/tenant_shm.h"

namespace {

[[noreturn]] void wait_forever() {
  std::fflush(stdout);
  for (;;) pause();
}

// The start of this process's mapping of a tenant memfd named `tag`.
void* find_mapping(const char* tag, std::string* perms) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.find(tag) == std::string::npos) continue;
    *perms = line.substr(line.find(' ') + 1, 4);
    return reinterpret_cast<void*>(std::stoull(line.substr(0, line.find('-')), nullptr, 16));
  }
  return nullptr;
}

bool init_context() {
  CUdevice dev;
  CUcontext ctx;
  return cuInit(0) == CUDA_SUCCESS && cuDeviceGet(&dev, 0) == CUDA_SUCCESS &&
         cuDevicePrimaryCtxRetain(&ctx, dev) == CUDA_SUCCESS && cuCtxSetCurrent(ctx) == CUDA_SUCCESS;
}

int rollback(uint64_t chunk, uint64_t target) {
  if (!init_context()) return 2;
  uint64_t held = 0;
  while (held < target) {
    std::string perms;
    auto* led = static_cast<vgpu::TenantLedger*>(find_mapping("vgpu-ledger-", &perms));
    if (!led) return 3;
    for (auto& d : led->devices) d.used.store(0);
    for (auto& p : led->procs)
      for (auto& u : p.used) u.store(0);
    CUdeviceptr p;
    if (cuMemAlloc(&p, chunk) != CUDA_SUCCESS) break;
    held += chunk;
    std::printf("held %llu\n", static_cast<unsigned long long>(held));
    std::fflush(stdout);
  }
  std::printf("done\n");
  wait_forever();
}

int control() {
  if (!init_context()) return 2;
  std::string perms;
  void* ctl = find_mapping("vgpu-control-", &perms);
  if (!ctl) return 3;
  int wrote = 0;
  if (perms[1] == 'w') ++wrote;
  if (mprotect(ctl, sizeof(vgpu::TenantControl), PROT_READ | PROT_WRITE) == 0) ++wrote;
  // Every fd of this process that names the control memfd.
  for (int fd = 0; fd < 1024; ++fd) {
    char link[256] = {0};
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    if (readlink(path.c_str(), link, sizeof link - 1) < 0 || !std::strstr(link, "vgpu-control-")) continue;
    if (mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) != MAP_FAILED) ++wrote;
    int rw = open(path.c_str(), O_RDWR);
    uint32_t granted = 1;
    if (rw >= 0 && pwrite(rw, &granted, sizeof granted, 0) == sizeof granted) ++wrote;
    if (rw >= 0 && ftruncate(rw, 0) == 0) ++wrote;
    if (rw >= 0) close(rw);
  }
  // The hook closes the memfds after mapping them; the mapping's own file
  // can still be reached through /proc/self/map_files.
  char mf[128];
  std::snprintf(mf, sizeof mf, "/proc/self/map_files/%lx-%lx", reinterpret_cast<unsigned long>(ctl),
                reinterpret_cast<unsigned long>(ctl) + ((sizeof(vgpu::TenantControl) + 4095) & ~4095ul));
  int rw = open(mf, O_RDWR);
  uint32_t granted = 1;
  if (rw >= 0 && pwrite(rw, &granted, sizeof granted, 0) == sizeof granted) ++wrote;
  if (rw >= 0) close(rw);
  std::printf("control %d writes succeeded\n", wrote);
  return 0;
}

// The driver API of a private copy of libcuda.so.1 (not interposed).
struct Private {
  void* lib = nullptr;
  template <class F>
  F fn(const char* name) { return reinterpret_cast<F>(dlsym(lib, name)); }
};

bool private_context(Private* d) {
  d->lib = dlmopen(LM_ID_NEWLM, "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!d->lib) return false;
  CUdevice dev;
  CUcontext ctx;
  return d->fn<CUresult (*)(unsigned)>("cuInit")(0) == CUDA_SUCCESS &&
         d->fn<CUresult (*)(CUdevice*, int)>("cuDeviceGet")(&dev, 0) == CUDA_SUCCESS &&
         d->fn<CUresult (*)(CUcontext*, CUdevice)>("cuDevicePrimaryCtxRetain")(&ctx, dev) == CUDA_SUCCESS &&
         d->fn<CUresult (*)(CUcontext)>("cuCtxSetCurrent")(ctx) == CUDA_SUCCESS;
}

int bypass(uint64_t bytes) {
  Private d;
  if (!private_context(&d)) return 2;
  CUdeviceptr p;
  if (d.fn<CUresult (*)(CUdeviceptr*, size_t)>("cuMemAlloc_v2")(&p, bytes) != CUDA_SUCCESS) return 3;
  std::printf("ready\n");
  wait_forever();
}

int unleased(long ms) {
  if (!init_context()) return 2;  // registered through the hook
  Private d;
  if (!private_context(&d)) return 3;
  CUmodule mod;
  CUfunction fn;
  if (d.fn<CUresult (*)(CUmodule*, const void*)>("cuModuleLoadData")(&mod, kSpinPtx) != CUDA_SUCCESS ||
      d.fn<CUresult (*)(CUfunction*, CUmodule, const char*)>("cuModuleGetFunction")(&fn, mod, "spin_ns") !=
          CUDA_SUCCESS)
    return 4;
  auto launch = d.fn<decltype(&cuLaunchKernel)>("cuLaunchKernel");
  auto sync = d.fn<CUresult (*)()>("cuCtxSynchronize");
  std::printf("launching\n");
  std::fflush(stdout);
  unsigned long long ns = 1'000'000, n = 0;
  void* params[] = {&ns};
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 8; ++i, ++n) launch(fn, 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr);
    sync();
  }
  std::printf("launched %llu\n", n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "rollback" && argc == 4) return rollback(std::strtoull(argv[2], nullptr, 0), std::strtoull(argv[3], nullptr, 0));
  if (mode == "control") return control();
  if (mode == "bypass" && argc == 3) return bypass(std::strtoull(argv[2], nullptr, 0));
  if (mode == "unleased" && argc == 3) return unleased(std::strtol(argv[2], nullptr, 0));
  std::fprintf(stderr, "usage: hostile_tenant rollback CHUNK TARGET | control | bypass BYTES | unleased MS\n");
  return 64;
}
