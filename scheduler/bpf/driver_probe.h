// DriverProbe: sees every process that calls into the GPU driver library, as it
// happens, through eBPF uprobes on the library's entry points (issue #8 item 4).
// It does not depend on a process registering with vgpud or loading libvgpu.so:
// the probes sit on the library file itself (its inode), so every process that
// maps it is seen, whatever its environment or dlopen flags.
//
// What it reports, per process (tgid in the initial pid namespace):
//   - a kFirstCall event at its first call into any probed entry point;
//   - a kAlloc event per allocation call with the requested size (before the
//     driver decides; failed attempts are reported too);
//   - counts(): launches, allocations and requested bytes, aggregated in the
//     kernel (launches never produce events: they can be 100k/s).
// All sizes and counts come from arguments the tenant chose; they say what a
// process asked for, and vgpud must bound-check them like any tenant input.
//
// Thread-safety: consume() must not run concurrently with itself (one event
// loop owns it). counts(), forget(), lost_events(), attached() and missing()
// may be called from any thread. Destroying the probe detaches everything.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vgpu/result.h"

struct driver_probe_bpf;
struct ring_buffer;
struct bpf_link;

namespace vgpu::sched {

struct DriverEvent {
  enum class Kind { kFirstCall, kAlloc };
  Kind kind = Kind::kFirstCall;
  int32_t pid = 0;         // tgid, initial pid namespace
  uint64_t cgroup_id = 0;  // cgroup v2 id (the inode number of the cgroup directory)
  uint64_t size = 0;       // requested bytes for kAlloc; 0 for kFirstCall
  uint64_t ts_ns = 0;      // CLOCK_MONOTONIC
  std::string function;    // the entry point, e.g. "cuMemAlloc_v2"
};

struct DriverCounts {
  uint64_t launches = 0;
  uint64_t allocs = 0;
  uint64_t alloc_bytes = 0;  // sum of requested sizes; frees are not seen
  uint64_t first_seen_ns = 0;
  uint64_t last_ns = 0;
  uint64_t exit_ns = 0;  // CLOCK_MONOTONIC time its main thread exited; 0 while alive
  uint64_t cgroup_id = 0;
};

// What to probe. Each probed call costs the calling thread a uprobe trap (see
// docs/security.md: ~1-3 us on bare metal, ~28 us measured in a Firecracker
// VM); launch entry points are the hot ones, so a node can leave them out and
// keep first-call and allocation detection.
struct DriverProbeOptions {
  bool launches = true;  // cuLaunchKernel*, cuLaunchCooperativeKernel*, cuGraphLaunch*
  // One uprobe_multi link for all entry points where the kernel has it
  // (Linux >= 6.6); otherwise, or when false, one uprobe per entry point.
  // Detaching per-entry uprobes waits ~0.1 s each (serialised in the kernel);
  // a multi link detaches at once.
  bool uprobe_multi = true;
};

class DriverProbe {
 public:
  // Loads the BPF programs and attaches them to `library` (a path to the
  // driver library, e.g. /usr/lib/x86_64-linux-gnu/libcuda.so.1; symlinks are
  // resolved, so the probes sit on the file the dynamic loader really maps).
  // Entry points the library lacks are skipped and listed by missing();
  // entry points left out by `options` are in neither list.
  // Fails, with a message in operator terms, when the library is missing or
  // exports none of the entry points, when this process may not load BPF
  // (CAP_BPF + CAP_PERFMON, or root), or when the kernel lacks uprobes or
  // BPF ring buffers (Linux >= 5.8 with CONFIG_UPROBE_EVENTS).
  static Result<std::unique_ptr<DriverProbe>> attach(const std::string& library,
                                                     const DriverProbeOptions& options = {});
  ~DriverProbe();
  DriverProbe(const DriverProbe&) = delete;
  DriverProbe& operator=(const DriverProbe&) = delete;

  // Readable (EPOLLIN) when events are pending; for vgpud's event loop.
  int fd() const;
  // Delivers every pending event to `on_event`, in order; never blocks.
  void consume(const std::function<void(const DriverEvent&)>& on_event);
  // Per-tgid aggregates, read from the kernel map (one syscall per process).
  std::map<int32_t, DriverCounts> counts() const;
  // Drops a process's record (vgpud calls this once it has read the final
  // counts of a dead process). Unknown pids are ignored.
  void forget(int32_t pid);
  // Events dropped because the ring buffer was full (vgpud was not reading),
  // and calls not counted because the per-process table was full.
  uint64_t lost_events() const;
  uint64_t untracked_calls() const;

  const std::string& library() const { return library_; }  // resolved path
  std::vector<std::string> attached() const { return attached_; }
  std::vector<std::string> missing() const { return missing_; }
  // True if the entry points are attached through one uprobe_multi link.
  bool multi_link() const { return multi_fd_ >= 0; }

 private:
  DriverProbe() = default;
  // Loads either the single multi-link program or the per-symbol ones.
  Result<bool> load(bool multi);
  Result<bool> attach_all(const DriverProbeOptions& options);
  // Attaches every wanted entry point in one uprobe_multi link. Fails with
  // errno in *err (EINVAL, E2BIG, EOPNOTSUPP... on kernels without it).
  Result<bool> attach_multi(const DriverProbeOptions& options, int* err);
  void attach_exit_tracking();
  void unload();
  static int on_sample(void* self, void* data, size_t size);

  std::string library_;
  driver_probe_bpf* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  std::vector<bpf_link*> links_;
  int multi_fd_ = -1;  // the uprobe_multi link, when used
  std::vector<std::string> attached_, missing_;
  const std::function<void(const DriverEvent&)>* on_event_ = nullptr;  // during consume()
};

}  // namespace vgpu::sched
