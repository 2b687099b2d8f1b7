// The process-local core of simgpu's NVML (libnvidia-ml.so.1): the reference
// counted initialisation, the observer attachment to the simulated node named
// by SIMGPU_STATE (the same NodeState the simulated driver uses), and device
// handles. Every nvml_*.cc entry point builds on this header.
//
// Thread-safety: everything here is thread-safe. A Session holds a shared lock
// for the duration of one entry point, so a concurrent final nvmlShutdown
// cannot unmap the node under a query; init and shutdown take it exclusively.
#pragma once

#include <cstdint>
#include <shared_mutex>

#include "node_state.h"
#include "vgpu/nvml_subset.h"

#define SIMGPU_NVML_EXPORT extern "C" __attribute__((visibility("default")))

namespace simgpu::nvml {

// nvmlInit*: attaches on the first call (reading SIMGPU_* then), otherwise
// only counts. On failure nothing is counted.
nvmlReturn_t init(unsigned flags);
// nvmlShutdown: UNINITIALIZED if not initialised; detaches on the last call.
nvmlReturn_t shutdown();

// One entry point's view of the initialised library.
class Session {
 public:
  Session();
  ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // NVML_SUCCESS, or NVML_ERROR_UNINITIALIZED before nvmlInit / after the
  // last nvmlShutdown. Check it before anything else.
  nvmlReturn_t status() const { return node_ ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED; }
  Node& node() const { return *node_; }
  NodeState& state() const { return *node_->state(); }
  // Physical GPUs: the NVML device indexes. MIG devices are reached through
  // their GPU (nvml_mig.cc) or their UUID.
  int device_count() const { return node_->state()->gpu_count; }
  // Increments on every fresh attachment (refcount 0 -> 1), so per-process
  // caches keyed on the node can tell that the node may have changed.
  uint64_t generation() const;

  // Resolves a GPU handle issued by this library to its index; UNINITIALIZED
  // first, INVALID_ARGUMENT for NULL, foreign or out-of-range handles, and
  // for MIG device handles (queries that take only GPUs use this).
  nvmlReturn_t device(nvmlDevice_t handle, int* index) const;
  // As device(), but a MIG device handle is accepted too: *entry is then its
  // NodeState entry (>= gpu_count). For the queries NVML documents on MIG
  // device handles (UUID, name, memory, processes, MIG ids).
  nvmlReturn_t any_device(nvmlDevice_t handle, int* entry) const;

 private:
  std::shared_lock<std::shared_mutex> guard_;
  Node* node_;
};

// The stable handle of entry `index` (a GPU or a MIG device; valid across
// init/shutdown cycles, as real NVML handles are).
nvmlDevice_t handle_of(int index);

// Formats the 16 UUID bytes as NVML does: "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
void format_uuid(const unsigned char bytes[16], char out[41]);
// The UUID of an entry: "GPU-..." for a GPU, "MIG-..." (R470+ form) for a MIG device.
void format_entry_uuid(const DeviceInfo& d, char out[41]);

// Copies a NUL-terminated `text` into `out` of `length` bytes, as NVML string
// queries do: INVALID_ARGUMENT for NULL, INSUFFICIENT_SIZE if it does not fit.
nvmlReturn_t copy_string(const char* text, char* out, unsigned length);

}  // namespace simgpu::nvml
