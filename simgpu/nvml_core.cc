#include "nvml_core.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>

#include "config.h"

// Opaque to applications; a handle is the address of one of these.
struct nvmlDevice_st {
  int index;
};

namespace simgpu::nvml {
namespace {

std::shared_mutex g_mu;         // shared: entry points; exclusive: init/shutdown
Node* g_node = nullptr;         // guarded by g_mu
unsigned g_refs = 0;            // guarded by g_mu
std::atomic<uint64_t> g_generation{0};
nvmlDevice_st g_devices[kMaxDevices] = {{0}, {1}, {2},  {3},  {4},  {5},  {6},  {7},
                                       {8}, {9}, {10}, {11}, {12}, {13}, {14}, {15}};
static_assert(kMaxDevices == 16, "one handle per entry");

constexpr unsigned kKnownInitFlags = NVML_INIT_FLAG_NO_GPUS | NVML_INIT_FLAG_NO_ATTACH;

// A configuration problem is reported once per process, not on every retry
// of a polling tool.
void report_once(const std::string& message) {
  static std::atomic<bool> reported{false};
  if (!reported.exchange(true)) std::fprintf(stderr, "simgpu nvml: %s\n", message.c_str());
}

// A simulated node always has at least one device, so NVML_INIT_FLAG_NO_GPUS
// changes nothing here.
nvmlReturn_t attach() {
  auto config = load_config_from_env();
  if (!config) {
    // nvmlInit documents NVML_ERROR_UNKNOWN for unexpected failures; a
    // malformed simulated-driver setting is the closest to that.
    report_once(config.error());
    return NVML_ERROR_UNKNOWN;
  }
  std::string error;
  Node* node = Node::attach_observer(*config, &error);
  if (!node) {
    // The node state is the simulated driver: not reachable means not loaded.
    report_once(error);
    return NVML_ERROR_DRIVER_NOT_LOADED;
  }
  g_node = node;
  g_generation.fetch_add(1);
  return NVML_SUCCESS;
}

}  // namespace

nvmlReturn_t init(unsigned flags) {
  if (flags & ~kKnownInitFlags) return NVML_ERROR_INVALID_ARGUMENT;
  std::unique_lock<std::shared_mutex> g(g_mu);
  if (g_refs == 0)
    if (nvmlReturn_t r = attach()) return r;
  ++g_refs;
  return NVML_SUCCESS;
}

nvmlReturn_t shutdown() {
  std::unique_lock<std::shared_mutex> g(g_mu);
  if (g_refs == 0) return NVML_ERROR_UNINITIALIZED;
  if (--g_refs == 0) {
    munmap(g_node->state(), sizeof(NodeState));  // an observer owns only its mapping
    delete g_node;
    g_node = nullptr;
  }
  return NVML_SUCCESS;
}

Session::Session() : guard_(g_mu), node_(g_node) {}

uint64_t Session::generation() const { return g_generation.load(); }

nvmlReturn_t Session::device(nvmlDevice_t handle, int* index) const {
  if (!node_) return NVML_ERROR_UNINITIALIZED;
  // Compare addresses instead of dereferencing: a foreign pointer is an
  // error code, never a crash.
  for (int i = 0; i < device_count(); ++i) {
    if (handle == &g_devices[i]) {
      *index = i;
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_INVALID_ARGUMENT;
}

nvmlReturn_t Session::any_device(nvmlDevice_t handle, int* entry) const {
  if (!node_) return NVML_ERROR_UNINITIALIZED;
  for (int i = 0; i < node_->state()->device_count; ++i) {
    if (handle == &g_devices[i]) {
      *entry = i;
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_INVALID_ARGUMENT;
}

nvmlDevice_t handle_of(int index) { return &g_devices[index]; }

namespace {
void format_prefixed(const char* prefix, const unsigned char b[16], char out[41]) {
  std::snprintf(out, 41, "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", prefix,
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
                b[13], b[14], b[15]);
}
}  // namespace

void format_uuid(const unsigned char b[16], char out[41]) { format_prefixed("GPU", b, out); }

void format_entry_uuid(const DeviceInfo& d, char out[41]) {
  format_prefixed(d.mig_parent >= 0 ? "MIG" : "GPU", d.uuid, out);
}

nvmlReturn_t copy_string(const char* text, char* out, unsigned length) {
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  size_t need = std::strlen(text) + 1;
  if (length < need) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(out, text, need);
  return NVML_SUCCESS;
}

}  // namespace simgpu::nvml

// The header is hand-written from NVML's documentation; these pin the layouts
// that must match the real libnvidia-ml.so.1 (LP64).
static_assert(sizeof(nvmlMemory_t) == 24);
static_assert(sizeof(nvmlMemory_v2_t) == 40 && nvmlMemory_v2 == 0x02000028u);
static_assert(sizeof(nvmlProcessInfo_v1_t) == 16 && sizeof(nvmlProcessInfo_t) == 24);
static_assert(sizeof(nvmlUtilization_t) == 8 && sizeof(nvmlPciInfo_t) == 68);
static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32 && sizeof(nvmlProcessUtilizationInfo_v1_t) == 40);
static_assert(sizeof(nvmlProcessesUtilizationInfo_v1_t) == 24 && nvmlProcessesUtilizationInfo_v1 == 0x01000018u);
