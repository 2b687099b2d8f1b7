// Stream executors and stream-order semantics (legacy NULL stream, per-thread
// default stream). Each stream runs its ops in order on its own thread.
#include <atomic>

#include "driver.h"

namespace simgpu {

namespace {
std::atomic<uint64_t> g_next_stream_id{1};
std::atomic<uint64_t> g_next_thread_serial{1};
thread_local uint64_t t_thread_serial = 0;

uint64_t thread_serial() {
  if (!t_thread_serial) t_thread_serial = g_next_thread_serial.fetch_add(1);
  return t_thread_serial;
}
}  // namespace

uint64_t Stream::enqueue(StreamOp op) {
  std::lock_guard<std::mutex> g(mu_);
  if (!started_) {
    started_ = true;
    auto self = shared_from_this();
    std::thread([self] { self->run(); }).detach();
  }
  if (op.is_kernel) kernel_queued(ctx->device);
  queue_.push_back(std::move(op));
  uint64_t seq = enqueued.fetch_add(1, std::memory_order_acq_rel) + 1;
  cv_.notify_all();
  return seq;
}

void Stream::run() {
  for (;;) {
    StreamOp op;
    {
      std::unique_lock<std::mutex> l(mu_);
      cv_.wait(l, [&] { return head_ < queue_.size() || stop_; });
      if (head_ >= queue_.size()) break;
      op = std::move(queue_[head_++]);
      if (head_ == queue_.size()) {
        queue_.clear();
        head_ = 0;
      }
    }
    for (auto& [stream, seq] : op.deps)
      if (stream.get() != this) stream->wait_for(seq);
    if (op.engine_ns > 0 || op.is_kernel) engine_run(ctx->device, op.engine_ns, op.is_kernel);
    if (op.work) op.work();
    {
      std::lock_guard<std::mutex> g(mu_);
      completed.fetch_add(1, std::memory_order_acq_rel);
    }
    cv_.notify_all();
  }
}

void Stream::wait_for(uint64_t seq) {
  if (done(seq)) return;
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return done(seq); });
}

void Stream::synchronize() { wait_for(enqueued.load(std::memory_order_acquire)); }

void Stream::shutdown() {
  synchronize();
  std::lock_guard<std::mutex> g(mu_);
  stop_ = true;
  cv_.notify_all();
}

Stream::~Stream() = default;

std::shared_ptr<Stream> make_stream(Context* ctx, unsigned flags, int priority) {
  auto s = std::make_shared<Stream>();
  s->ctx = ctx;
  s->flags = flags;
  s->priority = priority;
  s->id = g_next_stream_id.fetch_add(1);
  std::lock_guard<std::mutex> g(ctx->mu);
  ctx->streams.push_back(s);
  return s;
}

namespace {

std::shared_ptr<Stream> per_thread_stream(Context* ctx) {
  uint64_t key = thread_serial();
  {
    std::lock_guard<std::mutex> g(ctx->mu);
    auto it = ctx->per_thread.find(key);
    if (it != ctx->per_thread.end()) return it->second;
  }
  auto s = make_stream(ctx, CU_STREAM_DEFAULT, 0);
  s->is_per_thread = true;
  std::lock_guard<std::mutex> g(ctx->mu);
  ctx->per_thread[key] = s;
  return s;
}

}  // namespace

CUresult resolve_stream(CUstream h, bool per_thread, std::shared_ptr<Stream>* out) {
  if (h == nullptr || h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) {
    Context* c = nullptr;
    if (CUresult r = current_context(&c)) return r;
    bool use_per_thread = h == CU_STREAM_PER_THREAD || (h == nullptr && per_thread);
    *out = use_per_thread ? per_thread_stream(c) : c->null_stream;
    return CUDA_SUCCESS;
  }
  if (CUresult r = require_init()) return r;
  auto* s = reinterpret_cast<Stream*>(h);
  if (!Driver::get().streams.contains(s)) return CUDA_ERROR_INVALID_HANDLE;
  *out = s->shared_from_this();
  return CUDA_SUCCESS;
}

uint64_t enqueue_ordered(const std::shared_ptr<Stream>& s, StreamOp op) {
  Context* c = s->ctx;
  if (s->is_legacy_null) {
    std::lock_guard<std::mutex> g(c->mu);
    for (auto& other : c->streams)
      if (!(other->flags & CU_STREAM_NON_BLOCKING)) op.deps.emplace_back(other, other->enqueued.load());
  } else if (!(s->flags & CU_STREAM_NON_BLOCKING)) {
    op.deps.emplace_back(c->null_stream, c->null_stream->enqueued.load());
  }
  return s->enqueue(std::move(op));
}

void synchronize_context(Context* c) {
  std::vector<std::shared_ptr<Stream>> all;
  {
    std::lock_guard<std::mutex> g(c->mu);
    all = c->streams;
  }
  all.push_back(c->null_stream);
  for (auto& s : all) s->synchronize();
}

}  // namespace simgpu
