#include "gpu_inventory.h"

#include "vgpu/tenant_shm.h"

#include <dlfcn.h>

#include <cctype>
#include <cstring>
#include <mutex>

#include "vgpu/nvml_subset.h"
#include "vgpu/nvml_units.h"

namespace vgpu::sched {

namespace {
std::mutex g_units_mu;
std::vector<nvmlDevice_t> g_units;  // guarded by g_units_mu; set by discover_gpus
}  // namespace

void* unit_handle(int index) {
  std::lock_guard<std::mutex> g(g_units_mu);
  return index >= 0 && static_cast<size_t>(index) < g_units.size() ? g_units[static_cast<size_t>(index)] : nullptr;
}

bool parse_uuid(const std::string& s, unsigned char out[16]) {
  std::string hex;
  for (char c : (s.rfind("GPU-", 0) == 0 || s.rfind("MIG-", 0) == 0 ? s.substr(4) : s))
    if (c != '-') hex += c;
  if (hex.size() != 32) return false;
  for (int i = 0; i < 16; ++i) {
    char byte[3] = {hex[2 * i], hex[2 * i + 1], 0};
    if (!std::isxdigit(static_cast<unsigned char>(byte[0])) || !std::isxdigit(static_cast<unsigned char>(byte[1])))
      return false;
    out[i] = static_cast<unsigned char>(std::strtoul(byte, nullptr, 16));
  }
  return true;
}

namespace {

// The unit whose UUID starts with `want`; -1 none, -2 more than one.
int match_prefix(const std::vector<Gpu>& gpus, const std::string& want) {
  int found = -1;
  for (const Gpu& g : gpus)
    if (g.uuid.rfind(want, 0) == 0) {
      if (found >= 0) return -2;
      found = g.index;
    }
  return found;
}

// "GPU-..." naming a GPU in MIG mode: the error names its MIG devices.
Result<int> gpu_in_mig_mode(const std::vector<Gpu>& gpus, const std::string& entry, const std::string& want) {
  std::string list;
  for (const Gpu& g : gpus)
    if (g.mig_index >= 0 && g.gpu_uuid.rfind(want, 0) == 0) list += (list.empty() ? "" : ", ") + g.uuid;
  if (list.empty()) return make_error("no GPU has UUID '" + entry + "'");
  return make_error("GPU '" + entry + "' is in MIG mode: name its MIG devices instead (" + list + ")");
}

}  // namespace

Result<int> resolve_gpu(const std::vector<Gpu>& gpus, const std::string& entry) {
  if (!entry.empty() && entry.find_first_not_of("0123456789") == std::string::npos) {
    long i = std::strtol(entry.c_str(), nullptr, 10);
    if (i < static_cast<long>(gpus.size())) return static_cast<int>(i);
    return make_error("GPU index " + entry + " does not exist (this node has " + std::to_string(gpus.size()) +
                      " GPUs and MIG devices)");
  }
  std::string want = entry.rfind("GPU-", 0) == 0 || entry.rfind("MIG-", 0) == 0 ? entry : "GPU-" + entry;
  int found = match_prefix(gpus, want);
  if (found == -2) return make_error("'" + entry + "' matches more than one GPU");
  if (found < 0 && want.rfind("GPU-", 0) == 0) return gpu_in_mig_mode(gpus, entry, want);
  if (found < 0) return make_error("no MIG device has UUID '" + entry + "'");
  return found;
}

GpuReading read_gpu(int index) {
  static void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  GpuReading r;
  if (!lib) return r;
  static auto handle_fn = reinterpret_cast<PFN_nvmlDeviceGetHandleByIndex_v2>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  static auto mem_fn = reinterpret_cast<PFN_nvmlDeviceGetMemoryInfo>(dlsym(lib, "nvmlDeviceGetMemoryInfo"));
  static auto util_fn = reinterpret_cast<PFN_nvmlDeviceGetUtilizationRates>(dlsym(lib, "nvmlDeviceGetUtilizationRates"));
  // The unit's handle; the NVML index when discover_gpus() has not run.
  auto d = static_cast<nvmlDevice_t>(unit_handle(index));
  if (!d && handle_fn && index >= 0 && handle_fn(static_cast<unsigned>(index), &d) != NVML_SUCCESS) d = nullptr;
  nvmlMemory_t mem{};
  nvmlUtilization_t util{};
  if (!mem_fn || !util_fn || !d) return r;
  if (mem_fn(d, &mem) == NVML_SUCCESS) r.memory_used = mem.used;
  if (util_fn(d, &util) == NVML_SUCCESS) r.busy_fraction = util.gpu / 100.0;
  r.ok = true;
  return r;
}

Result<std::vector<Gpu>> discover_gpus() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return make_error(std::string("cannot load libnvidia-ml.so.1: ") + dlerror());
#define VGPU_LOAD(name) auto name = reinterpret_cast<PFN_##name>(dlsym(lib, #name))
  VGPU_LOAD(nvmlInit_v2);
  VGPU_LOAD(nvmlDeviceGetCount_v2);
  VGPU_LOAD(nvmlDeviceGetHandleByIndex_v2);
  VGPU_LOAD(nvmlDeviceGetUUID);
  VGPU_LOAD(nvmlDeviceGetName);
  VGPU_LOAD(nvmlDeviceGetMemoryInfo);
#undef VGPU_LOAD
  if (!nvmlInit_v2 || !nvmlDeviceGetCount_v2 || !nvmlDeviceGetHandleByIndex_v2 || !nvmlDeviceGetUUID ||
      !nvmlDeviceGetName || !nvmlDeviceGetMemoryInfo)
    return make_error("libnvidia-ml.so.1 lacks a function vgpud needs");
  NvmlUnitFunctions f;
  f.handle_by_index = nvmlDeviceGetHandleByIndex_v2;
  f.mig_mode = reinterpret_cast<PFN_nvmlDeviceGetMigMode>(dlsym(lib, "nvmlDeviceGetMigMode"));
  f.max_mig_count = reinterpret_cast<PFN_nvmlDeviceGetMaxMigDeviceCount>(dlsym(lib, "nvmlDeviceGetMaxMigDeviceCount"));
  f.mig_by_index =
      reinterpret_cast<PFN_nvmlDeviceGetMigDeviceHandleByIndex>(dlsym(lib, "nvmlDeviceGetMigDeviceHandleByIndex"));
  if (nvmlReturn_t r = nvmlInit_v2(); r != NVML_SUCCESS)
    return make_error("nvmlInit failed with error " + std::to_string(r));
  unsigned count = 0;
  if (nvmlDeviceGetCount_v2(&count) != NVML_SUCCESS) return make_error("nvmlDeviceGetCount failed");
  std::vector<Gpu> gpus;
  std::vector<nvmlDevice_t> handles;
  std::string failure;
  unsigned failed_gpu = 0;
  // One past the limit, to tell "exactly the limit" from "more".
  int n = for_each_nvml_unit(f, count, kShmMaxDevices + 1, [&](nvmlDevice_t d, unsigned gpu, int mig) {
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {0}, name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {0};
    char gpu_uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {0};
    nvmlMemory_t mem{};
    nvmlDevice_t parent = nullptr;
    if (nvmlDeviceGetUUID(d, uuid, sizeof uuid) != NVML_SUCCESS || nvmlDeviceGetName(d, name, sizeof name) != NVML_SUCCESS ||
        nvmlDeviceGetMemoryInfo(d, &mem) != NVML_SUCCESS || nvmlDeviceGetHandleByIndex_v2(gpu, &parent) != NVML_SUCCESS ||
        nvmlDeviceGetUUID(parent, gpu_uuid, sizeof gpu_uuid) != NVML_SUCCESS) {
      if (failure.empty())
        failure = "NVML could not describe GPU " + std::to_string(gpu) + (mig >= 0 ? " MIG device " + std::to_string(mig) : "");
      return;
    }
    Gpu g;
    g.index = static_cast<int>(gpus.size());
    g.uuid = uuid;
    g.name = name;
    g.memory = mem.total;
    g.nvml_index = static_cast<int>(gpu);
    g.mig_index = mig;
    g.gpu_uuid = gpu_uuid;
    if (!parse_uuid(g.uuid, g.uuid_bytes) && failure.empty()) failure = "NVML reported a malformed UUID: " + g.uuid;
    gpus.push_back(g);
    handles.push_back(d);
  }, &failed_gpu);
  if (n < 0) return make_error("NVML could not describe GPU " + std::to_string(failed_gpu));
  if (!failure.empty()) return make_error(failure);
  if (gpus.size() > static_cast<size_t>(kShmMaxDevices))
    return make_error("this node has more than " + std::to_string(kShmMaxDevices) +
                      " GPUs and MIG devices (each GPU not in MIG mode and each MIG device is one unit); vgpud "
                      "manages at most " + std::to_string(kShmMaxDevices) +
                      " (CUDA_VISIBLE_DEVICES is not enough: NVML sees all of them)");
  if (gpus.empty()) return make_error("NVML reports no GPU on this node");
  std::lock_guard<std::mutex> g(g_units_mu);
  g_units = handles;
  return gpus;
}

}  // namespace vgpu::sched
