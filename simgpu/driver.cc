#include "driver.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <algorithm>
#include <set>
#include <string>

namespace simgpu {

namespace {
thread_local std::vector<Context*> t_stack;
pid_t g_init_pid = 0;

void atfork_child() { Driver::get().reset_after_fork(); }
// The real driver tears itself down at exit: calls made after that (from
// other threads, later atexit handlers, static destructors) answer
// CUDA_ERROR_DEINITIALIZED ("the CUDA driver is in the process of shutting
// down").
void at_exit() {
  Driver& d = Driver::get();
  if (!d.initialized() || g_init_pid != getpid()) return;
  d.begin_shutdown();
  d.node().detach();
}
}  // namespace

Driver& Driver::get() {
  static Driver* d = new Driver();  // never destroyed: executor threads may outlive exit()
  return *d;
}

CUresult Driver::init(unsigned flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(init_mu_);
  if (initialized()) return CUDA_SUCCESS;
  // As the real driver: a child forked after its parent initialised CUDA can
  // never initialise it (docs/simgpu.md "Real-driver behaviours modelled").
  if (forked_after_init_.load(std::memory_order_acquire)) return CUDA_ERROR_NOT_INITIALIZED;
  auto cfg = load_config_from_env();
  if (!cfg) {
    log_error("%s", cfg.error().c_str());
    return CUDA_ERROR_NO_DEVICE;
  }
  config_ = cfg.value();
  std::string err;
  node_ = Node::attach(config_, &err);
  if (!node_) {
    log_error("%s", err.c_str());
    return CUDA_ERROR_NO_DEVICE;
  }
  static bool hooks_installed = false;
  if (!hooks_installed) {
    pthread_atfork(nullptr, nullptr, atfork_child);
    std::atexit(at_exit);
    hooks_installed = true;
  }
  visible_ = parse_visible_devices(std::getenv("CUDA_VISIBLE_DEVICES"), *node_->state());
  if (visible_.empty()) {
    log_error("CUDA_VISIBLE_DEVICES='%s' leaves no device visible", std::getenv("CUDA_VISIBLE_DEVICES"));
    node_->detach();
    node_ = nullptr;
    return CUDA_ERROR_NO_DEVICE;
  }
  g_init_pid = getpid();
  initialized_.store(true, std::memory_order_release);
  return CUDA_SUCCESS;
}

int Driver::ordinal_of(int physical) const {
  for (size_t i = 0; i < visible_.size(); ++i)
    if (visible_[i] == physical) return static_cast<int>(i);
  return -1;
}

void Driver::reset_after_fork() {
  // The parent's contexts, streams and memory do not exist in the child. The
  // real driver refuses CUDA in a child forked after a successful cuInit: its
  // cuInit and every later call return CUDA_ERROR_NOT_INITIALIZED (checked
  // once per process lineage: a grandchild inherits the mark).
  if (initialized()) forked_after_init_.store(true, std::memory_order_release);
  initialized_.store(false);
  new (&init_mu_) std::mutex();
  node_ = nullptr;
  contexts.clear();
  streams.clear();
  for (auto& p : primary) {
    new (&p.mu) std::mutex();
    p.ctx = nullptr;
    p.refs = 0;
  }
  t_stack.clear();
}

CUresult Driver::create_context(int device, unsigned flags, bool primary_ctx, Context** out) {
  uint64_t overhead = node_->state()->context_overhead;
  if (!node_->reserve(device, overhead)) {
    node_->reap_dead();
    if (!node_->reserve(device, overhead)) return CUDA_ERROR_OUT_OF_MEMORY;
  }
  auto* c = new Context();
  c->device = device;
  c->flags = flags;
  c->primary = primary_ctx;
  c->id = next_ctx_id_.fetch_add(1);
  c->overhead_charged = overhead;
  c->null_stream = std::make_shared<Stream>();
  c->null_stream->ctx = c;
  c->null_stream->is_legacy_null = true;
  if (ProcessSlot* me = node_->self()) me->contexts[device].fetch_add(1);
  contexts.add(c);
  *out = c;
  return CUDA_SUCCESS;
}

void Driver::destroy_context(Context* c) {
  if (!contexts.remove(c)) return;
  c->active.store(false);
  synchronize_context(c);
  std::vector<std::function<void(Context*)>> hooks;
  {
    std::lock_guard<std::mutex> g(hooks_mu_);
    hooks = destroy_hooks_;
  }
  for (auto& h : hooks) h(c);
  std::vector<std::shared_ptr<Stream>> owned;
  {
    std::lock_guard<std::mutex> g(c->mu);
    owned.swap(c->streams);
    c->per_thread.clear();
  }
  for (auto& s : owned) {
    streams.remove(s.get());
    s->shutdown();
  }
  c->null_stream->shutdown();
  node_->release(c->device, c->overhead_charged);
  if (ProcessSlot* me = node_->self()) me->contexts[c->device].fetch_sub(1);
  // The Context object itself is kept (a few hundred bytes) so that a stale
  // handle still current on some thread reads as destroyed, never freed memory.
}

void Driver::on_context_destroy(std::function<void(Context*)> fn) {
  std::lock_guard<std::mutex> g(hooks_mu_);
  destroy_hooks_.push_back(std::move(fn));
}

CUresult require_init() {
  Driver& d = Driver::get();
  if (!d.initialized()) return CUDA_ERROR_NOT_INITIALIZED;
  return d.shutting_down() ? CUDA_ERROR_DEINITIALIZED : CUDA_SUCCESS;
}

CUresult check_device(CUdevice dev) {
  if (CUresult r = require_init()) return r;
  return (dev >= 0 && dev < Driver::get().device_count()) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

Context* tls_current() { return t_stack.empty() ? nullptr : t_stack.back(); }

void tls_set_current(Context* c) {
  if (t_stack.empty()) {
    if (c) t_stack.push_back(c);
  } else if (c) {
    t_stack.back() = c;
  } else {
    t_stack.pop_back();
  }
}

void tls_push(Context* c) { t_stack.push_back(c); }

Context* tls_pop() {
  if (t_stack.empty()) return nullptr;
  Context* c = t_stack.back();
  t_stack.pop_back();
  return c;
}

CUresult current_context(Context** out) {
  if (CUresult r = require_init()) return r;
  Context* c = tls_current();
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  if (!Driver::get().contexts.contains(c)) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  *out = c;
  return CUDA_SUCCESS;
}

CUresult check_context(CUcontext h, Context** out) {
  if (CUresult r = require_init()) return r;
  auto* c = reinterpret_cast<Context*>(h);
  if (!c || !Driver::get().contexts.contains(c)) return CUDA_ERROR_INVALID_CONTEXT;
  *out = c;
  return CUDA_SUCCESS;
}

CUresult not_supported(const char* name) {
  static std::mutex mu;
  static std::set<std::string> logged;
  std::lock_guard<std::mutex> g(mu);
  if (logged.insert(name).second)
    std::fprintf(stderr, "simgpu: %s is not implemented; returning CUDA_ERROR_NOT_SUPPORTED\n", name);
  return CUDA_ERROR_NOT_SUPPORTED;
}

void log_error(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "simgpu: %s\n", buf);
}

}  // namespace simgpu

namespace simgpu {
int unsupported_entry_point(const char* name) { return static_cast<int>(not_supported(name)); }
}  // namespace simgpu

namespace simgpu {

namespace {
std::string uuid_string(const char* prefix, const unsigned char* u) {
  char s[48];
  std::snprintf(s, sizeof s, "%s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", prefix, u[0],
                u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return s;
}

// The entry that runs CUDA work for GPU entry `gpu`: the GPU itself, or, in
// MIG mode, its first MIG device (-1 if it has none).
int cuda_entry_of_gpu(int gpu, const NodeState& node) {
  if (!node.devices[gpu].mig_enabled) return gpu;
  for (int m = node.gpu_count; m < node.device_count; ++m)
    if (node.devices[m].mig_parent == gpu) return m;
  return -1;
}

// The unique entry of `kind` ("GPU" or "MIG") whose UUID starts with `want`.
int match_uuid(const std::string& want, const char* kind, const NodeState& node) {
  bool mig = kind[0] == 'M';
  int found = -1;
  for (int i = 0; i < node.device_count; ++i) {
    if ((node.devices[i].mig_parent >= 0) != mig) continue;
    if (uuid_string(kind, node.devices[i].uuid).rfind(want, 0) == 0) {
      if (found >= 0) return -1;
      found = i;
    }
  }
  return found;
}

// "MIG-GPU-<uuid>/<gpu instance>/<compute instance>" (drivers before R470).
int match_legacy_mig(const std::string& e, const NodeState& node) {
  size_t slash = e.find('/');
  if (slash == std::string::npos) return -1;
  int gpu = match_uuid(e.substr(4, slash - 4), "GPU", node);
  unsigned gi = 0, ci = 0;
  char extra = 0;
  if (gpu < 0 || std::sscanf(e.c_str() + slash, "/%u/%u%c", &gi, &ci, &extra) != 2) return -1;
  for (int m = node.gpu_count; m < node.device_count; ++m)
    if (node.devices[m].mig_parent == gpu && node.devices[m].gpu_instance_id == gi &&
        node.devices[m].compute_instance_id == ci)
      return m;
  return -1;
}

// One entry: an index, a GPU UUID (with or without "GPU-") or a unique prefix
// of one, or a MIG device's UUID ("MIG-<uuid>" or the legacy form). A GPU in
// MIG mode named by index or UUID stands for its first MIG device. -1 if it
// names nothing or more than one device.
int resolve_visible_entry(const std::string& e, const NodeState& node) {
  if (e.empty()) return -1;
  if (e.find_first_not_of("0123456789") == std::string::npos) {
    long i = std::strtol(e.c_str(), nullptr, 10);
    return i < node.gpu_count ? cuda_entry_of_gpu(static_cast<int>(i), node) : -1;
  }
  if (e.rfind("MIG-GPU-", 0) == 0) return match_legacy_mig(e, node);
  if (e.rfind("MIG-", 0) == 0) return match_uuid(e, "MIG", node);
  int gpu = match_uuid(e.rfind("GPU-", 0) == 0 ? e : "GPU-" + e, "GPU", node);
  return gpu < 0 ? -1 : cuda_entry_of_gpu(gpu, node);
}

bool is_mig(int entry, const NodeState& node) { return node.devices[entry].mig_parent >= 0; }
}  // namespace

// CUDA enumerates at most one MIG device per process (NVIDIA's MIG user
// guide: "only enumeration of a single MIG instance is supported"): later MIG
// devices are left out, without ending the list.
std::vector<int> parse_visible_devices(const char* value, const NodeState& node) {
  std::vector<int> out;
  bool have_mig = false;
  auto add = [&](int d) {
    if (is_mig(d, node) && have_mig) return;
    have_mig = have_mig || is_mig(d, node);
    out.push_back(d);
  };
  if (!value) {
    for (int i = 0; i < node.gpu_count; ++i)
      if (int d = cuda_entry_of_gpu(i, node); d >= 0) add(d);
    return out;
  }
  std::string v = value;
  for (size_t pos = 0; pos <= v.size();) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    std::string e = v.substr(pos, comma - pos);
    while (!e.empty() && e.front() == ' ') e.erase(e.begin());
    while (!e.empty() && e.back() == ' ') e.pop_back();
    int d = resolve_visible_entry(e, node);
    if (d < 0 || std::find(out.begin(), out.end(), d) != out.end()) break;  // documented: stop here
    add(d);
    pos = comma + 1;
  }
  return out;
}

}  // namespace simgpu
