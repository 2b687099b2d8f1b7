// NodeState: the shared-memory image of one simulated node, mapped by every
// process that uses the same SIMGPU_STATE (/dev/shm/simgpu-<name>). It holds the
// devices, the physical memory in use per device and per process, and one
// execution engine per device. NVML reads the same image.
//
// Thread- and process-safety: fields marked "atomic" may be read without the
// lock; everything else is guarded by `lock`, a robust process-shared mutex (a
// process that dies holding it cannot wedge the node; the next locker repairs).
// Slots of processes that died are reclaimed by reap_dead_locked().
//
// Device entries: devices[0, gpu_count) are the physical GPUs in NVML index
// order; devices[gpu_count, device_count) are MIG devices (SIMGPU_MIG), each
// with its own memory (carved from its GPU's), its own execution engine (MIG
// instances do not time-slice with their siblings) and its own MIG UUID. A GPU
// in MIG mode runs no context itself; its NVML memory is its instances' sum.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "config.h"

namespace simgpu {

constexpr int kMaxProcesses = 256;
constexpr int kUtilBuckets = 64;  // per-process utilization history: 64 sample periods
constexpr uint64_t kStateMagic = 0x53494d4750553031ull;  // "SIMGPU01"
constexpr uint32_t kStateLayout = 6;  // 6: MIG device entries

struct DeviceInfo {
  uint64_t total_memory;
  char name[96];
  unsigned char uuid[16];   // GPU UUID, or MIG UUID of a MIG device
  char pci_bus_id[16];      // a MIG device has its GPU's
  int32_t mig_parent;       // -1: a GPU; else the GPU entry a MIG device is carved from
  uint32_t mig_enabled;     // on a GPU: 1 when it is in MIG mode
  uint32_t gpu_instance_id; // MIG device: its GPU instance (1-based per GPU)
  uint32_t compute_instance_id;  // MIG device: its compute instance (0: the only one)
  uint32_t mig_index;       // MIG device: index among its GPU's MIG devices (NVML)
  uint32_t sm_count;        // multiprocessors of the GPU or MIG device
  char profile[16];         // MIG device: "3g.40gb"
};

// One sample period of one process's engine time on one device, for NVML's
// per-process utilization (see util_samples.h). Guarded by the node lock.
struct UtilBucket {
  int32_t pid;       // the process the time belongs to (kept after it exits)
  uint64_t period;   // index on the sampling grid + 1; 0: empty
  uint64_t busy_ns;  // engine time credited within that period
};

struct ProcessSlot {
  std::atomic<int32_t> pid;         // 0: free
  uint64_t start_time;              // from /proc/<pid>/stat, defeats pid reuse
  std::atomic<uint64_t> used[kMaxDevices];      // device memory held (incl. contexts)
  std::atomic<uint64_t> busy_ns[kMaxDevices];   // engine time consumed
  std::atomic<uint64_t> kernels[kMaxDevices];   // kernels completed
  std::atomic<uint32_t> contexts[kMaxDevices];  // live contexts
  char name[32];                    // comm of the process, for NVML
  // CLOCK_REALTIME ns at which this process's current engine chunk began on
  // each device, 0 when none runs; with `util` it gives per-process
  // utilization (util_samples.h). Both guarded by the lock; `util` outlives
  // the process that wrote it (its entries carry their pid).
  uint64_t run_start_rt_ns[kMaxDevices];
  UtilBucket util[kMaxDevices][kUtilBuckets];
};

// One execution engine per device, time-sliced between processes.
struct EngineState {
  int32_t owner;            // slot holding the timeslice, -1 if none
  int32_t running;          // 1 while a kernel executes
  uint64_t slice_end_ns;    // CLOCK_MONOTONIC end of the owner's timeslice
  std::atomic<uint32_t> want[kMaxProcesses];  // kernels queued, not finished, per slot
  std::atomic<uint32_t> wake;    // futex word: bumped on every hand-over
  std::atomic<uint64_t> busy_ns; // total engine time consumed (atomic)
  uint64_t util_window_start_ns; // NVML utilization sampling
  uint64_t util_window_busy_ns;
  uint32_t last_util_percent;
};

// An allocation exported with cuIpcGetMemHandle, so that an importer in
// another process can tell a live export from a freed one (guarded by `lock`).
constexpr int kMaxIpcExports = 1024;
struct IpcExport {
  int32_t pid;          // exporter; 0: free entry
  int32_t device;
  uint64_t start_time;  // exporter's, defeats pid reuse
  uint64_t serial;      // unique per export on this node
  uint64_t base;
  uint64_t size;
};

struct NodeState {
  uint64_t magic;
  uint32_t layout;
  pthread_mutex_t lock;
  int32_t device_count;   // entries of `devices`: GPUs and MIG devices
  int32_t gpu_count;      // physical GPUs (NVML devices), devices[0, gpu_count)
  uint64_t context_overhead;
  uint64_t timeslice_ns;
  DeviceInfo devices[kMaxDevices];
  std::atomic<uint64_t> used[kMaxDevices];  // physical memory in use per device
  EngineState engine[kMaxDevices];
  ProcessSlot procs[kMaxProcesses];
  uint64_t ipc_next_serial;
  IpcExport ipc[kMaxIpcExports];
};

// A process's attachment to its node. Attach once per process (after fork the
// child attaches anew).
class Node {
 public:
  // Maps (creating or re-initialising when no live process uses it) the node
  // named by config.state_name and claims a process slot. On failure returns
  // nullptr and sets *error.
  static Node* attach(const SimConfig& config, std::string* error);
  // Maps the node read-only-ish for NVML: no slot is claimed. Creates it from
  // `config` if it does not exist yet.
  static Node* attach_observer(const SimConfig& config, std::string* error);

  NodeState* state() const { return state_; }
  // -1 for observers, and after detach(): an executor thread still running
  // at exit() reads it under the lock to learn that its slot is gone.
  int slot() const { return slot_.load(std::memory_order_acquire); }
  // This process's slot; nullptr once detached (exit() ran while other
  // threads or later destructors still call in).
  ProcessSlot* self() const {
    int me = slot();
    return me >= 0 ? &state_->procs[me] : nullptr;
  }

  // Charges `bytes` of physical memory on `device` to this process. Returns
  // false (and changes nothing) if the device does not have that much free.
  bool reserve(int device, uint64_t bytes);
  void release(int device, uint64_t bytes);

  // Returns slots of dead processes (memory, engine share) to the node.
  void reap_dead();

  void lock();
  void unlock();
  // A handle that only locks/unlocks `s` (no slot), for internal maintenance.
  static Node unowned(NodeState* s) { return Node(s, -1); }
  // Releases this process's slot and everything it holds (normal exit).
  void detach();

 private:
  Node(NodeState* s, int slot) : state_(s), slot_(slot) {}
  NodeState* state_;
  std::atomic<int> slot_;
};

// Requires the node lock.
void reap_dead_locked(NodeState* s);
// Bytes in use on entry `d` as the hardware would report it: a GPU in MIG
// mode reports the sum over its MIG devices. Lock-free (atomic reads).
uint64_t used_memory(const NodeState& s, int d);
bool process_alive(int32_t pid, uint64_t start_time);
uint64_t process_start_time(int32_t pid);
uint64_t monotonic_ns();
// Bumps the engine's futex word and wakes every waiter in any process.
void wake_engine(EngineState& e);

}  // namespace simgpu
