#include "gpu_inventory.h"

#include "vgpu/tenant_shm.h"

#include <dlfcn.h>

#include <cctype>
#include <cstring>

#include "vgpu/nvml_subset.h"

namespace vgpu::sched {

bool parse_uuid(const std::string& s, unsigned char out[16]) {
  std::string hex;
  for (char c : (s.rfind("GPU-", 0) == 0 ? s.substr(4) : s))
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

Result<int> resolve_gpu(const std::vector<Gpu>& gpus, const std::string& entry) {
  if (!entry.empty() && entry.find_first_not_of("0123456789") == std::string::npos) {
    long i = std::strtol(entry.c_str(), nullptr, 10);
    if (i < static_cast<long>(gpus.size())) return static_cast<int>(i);
    return make_error("GPU index " + entry + " does not exist (this node has " + std::to_string(gpus.size()) +
                      " GPUs)");
  }
  std::string want = entry.rfind("GPU-", 0) == 0 ? entry : "GPU-" + entry;
  int found = -1;
  for (const Gpu& g : gpus)
    if (g.uuid.rfind(want, 0) == 0) {
      if (found >= 0) return make_error("'" + entry + "' matches more than one GPU");
      found = g.index;
    }
  if (found < 0) return make_error("no GPU has UUID '" + entry + "'");
  return found;
}

GpuReading read_gpu(int index) {
  static void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  GpuReading r;
  if (!lib) return r;
  static auto handle_fn = reinterpret_cast<PFN_nvmlDeviceGetHandleByIndex_v2>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  static auto mem_fn = reinterpret_cast<PFN_nvmlDeviceGetMemoryInfo>(dlsym(lib, "nvmlDeviceGetMemoryInfo"));
  static auto util_fn = reinterpret_cast<PFN_nvmlDeviceGetUtilizationRates>(dlsym(lib, "nvmlDeviceGetUtilizationRates"));
  nvmlDevice_t d;
  nvmlMemory_t mem{};
  nvmlUtilization_t util{};
  if (!handle_fn || !mem_fn || !util_fn || handle_fn(static_cast<unsigned>(index), &d) != NVML_SUCCESS) return r;
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
  if (nvmlReturn_t r = nvmlInit_v2(); r != NVML_SUCCESS)
    return make_error("nvmlInit failed with error " + std::to_string(r));
  unsigned count = 0;
  if (nvmlDeviceGetCount_v2(&count) != NVML_SUCCESS) return make_error("nvmlDeviceGetCount failed");
  if (count > static_cast<unsigned>(kShmMaxDevices))
    return make_error("this node has " + std::to_string(count) + " GPUs; vgpud manages at most " +
                      std::to_string(kShmMaxDevices) + " (limit them with CUDA_VISIBLE_DEVICES is not enough: "
                      "NVML sees all of them)");
  std::vector<Gpu> gpus;
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t d;
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {0}, name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {0};
    nvmlMemory_t mem{};
    if (nvmlDeviceGetHandleByIndex_v2(i, &d) != NVML_SUCCESS || nvmlDeviceGetUUID(d, uuid, sizeof uuid) != NVML_SUCCESS ||
        nvmlDeviceGetName(d, name, sizeof name) != NVML_SUCCESS || nvmlDeviceGetMemoryInfo(d, &mem) != NVML_SUCCESS)
      return make_error("NVML could not describe GPU " + std::to_string(i));
    Gpu g;
    g.index = static_cast<int>(i);
    g.uuid = uuid;
    g.name = name;
    g.memory = mem.total;
    if (!parse_uuid(g.uuid, g.uuid_bytes)) return make_error("NVML reported a malformed UUID: " + g.uuid);
    gpus.push_back(g);
  }
  if (gpus.empty()) return make_error("NVML reports no GPU on this node");
  return gpus;
}

}  // namespace vgpu::sched
