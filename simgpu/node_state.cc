#include "node_state.h"

#include "vgpu/robust_mutex.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <vector>

namespace simgpu {

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

namespace {

// Reads /proc/<pid>/stat: the state letter (field 3) and starttime (field 22).
bool read_stat(int32_t pid, char* state, uint64_t* start_time) {
  char path[64], buf[1024];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');  // the command name may contain spaces
  if (!p || p[1] != ' ') return false;
  *state = p[2];
  int field = 2;
  for (++p; *p && field < 22; ++p)
    if (*p == ' ') ++field;
  *start_time = std::strtoull(p, nullptr, 10);
  return true;
}

}  // namespace

uint64_t process_start_time(int32_t pid) {
  char state = 0;
  uint64_t start = 0;
  return read_stat(pid, &state, &start) ? start : 0;
}

bool process_alive(int32_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  char state = 0;
  uint64_t start = 0;
  // A zombie has released its GPU resources; a different start time means the
  // pid now belongs to another process.
  if (!read_stat(pid, &state, &start)) return false;
  return state != 'Z' && state != 'X' && start == start_time;
}

void wake_engine(EngineState& e) {
  e.wake.fetch_add(1);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&e.wake), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

namespace {

std::string state_path(const std::string& name) { return "/dev/shm/simgpu-" + name; }

// splitmix64 from a seed: every byte depends on the whole seed.
void hash_uuid(uint64_t h, unsigned char out[16]) {
  for (int i = 0; i < 16; ++i) {
    h += 0x9e3779b97f4a7c15ull;
    uint64_t z = h;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    out[i] = static_cast<unsigned char>(z ^ (z >> 31));
  }
  out[6] = static_cast<unsigned char>((out[6] & 0x0f) | 0x40);  // RFC 4122 v4 shape
  out[8] = static_cast<unsigned char>((out[8] & 0x3f) | 0x80);
}

// Deterministic per node name and entry, so tests can predict it, and
// different on different simulated nodes; `kind` separates GPU and MIG UUIDs.
uint64_t uuid_seed(const std::string& node, int index, uint64_t kind) {
  uint64_t h = 1469598103934665603ull;
  for (char c : node) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  return h ^ (static_cast<uint64_t>(index + 1) * 0x9e3779b97f4a7c15ull) ^ kind;
}

constexpr const char* kGpuName = "NVIDIA H100 80GB HBM3";

void fill_device(DeviceInfo* d, int index, uint64_t memory, const std::string& node) {
  std::memset(d, 0, sizeof *d);
  d->total_memory = memory;
  std::snprintf(d->name, sizeof d->name, "%s (simgpu)", kGpuName);
  hash_uuid(uuid_seed(node, index, 0), d->uuid);
  std::snprintf(d->pci_bus_id, sizeof d->pci_bus_id, "0000:%02x:00.0", 0x18 + index * 0x10);
  d->mig_parent = -1;
  d->sm_count = 132;
}

// Multiprocessors of an H100 SXM MIG device by compute slices.
uint32_t mig_sm_count(int slices) {
  static const uint32_t kSms[] = {0, 16, 32, 60, 64, 80, 96, 132};
  return kSms[slices];
}

// MIG device `mig_index` of GPU `gpu` (entry `index`).
void fill_mig_device(DeviceInfo* d, int index, int gpu, int mig_index, const MigProfile& p, const NodeState& s,
                     const std::string& node) {
  std::memset(d, 0, sizeof *d);
  d->total_memory = p.memory;
  std::snprintf(d->name, sizeof d->name, "%s MIG %s (simgpu)", kGpuName, p.name.c_str());
  hash_uuid(uuid_seed(node, index, 0x4d4947ull << 40), d->uuid);  // "MIG"
  std::memcpy(d->pci_bus_id, s.devices[gpu].pci_bus_id, sizeof d->pci_bus_id);
  d->mig_parent = gpu;
  d->gpu_instance_id = static_cast<uint32_t>(mig_index + 1);
  d->compute_instance_id = 0;
  d->mig_index = static_cast<uint32_t>(mig_index);
  d->sm_count = mig_sm_count(p.slices);
  std::snprintf(d->profile, sizeof d->profile, "%s", p.name.c_str());
}

// The MIG devices SIMGPU_MIG gives GPU `g` (none for a SimConfig built
// without them).
const std::vector<MigProfile>& mig_of(const SimConfig& c, int g) {
  static const std::vector<MigProfile> kNone;
  return static_cast<size_t>(g) < c.mig.size() ? c.mig[static_cast<size_t>(g)] : kNone;
}

// Fills every entry from the configuration: GPUs, then MIG devices.
void fill_devices(NodeState* s, const SimConfig& c) {
  s->gpu_count = static_cast<int32_t>(c.memory.size());
  int n = s->gpu_count;
  for (int i = 0; i < s->gpu_count; ++i) fill_device(&s->devices[i], i, c.memory[i], c.state_name);
  for (int g = 0; g < s->gpu_count; ++g) {
    const auto& list = mig_of(c, g);
    s->devices[g].mig_enabled = list.empty() ? 0 : 1;
    for (size_t m = 0; m < list.size() && n < kMaxDevices; ++m, ++n)
      fill_mig_device(&s->devices[n], n, g, static_cast<int>(m), list[m], *s, c.state_name);
  }
  s->device_count = n;
}

bool any_live_process(NodeState* s) {
  for (auto& p : s->procs)
    if (p.pid.load() != 0 && process_alive(p.pid.load(), p.start_time)) return true;
  return false;
}

void initialize(NodeState* s, const SimConfig& c) {
  std::memset(static_cast<void*>(s), 0, sizeof *s);
  vgpu::init_robust_shared_mutex(&s->lock);
  s->context_overhead = c.context_overhead;
  s->timeslice_ns = c.timeslice_ns;
  fill_devices(s, c);
  for (auto& e : s->engine) e.owner = -1;
  s->layout = kStateLayout;
  std::atomic_thread_fence(std::memory_order_release);
  s->magic = kStateMagic;
}

// A node nobody uses any more takes the current settings in place. The lock
// and the futex words are kept: an NVML observer may hold the mapping.
void reconfigure(NodeState* s, const SimConfig& c) {
  Node probe_lock_only = Node::unowned(s);
  probe_lock_only.lock();
  reap_dead_locked(s);
  s->context_overhead = c.context_overhead;
  s->timeslice_ns = c.timeslice_ns;
  fill_devices(s, c);
  for (int i = 0; i < kMaxDevices; ++i) {
    s->used[i].store(0);
    EngineState& e = s->engine[i];
    e.owner = -1;
    e.running = 0;
    e.slice_end_ns = 0;
    for (auto& w : e.want) w.store(0);
  }
  probe_lock_only.unlock();
}

bool same_shape(const NodeState* s, const SimConfig& c) {
  if (s->gpu_count != static_cast<int32_t>(c.memory.size())) return false;
  if (s->context_overhead != c.context_overhead || s->timeslice_ns != c.timeslice_ns) return false;
  for (int i = 0; i < s->gpu_count; ++i)
    if (s->devices[i].total_memory != c.memory[i]) return false;
  // MIG devices: same profiles in the same order.
  int n = s->gpu_count;
  for (int g = 0; g < s->gpu_count; ++g) {
    for (const MigProfile& p : mig_of(c, g)) {
      if (n >= s->device_count || s->devices[n].mig_parent != g || p.name != s->devices[n].profile) return false;
      ++n;
    }
  }
  return n == s->device_count;
}

// Maps the node's state file, creating or re-configuring it. `under_flock`
// runs while the file lock is still held, so a process claims its slot before
// another process can judge the node unused.
NodeState* map_state(const SimConfig& c, std::string* error, const std::function<void(NodeState*)>& under_flock) {
  std::string path = state_path(c.state_name);
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    *error = "simgpu: cannot open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  fchmod(fd, 0666);
  flock(fd, LOCK_EX);  // serialises creation and re-initialisation
  void* p = MAP_FAILED;
  if (ftruncate(fd, sizeof(NodeState)) == 0)
    p = mmap(nullptr, sizeof(NodeState), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *error = "simgpu: cannot map " + path + ": " + std::strerror(errno);
    flock(fd, LOCK_UN);
    close(fd);
    return nullptr;
  }
  auto* s = static_cast<NodeState*>(p);
  if (s->magic != kStateMagic || s->layout != kStateLayout) {
    initialize(s, c);
  } else if (!same_shape(s, c) && !any_live_process(s)) {
    reconfigure(s, c);
  } else if (!same_shape(s, c)) {
    std::fprintf(stderr,
                 "simgpu: warning: node '%s' is already in use with other SIMGPU_* settings; "
                 "using the node as it is\n", c.state_name.c_str());
  }
  if (under_flock) under_flock(s);
  flock(fd, LOCK_UN);
  close(fd);
  return s;
}

}  // namespace

uint64_t used_memory(const NodeState& s, int d) {
  if (!s.devices[d].mig_enabled) return s.used[d].load();
  uint64_t sum = 0;
  for (int m = s.gpu_count; m < s.device_count; ++m)
    if (s.devices[m].mig_parent == d) sum += s.used[m].load();
  return sum;
}

// Returns everything slot `i` holds (memory, engine share) and frees it.
void release_slot_locked(NodeState* s, int i) {
  ProcessSlot& p = s->procs[i];
  for (int d = 0; d < s->device_count; ++d) {
    s->used[d].fetch_sub(p.used[d].exchange(0));
    // A chunk cut short by death is not credited; the samples it already
    // produced (p.util) stay for NVML with their pid.
    p.run_start_rt_ns[d] = 0;
    EngineState& e = s->engine[d];
    e.want[i] = 0;
    if (e.owner == i) {
      e.owner = -1;
      e.running = 0;
    }
    wake_engine(e);
  }
  p.pid.store(0);
}

void reap_dead_locked(NodeState* s) {
  for (int i = 0; i < kMaxProcesses; ++i) {
    ProcessSlot& p = s->procs[i];
    int32_t pid = p.pid.load();
    if (pid == 0 || process_alive(pid, p.start_time)) continue;
    release_slot_locked(s, i);
  }
}

void Node::lock() {
  // A holder that died inside a critical section leaves the state consistent
  // at each store that matters, so reaping the dead is the whole repair.
  vgpu::lock_robust(&state_->lock, [this] { reap_dead_locked(state_); });
}

void Node::unlock() { pthread_mutex_unlock(&state_->lock); }

namespace {

// Claims a free slot for this process; -1 if all are taken.
int claim_slot(NodeState* s) {
  Node probe = Node::unowned(s);
  probe.lock();
  reap_dead_locked(s);
  int slot = -1;
  for (int i = 0; i < kMaxProcesses && slot < 0; ++i)
    if (s->procs[i].pid.load() == 0) slot = i;
  if (slot >= 0) {
    ProcessSlot& p = s->procs[slot];
    for (int d = 0; d < kMaxDevices; ++d) {
      p.used[d] = 0;
      p.busy_ns[d] = 0;
      p.kernels[d] = 0;
      p.contexts[d] = 0;
      p.run_start_rt_ns[d] = 0;  // p.util keeps the previous owner's samples
    }
    p.start_time = process_start_time(getpid());
    std::memset(p.name, 0, sizeof p.name);
    FILE* f = std::fopen("/proc/self/comm", "r");
    if (f) {
      if (std::fgets(p.name, sizeof p.name, f)) p.name[std::strcspn(p.name, "\n")] = '\0';
      std::fclose(f);
    }
    p.pid.store(getpid());
  }
  probe.unlock();
  return slot;
}

}  // namespace

Node* Node::attach(const SimConfig& c, std::string* error) {
  int slot = -1;
  NodeState* s = map_state(c, error, [&](NodeState* st) { slot = claim_slot(st); });
  if (!s) return nullptr;
  if (slot < 0) {
    *error = "simgpu: node '" + c.state_name + "' has no free process slot (256 in use)";
    return nullptr;
  }
  return new (std::nothrow) Node(s, slot);
}

Node* Node::attach_observer(const SimConfig& c, std::string* error) {
  NodeState* s = map_state(c, error, nullptr);
  return s ? new (std::nothrow) Node(s, -1) : nullptr;
}

bool Node::reserve(int device, uint64_t bytes) {
  std::atomic<uint64_t>& used = state_->used[device];
  const uint64_t total = state_->devices[device].total_memory;
  uint64_t cur = used.load(std::memory_order_relaxed);
  do {
    if (bytes > total || cur > total - bytes) return false;
  } while (!used.compare_exchange_weak(cur, cur + bytes));
  if (int me = slot(); me >= 0) state_->procs[me].used[device].fetch_add(bytes);
  return true;
}

void Node::release(int device, uint64_t bytes) {
  state_->used[device].fetch_sub(bytes);
  if (int me = slot(); me >= 0) state_->procs[me].used[device].fetch_sub(bytes);
}

void Node::reap_dead() {
  lock();
  reap_dead_locked(state_);
  unlock();
}

void Node::detach() {
  if (slot() < 0) return;
  lock();
  release_slot_locked(state_, slot());
  // Under the lock: an executor thread that takes the lock next sees the slot
  // gone before another process can claim it.
  slot_.store(-1, std::memory_order_release);
  unlock();
}

}  // namespace simgpu
