// DriverProbe: loads driver_probe.bpf.c through its bpftool skeleton and
// attaches one uprobe per driver entry point found in the library.
#include "driver_probe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

#include "driver_probe.skel.h"
#include "driver_probe_abi.h"
#include "elf_symbols.h"

namespace vgpu::sched {
namespace {

// enum bpf_attach_type's BPF_TRACE_UPROBE_MULTI (Linux >= 6.6; absent from
// Debian 12's 6.1 UAPI headers).
constexpr uint32_t kTraceUprobeMulti = 48;

#define VGPU_PROBE_NAME(sym, cls) #sym,
constexpr const char* kProbeNames[VGPU_FN_COUNT] = {VGPU_DRIVER_PROBES(VGPU_PROBE_NAME)};
#undef VGPU_PROBE_NAME
#define VGPU_PROBE_IS_LAUNCH(sym, cls) (std::string_view(#cls) == "LAUNCH"),
constexpr bool kIsLaunch[VGPU_FN_COUNT] = {VGPU_DRIVER_PROBES(VGPU_PROBE_IS_LAUNCH)};
#undef VGPU_PROBE_IS_LAUNCH

// libbpf reports details through a global print callback; by default it
// writes to stderr. vgpud logs through its own logger, so the last warning is
// kept (per thread) and quoted in the error this class returns instead.
thread_local std::string t_libbpf_last;

int capture_libbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char line[512];
  int n = std::vsnprintf(line, sizeof line, fmt, args);
  std::string text(line, n < 0 ? 0 : std::min<size_t>(static_cast<size_t>(n), sizeof line - 1));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (!text.empty()) t_libbpf_last = std::move(text);
  return 0;
}

void route_libbpf_messages() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(capture_libbpf); });
}

std::string libbpf_detail() {
  return t_libbpf_last.empty() ? std::string() : " (libbpf: " + t_libbpf_last + ")";
}

// Why loading failed, in the terms an operator acts on.
std::string load_failure(int err) {
  if (err == EPERM || err == EACCES)
    return "not permitted to load BPF programs: vgpud needs CAP_BPF and CAP_PERFMON (or root); "
           "inside a container grant them, or run vgpud privileged";
  if (err == EINVAL || err == ENOTSUP || err == EOPNOTSUPP || err == ENOSYS)
    return std::string("the kernel refused the BPF programs (") + std::strerror(err) +
           "): driver probes need Linux >= 5.8 with BPF ring buffers and uprobes" + libbpf_detail();
  return std::string("loading the BPF programs failed: ") + std::strerror(err) + libbpf_detail();
}

// Uprobes are created through the "uprobe" perf PMU, or, on old kernels, the
// tracefs uprobe_events file; with neither, every attach would fail alike.
bool kernel_has_uprobes() {
  return access("/sys/bus/event_source/devices/uprobe/type", R_OK) == 0 ||
         access("/sys/kernel/tracing/uprobe_events", F_OK) == 0 ||
         access("/sys/kernel/debug/tracing/uprobe_events", F_OK) == 0;
}

Result<std::string> resolve_library(const std::string& library) {
  if (library.empty()) return make_error("driver library path is empty");
  char resolved[PATH_MAX];
  if (!realpath(library.c_str(), resolved))
    return make_error("driver library " + library + ": " + std::strerror(errno));
  if (access(resolved, R_OK) != 0)
    return make_error("driver library " + std::string(resolved) + ": " + std::strerror(errno));
  return std::string(resolved);
}

}  // namespace

Result<std::unique_ptr<DriverProbe>> DriverProbe::attach(const std::string& library,
                                                         const DriverProbeOptions& options) {
  route_libbpf_messages();
  t_libbpf_last.clear();
  auto path = resolve_library(library);
  if (!path) return make_error(path.error());
  std::unique_ptr<DriverProbe> probe(new DriverProbe());
  probe->library_ = *path;
  if (options.uprobe_multi) {
    if (auto loaded = probe->load(true); !loaded) return make_error(loaded.error());
    int err = 0;
    if (auto linked = probe->attach_multi(options, &err); linked) {
      probe->attach_exit_tracking();
      return probe;
    } else if (err != EINVAL && err != E2BIG && err != EOPNOTSUPP && err != ENOSYS && err != 524 /* ENOTSUPP */) {
      return make_error(linked.error());
    }
    probe->unload();  // the kernel has no uprobe_multi links: one uprobe per entry point
  }
  if (auto loaded = probe->load(false); !loaded) return make_error(loaded.error());
  if (auto linked = probe->attach_all(options); !linked) return make_error(linked.error());
  probe->attach_exit_tracking();
  return probe;
}

Result<bool> DriverProbe::load(bool multi) {
  skel_ = driver_probe_bpf__open();
  if (!skel_) return make_error(load_failure(errno));
  bpf_program* multi_prog = skel_->progs.vgpu_driver_call;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel_->obj) {
    if (prog != skel_->progs.on_process_exit) bpf_program__set_autoload(prog, (prog == multi_prog) == multi);
  }
  if (multi) bpf_program__set_expected_attach_type(multi_prog, static_cast<bpf_attach_type>(kTraceUprobeMulti));
  if (int rc = driver_probe_bpf__load(skel_); rc != 0) return make_error(load_failure(-rc));
  ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.events), &DriverProbe::on_sample, this, nullptr);
  if (!ring_) return make_error(std::string("BPF ring buffer: ") + std::strerror(errno));
  return true;
}

Result<bool> DriverProbe::attach_all(const DriverProbeOptions& options) {
  if (!kernel_has_uprobes())
    return make_error("the kernel has no uprobe support (CONFIG_UPROBE_EVENTS): driver calls "
                      "cannot be observed");
  for (int fn = 0; fn < VGPU_FN_COUNT; ++fn) {
    if (kIsLaunch[fn] && !options.launches) continue;
    const char* name = kProbeNames[fn];
    bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, name);
    bpf_uprobe_opts opts{};
    opts.sz = sizeof opts;
    opts.func_name = name;  // libbpf resolves the ELF symbol's file offset
    bpf_link* link = prog ? bpf_program__attach_uprobe_opts(prog, -1, library_.c_str(), 0, &opts)
                          : nullptr;
    int err = link ? 0 : (prog ? errno : ENOENT);
    if (link) {
      links_.push_back(link);
      attached_.emplace_back(name);
    } else if (err == ENOENT || err == ESRCH) {
      missing_.emplace_back(name);  // the library does not export it
    } else {
      return make_error("attaching a uprobe to " + std::string(name) + " in " + library_ + ": " +
                        std::strerror(err) + libbpf_detail());
    }
  }
  if (attached_.empty())
    return make_error("driver library " + library_ +
                      " exports none of the CUDA driver entry points (cuInit, cuMemAlloc_v2, "
                      "cuLaunchKernel...): is it libcuda.so?");
  return true;
}

// union bpf_attr as BPF_LINK_CREATE reads it for BPF_TRACE_UPROBE_MULTI
// (Linux >= 6.6). Debian 12's kernel headers (6.1) predate it, so the layout
// is spelled out here: four u32, then the uprobe_multi member at offset 16.
struct UprobeMultiLinkAttr {
  uint32_t prog_fd = 0;
  uint32_t target_fd = 0;
  uint32_t attach_type = 0;
  uint32_t flags = 0;
  uint64_t path = 0;             // const char*
  uint64_t offsets = 0;          // const unsigned long* file offsets
  uint64_t ref_ctr_offsets = 0;  // none
  uint64_t cookies = 0;          // const __u64*: the vgpu_driver_fn of each offset
  uint32_t cnt = 0;
  uint32_t multi_flags = 0;      // 0: entry probes
  uint32_t pid = 0;              // 0: every process
  uint32_t reserved = 0;
};
static_assert(sizeof(UprobeMultiLinkAttr) == 64, "bpf_attr link_create layout");

Result<bool> DriverProbe::attach_multi(const DriverProbeOptions& options, int* err) {
  *err = 0;
  if (!kernel_has_uprobes())
    return make_error("the kernel has no uprobe support (CONFIG_UPROBE_EVENTS): driver calls "
                      "cannot be observed");
  std::vector<std::string> wanted;
  std::vector<int> fns;
  for (int fn = 0; fn < VGPU_FN_COUNT; ++fn) {
    if (kIsLaunch[fn] && !options.launches) continue;
    wanted.emplace_back(kProbeNames[fn]);
    fns.push_back(fn);
  }
  auto offsets = elf_function_offsets(library_, wanted);
  if (!offsets) return make_error("driver library " + library_ + ": " + offsets.error());
  std::vector<unsigned long> where;
  std::vector<uint64_t> cookies;
  std::vector<std::string> attached, missing;
  for (size_t i = 0; i < wanted.size(); ++i) {
    auto it = offsets->find(wanted[i]);
    if (it == offsets->end()) {
      missing.push_back(wanted[i]);
      continue;
    }
    where.push_back(static_cast<unsigned long>(it->second));
    cookies.push_back(static_cast<uint64_t>(fns[i]));
    attached.push_back(wanted[i]);
  }
  if (attached.empty())
    return make_error("driver library " + library_ +
                      " exports none of the CUDA driver entry points (cuInit, cuMemAlloc_v2, "
                      "cuLaunchKernel...): is it libcuda.so?");
  UprobeMultiLinkAttr attr;
  attr.prog_fd = static_cast<uint32_t>(bpf_program__fd(skel_->progs.vgpu_driver_call));
  attr.attach_type = kTraceUprobeMulti;
  attr.path = reinterpret_cast<uint64_t>(library_.c_str());
  attr.offsets = reinterpret_cast<uint64_t>(where.data());
  attr.cookies = reinterpret_cast<uint64_t>(cookies.data());
  attr.cnt = static_cast<uint32_t>(where.size());
  long fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof attr);
  if (fd < 0) {
    *err = errno;
    return make_error("attaching the driver probes to " + library_ + ": " + std::strerror(errno));
  }
  multi_fd_ = static_cast<int>(fd);
  attached_ = std::move(attached);
  missing_ = std::move(missing);
  return true;
}

// Exit tracking is a convenience (final counts, reused pids); without it
// vgpud still forgets processes it knows are dead.
void DriverProbe::attach_exit_tracking() {
  if (bpf_link* link = bpf_program__attach(skel_->progs.on_process_exit))
    links_.push_back(link);
  else
    missing_.emplace_back("raw_tp:sched_process_exit");
}

void DriverProbe::unload() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
  links_.clear();
  if (multi_fd_ >= 0) close(multi_fd_);
  multi_fd_ = -1;
  if (ring_) ring_buffer__free(ring_);
  ring_ = nullptr;
  if (skel_) driver_probe_bpf__destroy(skel_);
  skel_ = nullptr;
  attached_.clear();
  missing_.clear();
}

DriverProbe::~DriverProbe() { unload(); }

int DriverProbe::fd() const { return ring_buffer__epoll_fd(ring_); }

int DriverProbe::on_sample(void* self, void* data, size_t size) {
  auto* probe = static_cast<DriverProbe*>(self);
  vgpu_driver_event raw;
  if (size < sizeof raw || !probe->on_event_) return 0;
  std::memcpy(&raw, data, sizeof raw);
  if (raw.kind != VGPU_EV_FIRST_CALL && raw.kind != VGPU_EV_ALLOC) return 0;
  DriverEvent event;
  event.kind = raw.kind == VGPU_EV_ALLOC ? DriverEvent::Kind::kAlloc : DriverEvent::Kind::kFirstCall;
  event.pid = static_cast<int32_t>(raw.pid);
  event.cgroup_id = raw.cgroup_id;
  event.size = raw.size;
  event.ts_ns = raw.ts_ns;
  event.function = raw.fn < VGPU_FN_COUNT ? kProbeNames[raw.fn] : "unknown";
  (*probe->on_event_)(event);
  return 0;
}

void DriverProbe::consume(const std::function<void(const DriverEvent&)>& on_event) {
  on_event_ = &on_event;
  ring_buffer__consume(ring_);
  on_event_ = nullptr;
}

std::map<int32_t, DriverCounts> DriverProbe::counts() const {
  std::map<int32_t, DriverCounts> out;
  int map_fd = bpf_map__fd(skel_->maps.procs);
  __u32 key = 0, next = 0;
  const __u32* prev = nullptr;
  // Entries deleted while walking make the walk restart from the first key;
  // the bound keeps a busy table from holding the caller forever.
  for (int steps = 0; steps < 2 * VGPU_PROBE_MAX_PROCS; ++steps) {
    if (bpf_map_get_next_key(map_fd, prev, &next) != 0) break;
    key = next;
    prev = &key;
    vgpu_driver_stats s;
    if (bpf_map_lookup_elem(map_fd, &key, &s) != 0) continue;
    out[static_cast<int32_t>(key)] = DriverCounts{s.launches, s.allocs,  s.alloc_bytes, s.first_seen_ns,
                                                  s.last_ns,  s.exit_ns, s.cgroup_id};
  }
  return out;
}

void DriverProbe::forget(int32_t pid) {
  __u32 key = static_cast<__u32>(pid);
  bpf_map_delete_elem(bpf_map__fd(skel_->maps.procs), &key);
}

uint64_t DriverProbe::lost_events() const {
  return __atomic_load_n(&skel_->bss->lost_events, __ATOMIC_RELAXED);
}

uint64_t DriverProbe::untracked_calls() const {
  return __atomic_load_n(&skel_->bss->untracked_calls, __ATOMIC_RELAXED);
}

}  // namespace vgpu::sched
