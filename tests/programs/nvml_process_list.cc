// Prints what NVML's per-process views show this process, over all devices,
// one line per entry point and lookup path (pids sorted, comma-separated):
//   self=<getpid()>
//   compute_v3 rc=<rc> pids=...     exported names (linked against libnvidia-ml)
//   compute_v2 ... / compute_v1 ...
//   dlsym_v3 ... / dlsym_v2 ... / dlsym_v1 ...   dlopen + dlsym of the same
//   util rc=<rc> pids=...           nvmlDeviceGetProcessUtilization (lastSeen 0)
//   util_info rc=<rc> pids=...      nvmlDeviceGetProcessesUtilizationInfo
//   protocol=<ok|what failed>       the size protocol of compute_v3 and util
// rc is the last non-success result (0 when every device answered). With
// "hold BYTES" the probe first creates a context on device 0 and allocates
// BYTES, so it is itself a running process. Exit 1 when NVML cannot be
// initialised or the allocation fails.
#include <cuda.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "vgpu/nvml_subset.h"

namespace {

std::string protocol = "ok";

void fail(const char* what, unsigned device, int rc) {
  if (protocol == "ok") protocol = std::string(what) + " device=" + std::to_string(device) + " rc=" + std::to_string(rc);
}

std::vector<nvmlDevice_t> devices() {
  std::vector<nvmlDevice_t> out;
  unsigned n = 0;
  nvmlDeviceGetCount_v2(&n);
  for (unsigned i = 0; i < n; ++i) {
    nvmlDevice_t d;
    if (nvmlDeviceGetHandleByIndex_v2(i, &d) == NVML_SUCCESS) out.push_back(d);
  }
  return out;
}

void print(const char* name, int rc, const std::set<unsigned>& pids) {
  std::printf("%s rc=%d pids=", name, rc);
  const char* sep = "";
  for (unsigned p : pids) {
    std::printf("%s%u", sep, p);
    sep = ",";
  }
  std::printf("\n");
}

// A running-process list through `fn`, sized by the documented query.
template <class Info, class Fn>
void list(const char* name, Fn fn, bool check_protocol) {
  std::set<unsigned> pids;
  int last = 0;
  std::vector<nvmlDevice_t> devs = devices();
  for (unsigned i = 0; i < devs.size(); ++i) {
    unsigned n = 0;
    nvmlReturn_t r = fn(devs[i], &n, nullptr);
    if (r != NVML_SUCCESS && r != NVML_ERROR_INSUFFICIENT_SIZE) {
      last = r;
      continue;
    }
    if (check_protocol && r == NVML_SUCCESS && n != 0) fail("size query SUCCESS with a count", i, r);
    if (check_protocol && n > 0) {
      std::vector<Info> small(n);
      unsigned m = n - 1;
      nvmlReturn_t s = fn(devs[i], &m, m ? small.data() : nullptr);
      if (s != NVML_ERROR_INSUFFICIENT_SIZE || m != n) fail("capacity n-1", i, s);
      unsigned k = 1;
      if (fn(devs[i], &k, nullptr) != NVML_ERROR_INVALID_ARGUMENT) fail("capacity without array", i, 0);
    }
    std::vector<Info> infos(n + 8);
    unsigned cap = static_cast<unsigned>(infos.size());
    r = fn(devs[i], &cap, infos.data());
    if (r != NVML_SUCCESS) {
      last = r;
      continue;
    }
    if (check_protocol && cap != n) fail("count changed between query and read", i, r);
    for (unsigned j = 0; j < cap; ++j) pids.insert(infos[j].pid);
  }
  print(name, last, pids);
}

// Utilization samples (any sample of any age), sized like the lists.
template <class Sample, class Fn>
void samples(const char* name, Fn fn, bool check_protocol) {
  std::set<unsigned> pids;
  int last = 0;
  std::vector<nvmlDevice_t> devs = devices();
  for (unsigned i = 0; i < devs.size(); ++i) {
    unsigned n = 0;
    nvmlReturn_t r = fn(devs[i], nullptr, &n);
    if (r == NVML_ERROR_NOT_FOUND) {
      if (check_protocol && n != 0) fail("NOT_FOUND with a count", i, r);
      continue;
    }
    if (r != NVML_ERROR_INSUFFICIENT_SIZE) {
      last = r;
      continue;
    }
    std::vector<Sample> buf(n + 64);  // a sample period may end between the calls
    unsigned cap = static_cast<unsigned>(buf.size());
    r = fn(devs[i], buf.data(), &cap);
    if (r != NVML_SUCCESS) {
      last = r;
      continue;
    }
    for (unsigned j = 0; j < cap; ++j) pids.insert(buf[j].pid);
  }
  print(name, last, pids);
}

template <class T>
T sym(void* h, const char* name) {
  return reinterpret_cast<T>(h ? dlsym(h, name) : nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "hold") == 0) {
    CUcontext ctx = nullptr;
    CUdeviceptr p = 0;
    if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS || cuMemAlloc(&p, std::strtoull(argv[2], nullptr, 10)) != CUDA_SUCCESS) {
      std::fprintf(stderr, "cannot hold device memory\n");
      return 1;
    }
  }
  if (nvmlInit_v2() != NVML_SUCCESS) {
    std::fprintf(stderr, "nvmlInit_v2 failed\n");
    return 1;
  }
  std::printf("self=%d\n", static_cast<int>(getpid()));
  list<nvmlProcessInfo_t>("compute_v3", nvmlDeviceGetComputeRunningProcesses_v3, true);
  list<nvmlProcessInfo_t>("compute_v2", nvmlDeviceGetComputeRunningProcesses_v2, false);
  list<nvmlProcessInfo_v1_t>("compute_v1", nvmlDeviceGetComputeRunningProcesses, true);
  void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  auto v3 = sym<PFN_nvmlDeviceGetComputeRunningProcesses_v3>(h, "nvmlDeviceGetComputeRunningProcesses_v3");
  auto v2 = sym<PFN_nvmlDeviceGetComputeRunningProcesses_v2>(h, "nvmlDeviceGetComputeRunningProcesses_v2");
  auto v1 = sym<PFN_nvmlDeviceGetComputeRunningProcesses>(h, "nvmlDeviceGetComputeRunningProcesses");
  if (!v3 || !v2 || !v1) {
    std::fprintf(stderr, "dlsym of the process lists failed\n");
    return 1;
  }
  list<nvmlProcessInfo_t>("dlsym_v3", v3, false);
  list<nvmlProcessInfo_t>("dlsym_v2", v2, false);
  list<nvmlProcessInfo_v1_t>("dlsym_v1", v1, false);
  samples<nvmlProcessUtilizationSample_t>(
      "util",
      [](nvmlDevice_t d, nvmlProcessUtilizationSample_t* s, unsigned* n) {
        return nvmlDeviceGetProcessUtilization(d, s, n, 0);
      },
      true);
  samples<nvmlProcessUtilizationInfo_v1_t>(
      "util_info",
      [](nvmlDevice_t d, nvmlProcessUtilizationInfo_v1_t* s, unsigned* n) {
        nvmlProcessesUtilizationInfo_t info{nvmlProcessesUtilizationInfo_v1, *n, 0, s};
        nvmlReturn_t r = nvmlDeviceGetProcessesUtilizationInfo(d, &info);
        *n = info.processSamplesCount;
        return r;
      },
      false);
  std::printf("protocol=%s\n", protocol.c_str());
  return 0;
}
