// BPF side of DriverProbe: uprobes on the driver library's entry points.
//
// Cost model: a kernel launch can happen 100k times a second, so launches only
// bump a counter in the per-process hash map; the loader reads the map when
// vgpud polls. The ring buffer carries what vgpud must see at once and what is
// rare: a process's first call into the driver, and each allocation.
//
// Built without vmlinux.h: uprobes only read argument registers, so the
// userspace pt_regs layout (asm/ptrace.h) and bpf_tracing.h's PT_REGS_PARMn
// are enough, and the object does not depend on the build machine's kernel.
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <asm-generic/errno-base.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "driver_probe_abi.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, VGPU_PROBE_MAX_PROCS);
  __type(key, __u32);
  __type(value, struct vgpu_driver_stats);
} procs SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} events SEC(".maps");

// Read by the loader through the skeleton's mmapped .bss.
__u64 lost_events = 0;      // ring buffer full: an event was dropped
__u64 untracked_calls = 0;  // procs full: a call from an untracked process

static __always_inline void emit(__u32 kind, __u32 fn, __u32 tgid, __u64 cgroup, __u64 size,
                                 __u64 now) {
  struct vgpu_driver_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&lost_events, 1);
    return;
  }
  e->ts_ns = now;
  e->cgroup_id = cgroup;
  e->size = size;
  e->pid = tgid;
  e->kind = kind;
  e->fn = fn;
  e->pad = 0;
  bpf_ringbuf_submit(e, 0);
}

// A record that belonged to a dead process whose tgid was reused: restart it.
// The compare-and-swap makes exactly one racing thread announce the process.
static __always_inline void restart(struct vgpu_driver_stats *s, __u32 fn, __u32 tgid, __u64 now) {
  __u64 dead = s->exit_ns;
  if (dead == 0 || __sync_val_compare_and_swap(&s->exit_ns, dead, 0) != dead) return;
  __u64 cgroup = bpf_get_current_cgroup_id();
  s->first_seen_ns = now;
  s->cgroup_id = cgroup;
  s->launches = 0;
  s->allocs = 0;
  s->alloc_bytes = 0;
  emit(VGPU_EV_FIRST_CALL, fn, tgid, cgroup, 0, now);
}

// The caller's record, created (and the process announced) on its first call.
// NULL only when the table is full.
static __always_inline struct vgpu_driver_stats *enter(__u32 fn, __u32 tgid, __u64 now) {
  struct vgpu_driver_stats *s = bpf_map_lookup_elem(&procs, &tgid);
  if (s) {
    if (s->exit_ns) restart(s, fn, tgid, now);
    s->last_ns = now;
    return s;
  }
  struct vgpu_driver_stats fresh = {};
  fresh.first_seen_ns = now;
  fresh.last_ns = now;
  fresh.cgroup_id = bpf_get_current_cgroup_id();
  long err = bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST);
  if (err == 0) {
    emit(VGPU_EV_FIRST_CALL, fn, tgid, fresh.cgroup_id, 0, now);
  } else if (err != -EEXIST) {  // -EEXIST: another thread of it won the race
    __sync_fetch_and_add(&untracked_calls, 1);
    return 0;
  }
  return bpf_map_lookup_elem(&procs, &tgid);
}

static __always_inline __u32 current_tgid(void) { return bpf_get_current_pid_tgid() >> 32; }

static __always_inline int on_init(__u32 fn) {
  __u32 tgid = current_tgid();
  struct vgpu_driver_stats *s = enter(fn, tgid, bpf_ktime_get_ns());
  if (s) s->cgroup_id = bpf_get_current_cgroup_id();
  return 0;
}

static __always_inline int on_launch(__u32 fn) {
  struct vgpu_driver_stats *s = enter(fn, current_tgid(), bpf_ktime_get_ns());
  if (s) __sync_fetch_and_add(&s->launches, 1);
  return 0;
}

static __always_inline int on_alloc(__u32 fn, __u64 size) {
  __u32 tgid = current_tgid();
  __u64 now = bpf_ktime_get_ns();
  __u64 cgroup = bpf_get_current_cgroup_id();
  struct vgpu_driver_stats *s = enter(fn, tgid, now);
  if (s) {
    s->cgroup_id = cgroup;
    __sync_fetch_and_add(&s->allocs, 1);
    __sync_fetch_and_add(&s->alloc_bytes, size);
  }
  emit(VGPU_EV_ALLOC, fn, tgid, cgroup, size, now);
  return 0;
}

// Entry points with no argument of interest, one program each.
#define VGPU_PLAIN_PROBE(sym, cls) VGPU_PLAIN_##cls(sym)
#define VGPU_PLAIN_INIT(sym) \
  SEC("uprobe") int sym(struct pt_regs *ctx) { return on_init(VGPU_FN_##sym); }
#define VGPU_PLAIN_LAUNCH(sym) \
  SEC("uprobe") int sym(struct pt_regs *ctx) { return on_launch(VGPU_FN_##sym); }
#define VGPU_PLAIN_ALLOC(sym)  // written out below: each reads its size differently
VGPU_DRIVER_PROBES(VGPU_PLAIN_PROBE)

// cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize)
SEC("uprobe") int BPF_KPROBE(cuMemAlloc_v2, void *dptr, __u64 size) {
  return on_alloc(VGPU_FN_cuMemAlloc_v2, size);
}

// cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width, size_t height,
// unsigned elemSize): the pitch is chosen by the driver, so width*height is the
// least it will take; a product that overflows is reported as the maximum.
SEC("uprobe") int BPF_KPROBE(cuMemAllocPitch_v2, void *dptr, void *pitch, __u64 width,
                             __u64 height) {
  // clang rewrites any overflow test it recognises into a 128-bit multiply,
  // which BPF does not have; the barrier hides the quotient from it.
  __u64 limit = height ? ~0ULL / height : ~0ULL;
  barrier_var(limit);
  __u64 size = width <= limit ? width * height : ~0ULL;
  return on_alloc(VGPU_FN_cuMemAllocPitch_v2, size);
}

// cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned flags)
SEC("uprobe") int BPF_KPROBE(cuMemAllocManaged, void *dptr, __u64 size) {
  return on_alloc(VGPU_FN_cuMemAllocManaged, size);
}

// cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, prop, flags)
SEC("uprobe") int BPF_KPROBE(cuMemCreate, void *handle, __u64 size) {
  return on_alloc(VGPU_FN_cuMemCreate, size);
}

// cuMemAllocAsync[_ptsz](CUdeviceptr* dptr, size_t bytesize, CUstream stream)
SEC("uprobe") int BPF_KPROBE(cuMemAllocAsync, void *dptr, __u64 size) {
  return on_alloc(VGPU_FN_cuMemAllocAsync, size);
}
SEC("uprobe") int BPF_KPROBE(cuMemAllocAsync_ptsz, void *dptr, __u64 size) {
  return on_alloc(VGPU_FN_cuMemAllocAsync_ptsz, size);
}

// cuMemAllocFromPoolAsync[_ptsz](CUdeviceptr* dptr, size_t bytesize, pool, stream)
SEC("uprobe") int BPF_KPROBE(cuMemAllocFromPoolAsync, void *dptr, __u64 size) {
  return on_alloc(VGPU_FN_cuMemAllocFromPoolAsync, size);
}
SEC("uprobe") int BPF_KPROBE(cuMemAllocFromPoolAsync_ptsz, void *dptr, __u64 size) {
  return on_alloc(VGPU_FN_cuMemAllocFromPoolAsync_ptsz, size);
}

// Every entry point through one program, for a single uprobe_multi link
// (Linux >= 6.6): the link's BPF cookie for each offset is the entry point's
// vgpu_driver_fn. One link detaches with one RCU wait instead of one per
// probe, so vgpud stops in milliseconds rather than ~0.1 s per probe. Loaded
// only when the kernel takes such a link; otherwise the per-symbol programs
// above are attached one by one.
static __always_inline __u64 alloc_size(__u32 fn, struct pt_regs *ctx) {
  if (fn == VGPU_FN_cuMemAllocPitch_v2) {
    __u64 width = PT_REGS_PARM3(ctx), height = PT_REGS_PARM4(ctx);
    __u64 limit = height ? ~0ULL / height : ~0ULL;
    barrier_var(limit);
    return width <= limit ? width * height : ~0ULL;
  }
  return PT_REGS_PARM2(ctx);  // every other allocation entry point: (out, size, ...)
}

SEC("uprobe") int vgpu_driver_call(struct pt_regs *ctx) {
  __u32 fn = (__u32)bpf_get_attach_cookie(ctx);
  switch (fn) {
#define VGPU_MULTI_INIT(sym) return on_init(VGPU_FN_##sym);
#define VGPU_MULTI_LAUNCH(sym) return on_launch(VGPU_FN_##sym);
#define VGPU_MULTI_ALLOC(sym) return on_alloc(VGPU_FN_##sym, alloc_size(VGPU_FN_##sym, ctx));
#define VGPU_MULTI_CASE(sym, cls) case VGPU_FN_##sym: VGPU_MULTI_##cls(sym)
    VGPU_DRIVER_PROBES(VGPU_MULTI_CASE)
  }
  return 0;
}

// A process's main thread exits: mark its record so vgpud can read the final
// counts and forget it, and so a reused tgid is announced as a new process.
// Other threads' exits (pid != tgid) are ignored.
// A raw tracepoint, attached by name: needs no tracefs mount.
SEC("raw_tp/sched_process_exit") int on_process_exit(void *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 tgid = id >> 32;
  if ((__u32)id != tgid) return 0;
  struct vgpu_driver_stats *s = bpf_map_lookup_elem(&procs, &tgid);
  if (s) s->exit_ns = bpf_ktime_get_ns();
  return 0;
}
