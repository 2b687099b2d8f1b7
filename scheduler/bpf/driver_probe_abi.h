// What the BPF programs (driver_probe.bpf.c) and their loader (driver_probe.cc)
// share: the list of probed driver entry points, the per-process record kept
// in the kernel, and the ring-buffer event. C, because the BPF side is C; the
// layouts use fixed-width types only, so both compilers agree on them.
#pragma once

#include <linux/types.h>

// Every probed entry point, once: X(symbol, class). The BPF program for a
// symbol has the symbol's own name, so the loader attaches each program to
// the ELF symbol of the same name. Classes:
//   INIT    cuInit and context creation: only marks the process as seen
//   LAUNCH  kernel and graph launches: counted in the kernel, never an event
//   ALLOC   allocations: counted and one ring-buffer event each (size known)
#define VGPU_DRIVER_PROBES(X)           \
  X(cuInit, INIT)                       \
  X(cuCtxCreate_v2, INIT)               \
  X(cuCtxCreate_v3, INIT)               \
  X(cuCtxCreate_v4, INIT)               \
  X(cuDevicePrimaryCtxRetain, INIT)     \
  X(cuMemAlloc_v2, ALLOC)               \
  X(cuMemAllocPitch_v2, ALLOC)          \
  X(cuMemAllocManaged, ALLOC)           \
  X(cuMemCreate, ALLOC)                 \
  X(cuMemAllocAsync, ALLOC)             \
  X(cuMemAllocAsync_ptsz, ALLOC)        \
  X(cuMemAllocFromPoolAsync, ALLOC)     \
  X(cuMemAllocFromPoolAsync_ptsz, ALLOC) \
  X(cuLaunchKernel, LAUNCH)             \
  X(cuLaunchKernel_ptsz, LAUNCH)        \
  X(cuLaunchKernelEx, LAUNCH)           \
  X(cuLaunchKernelEx_ptsz, LAUNCH)      \
  X(cuLaunchCooperativeKernel, LAUNCH)  \
  X(cuLaunchCooperativeKernel_ptsz, LAUNCH) \
  X(cuGraphLaunch, LAUNCH)              \
  X(cuGraphLaunch_ptsz, LAUNCH)

#define VGPU_PROBE_ENUM(sym, cls) VGPU_FN_##sym,
enum vgpu_driver_fn { VGPU_DRIVER_PROBES(VGPU_PROBE_ENUM) VGPU_FN_COUNT };
#undef VGPU_PROBE_ENUM

// Processes tracked at once. A process not tracked because the table is full
// is counted in `untracked_calls` (a BPF global) instead of being lost silently.
#define VGPU_PROBE_MAX_PROCS 16384

// Per process (key: tgid in the initial pid namespace), updated in the kernel.
// Counters only grow; `alloc_bytes` sums requested sizes (attempts, frees are
// not seen). `exit_ns` is set when the process's main thread exits; the next
// call from the same tgid (a reused pid) starts a fresh record.
struct vgpu_driver_stats {
  __u64 first_seen_ns;  // CLOCK_MONOTONIC, first call into any probed entry point
  __u64 last_ns;        // last probed call
  __u64 exit_ns;        // 0 while the process lives
  __u64 cgroup_id;      // cgroup v2 id at the last init/alloc call
  __u64 launches;
  __u64 allocs;
  __u64 alloc_bytes;
};

enum vgpu_driver_event_kind { VGPU_EV_FIRST_CALL = 1, VGPU_EV_ALLOC = 2 };

// One ring-buffer record: a process's first driver call, or one allocation.
struct vgpu_driver_event {
  __u64 ts_ns;      // CLOCK_MONOTONIC
  __u64 cgroup_id;
  __u64 size;       // requested bytes (ALLOC); 0 for FIRST_CALL
  __u32 pid;        // tgid, initial pid namespace
  __u32 kind;       // enum vgpu_driver_event_kind
  __u32 fn;         // enum vgpu_driver_fn
  __u32 pad;
};
