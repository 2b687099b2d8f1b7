// simgpu's process-local driver core: initialisation, devices, contexts, the
// per-thread context stack, handle validation and per-context resource lists.
// Every api_*.cc file builds on this header. Handles given to the application
// are pointers to the objects below; every entry point validates a handle
// against its table before use, so a stale or foreign handle is an error code,
// never a crash.
//
// Thread-safety: all functions here are thread-safe unless noted.
#pragma once

#define __CUDA_API_VERSION_INTERNAL 1  // exact legacy and versioned prototypes
#include <cuda.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "config.h"
#include "node_state.h"

namespace simgpu {

struct Context;
struct Stream;
struct Capture;  // capture.h

// A set of live handles of one kind. Lookups are O(1) under a mutex.
template <class T>
class HandleTable {
 public:
  void add(T* p) {
    std::lock_guard<std::mutex> g(mu_);
    live_.insert(p);
  }
  bool remove(T* p) {
    std::lock_guard<std::mutex> g(mu_);
    return live_.erase(p) != 0;
  }
  bool contains(const void* p) const {
    std::lock_guard<std::mutex> g(mu_);
    return live_.count(static_cast<T*>(const_cast<void*>(p))) != 0;
  }
  std::vector<T*> snapshot() const {
    std::lock_guard<std::mutex> g(mu_);
    return {live_.begin(), live_.end()};
  }
  void clear() {
    std::lock_guard<std::mutex> g(mu_);
    live_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::unordered_set<T*> live_;
};

// Work queued on a stream. `engine_ns` > 0 makes the op a kernel that occupies
// the device's execution engine for that long before `work` runs.
struct StreamOp {
  std::function<void()> work;
  uint64_t engine_ns = 0;
  bool is_kernel = false;
  // Stream-order dependencies: run only after stream->completed >= seq.
  std::vector<std::pair<std::shared_ptr<Stream>, uint64_t>> deps;
};

// A stream: FIFO of ops executed by its own thread, started on first use.
struct Stream : std::enable_shared_from_this<Stream> {
  Context* ctx = nullptr;
  unsigned flags = 0;        // CU_STREAM_DEFAULT / CU_STREAM_NON_BLOCKING
  int priority = 0;
  bool is_legacy_null = false;
  bool is_per_thread = false;
  uint64_t id = 0;

  // Appends an op; returns its sequence number (1-based). Legacy default-stream
  // ordering (implicit dependencies) is added by the caller, enqueue_ordered().
  uint64_t enqueue(StreamOp op);
  // Blocks until every op enqueued so far has completed.
  void synchronize();
  void wait_for(uint64_t seq);
  bool done(uint64_t seq) const { return completed.load(std::memory_order_acquire) >= seq; }
  bool idle() const { return done(enqueued.load(std::memory_order_acquire)); }
  // Stops the executor after draining; called when the stream is destroyed.
  void shutdown();
  ~Stream();

  std::atomic<uint64_t> enqueued{0};
  std::atomic<uint64_t> completed{0};

  // Stream capture (capture.cc), guarded by its mutex: the capture sequence
  // this stream belongs to, and the nodes the next captured op depends on.
  std::shared_ptr<Capture> capture;
  std::vector<CUgraphNode> capture_deps;

 private:
  void run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<StreamOp> queue_;
  size_t head_ = 0;
  bool stop_ = false;
  bool started_ = false;
};

struct Context {
  int device = 0;
  unsigned flags = 0;
  bool primary = false;
  uint64_t id = 0;
  std::atomic<bool> active{true};
  std::shared_ptr<Stream> null_stream;  // legacy default stream
  uint64_t overhead_charged = 0;
  // cuCtxSetLimit values set so far, by CUlimit, and the device memory they
  // take beyond the defaults (which the context overhead covers). api_limits.cc.
  std::unordered_map<int, size_t> limits;
  uint64_t limits_charged = 0;

  std::mutex mu;
  std::vector<std::shared_ptr<Stream>> streams;  // explicit + per-thread, for sync
  std::unordered_map<uint64_t, std::shared_ptr<Stream>> per_thread;  // by thread serial
};

// The process-wide driver.
class Driver {
 public:
  static Driver& get();

  CUresult init(unsigned flags);
  bool initialized() const { return initialized_.load(std::memory_order_acquire); }
  // Set by the exit handler: every entry point then answers
  // CUDA_ERROR_DEINITIALIZED, as the real driver does during its teardown.
  void begin_shutdown() { shutting_down_.store(true, std::memory_order_release); }
  bool shutting_down() const { return shutting_down_.load(std::memory_order_acquire); }
  const SimConfig& config() const { return config_; }
  Node& node() { return *node_; }
  // Devices visible to this process (CUDA_VISIBLE_DEVICES applied). CUdevice
  // values are ordinals among them; everything stored internally (contexts,
  // allocations, the node state) uses physical indexes.
  int device_count() const { return static_cast<int>(visible_.size()); }
  int physical(int ordinal) const { return visible_[ordinal]; }
  int ordinal_of(int physical) const;
  const DeviceInfo& device(int physical) const { return node_->state()->devices[physical]; }

  // Contexts. create_context charges the device's context overhead.
  CUresult create_context(int device, unsigned flags, bool primary, Context** out);
  // Frees everything the context owns (streams drained, memory, modules).
  void destroy_context(Context* ctx);

  HandleTable<Context> contexts;
  HandleTable<Stream> streams;  // raw pointers of explicit streams (owned by ctx)

  // Primary contexts, one per device.
  struct Primary {
    std::mutex mu;
    Context* ctx = nullptr;
    unsigned refs = 0;
    unsigned flags = 0;
  };
  Primary primary[kMaxDevices];

  // Hooks other api files register to clean up per-context state on destroy
  // (memory, modules, events...). Called with the context still valid.
  void on_context_destroy(std::function<void(Context*)> fn);

  // Called in the child after fork(): the child starts uninitialised, and
  // when the parent had initialised, cuInit is refused for good
  // (CUDA_ERROR_NOT_INITIALIZED), as with the real driver.
  void reset_after_fork();
  bool forked_after_init() const { return forked_after_init_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> initialized_{false};
  std::atomic<bool> forked_after_init_{false};
  std::atomic<bool> shutting_down_{false};
  std::mutex init_mu_;
  SimConfig config_;
  Node* node_ = nullptr;
  std::atomic<uint64_t> next_ctx_id_{1};
  std::vector<int> visible_;
  std::mutex hooks_mu_;
  std::vector<std::function<void(Context*)>> destroy_hooks_;
};

// --- helpers every entry point uses -------------------------------------

// CUDA_ERROR_NOT_INITIALIZED until cuInit succeeded; CUDA_ERROR_DEINITIALIZED
// once exit() began (the driver's teardown).
CUresult require_init();
// Validates a device ordinal (CUDA_ERROR_INVALID_DEVICE).
CUresult check_device(CUdevice dev);
// The physical index of a validated ordinal, and back.
inline int phys(CUdevice ordinal) { return Driver::get().physical(ordinal); }
inline int ordinal(int physical) { return Driver::get().ordinal_of(physical); }
// Parses CUDA_VISIBLE_DEVICES against the node's devices: indexes or UUIDs
// ("GPU-<uuid or unique prefix>", "MIG-<uuid or prefix>", legacy
// "MIG-GPU-<uuid>/<gi>/<ci>"); parsing stops at the first invalid entry. A GPU
// in MIG mode is reached through its MIG devices only, and at most one MIG
// device is enumerated (see docs/simgpu.md, "MIG"). Returns node entries.
std::vector<int> parse_visible_devices(const char* value, const NodeState& node);
// The calling thread's current context; CUDA_ERROR_INVALID_CONTEXT if none, or
// CUDA_ERROR_CONTEXT_IS_DESTROYED if it was destroyed while current.
CUresult current_context(Context** out);
// Validates a context handle (CUDA_ERROR_INVALID_CONTEXT).
CUresult check_context(CUcontext c, Context** out);

// Thread-local context stack.
Context* tls_current();
void tls_set_current(Context* c);
void tls_push(Context* c);
Context* tls_pop();

// Resolves a stream handle for an entry point. `per_thread` is true for the
// _ptsz/_ptds variants: then NULL means the per-thread default stream.
// Fails with INVALID_HANDLE for unknown handles, INVALID_CONTEXT without a context.
CUresult resolve_stream(CUstream h, bool per_thread, std::shared_ptr<Stream>* out);
// Enqueues `op` with legacy default-stream semantics: ops on the NULL stream
// wait for prior work on every blocking stream of the context, and ops on a
// blocking stream wait for prior work on the NULL stream.
uint64_t enqueue_ordered(const std::shared_ptr<Stream>& s, StreamOp op);
// Waits for all work of every stream of the context.
void synchronize_context(Context* ctx);
// Creates an explicit stream in ctx.
std::shared_ptr<Stream> make_stream(Context* ctx, unsigned flags, int priority);

// Runs `ns` of kernel time on the device's shared execution engine, time-sliced
// against other processes; records busy time and the kernel count.
// A kernel op must be announced when queued (kernel_queued) so the engine
// knows this process still has work and keeps its timeslice; engine_run with
// count_kernel retires it.
void engine_run(int device, uint64_t ns, bool count_kernel);
void kernel_queued(int device);

// Logs once per name that an entry point is not implemented.
CUresult not_supported(const char* name);
void log_error(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace simgpu

// Per-thread variants: most api files implement a function once and define the
// _ptsz/_ptds export by forwarding with per_thread = true.
#define SIMGPU_EXPORT extern "C" __attribute__((visibility("default")))
