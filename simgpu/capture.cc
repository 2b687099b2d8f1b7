// Stream capture state and rules (capture.h). One mutex guards every capture,
// every Stream::capture / capture_deps and the graphs being captured into.
#include "capture.h"

#include <algorithm>

#include "event.h"
#include "graph.h"

namespace simgpu {
namespace {

std::mutex g_mu;
std::vector<std::shared_ptr<Capture>> g_active;  // captures begun and not ended
std::atomic<uint64_t> g_next_id{1};
thread_local CUstreamCaptureMode t_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
thread_local std::vector<CUgraphNode> t_deps_out;

bool blocking(const Stream& s) { return !(s.flags & CU_STREAM_NON_BLOCKING) && !s.is_legacy_null; }

// Captures (in progress) that have a blocking member stream in ctx. Holds g_mu.
std::vector<std::shared_ptr<Capture>> blocking_captures(Context* ctx) {
  std::vector<std::shared_ptr<Capture>> out;
  for (auto& c : g_active)
    for (auto& w : c->members)
      if (auto m = w.lock(); m && m->ctx == ctx && blocking(*m)) {
        out.push_back(c);
        break;
      }
  return out;
}

// Legacy-stream use while blocking streams capture: IMPLICIT, and (when
// `invalidate`) those captures are invalidated. Holds g_mu.
CUresult implicit_check(const Stream& s, bool invalidate) {
  if (!s.is_legacy_null) return CUDA_SUCCESS;
  auto caps = blocking_captures(s.ctx);
  if (caps.empty()) return CUDA_SUCCESS;
  if (invalidate)
    for (auto& c : caps) c->invalidated = true;
  return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
}

void add_unique(std::vector<CUgraphNode>* set, const std::vector<CUgraphNode>& more) {
  for (CUgraphNode n : more)
    if (std::find(set->begin(), set->end(), n) == set->end()) set->push_back(n);
}

void join(const std::shared_ptr<Capture>& c, const std::shared_ptr<Stream>& s) {
  s->capture = c;
  c->members.push_back(s);
}

// Ends a capture: every member stream leaves it. Holds g_mu.
void finish(const std::shared_ptr<Capture>& c) {
  c->ended = true;
  for (auto& w : c->members)
    if (auto m = w.lock(); m && m->capture == c) {
      m->capture.reset();
      m->capture_deps.clear();
    }
  c->members.clear();
  g_active.erase(std::remove(g_active.begin(), g_active.end(), c), g_active.end());
}

// A destroyed context's captures end (their graphs with them), so they stop
// restricting other threads.
void end_context_captures(Context* ctx) {
  std::lock_guard<std::mutex> g(g_mu);
  auto active = g_active;
  for (auto& c : active)
    if (c->ctx == ctx) {
      finish(c);
      if (c->owns_graph) graph_delete(c->graph);
    }
}

}  // namespace

CUstreamCaptureMode& thread_capture_mode() { return t_mode; }

CUresult submit_op(const std::shared_ptr<Stream>& s, StreamOp op, CUgraphNodeType type, uint64_t* seq) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    if (CUresult r = implicit_check(*s, true)) return r;
    if (auto c = s->capture) {
      if (c->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
      CUgraphNode node = nullptr;
      if (CUresult r = graph_add_op(c->graph, s->capture_deps, type, std::move(op), &node)) return r;
      s->capture_deps.assign(1, node);
      if (seq) *seq = 0;
      return CUDA_SUCCESS;
    }
  }
  uint64_t n = enqueue_ordered(s, std::move(op));
  if (seq) *seq = n;
  return CUDA_SUCCESS;
}

CUresult capture_node(const std::shared_ptr<Stream>& s, const AddNodeFn& add, bool* captured) {
  *captured = false;
  std::lock_guard<std::mutex> g(g_mu);
  if (CUresult r = implicit_check(*s, true)) return r;
  auto c = s->capture;
  if (!c) return CUDA_SUCCESS;
  *captured = true;
  if (c->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  CUgraphNode node = nullptr;
  if (CUresult r = add(c->graph, s->capture_deps, &node)) return r;
  s->capture_deps.assign(1, node);
  return CUDA_SUCCESS;
}

CUresult check_unsafe_call() {
  CUstreamCaptureMode mode = t_mode;
  if (mode == CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_SUCCESS;
  auto self = std::this_thread::get_id();
  std::lock_guard<std::mutex> g(g_mu);
  CUresult r = CUDA_SUCCESS;
  for (auto& c : g_active) {
    bool own = c->owner == self && c->mode != CU_STREAM_CAPTURE_MODE_RELAXED;
    bool global = mode == CU_STREAM_CAPTURE_MODE_GLOBAL && c->owner != self &&
                  c->mode == CU_STREAM_CAPTURE_MODE_GLOBAL;
    if (own || global) {
      c->invalidated = true;
      r = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
  }
  return r;
}

CUresult check_stream_sync(const std::shared_ptr<Stream>& s) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    if (auto c = s->capture) {
      c->invalidated = true;
      return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
    if (CUresult r = implicit_check(*s, true)) return r;
  }
  return check_unsafe_call();
}

CUresult check_context_sync(Context* ctx) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    CUresult r = CUDA_SUCCESS;
    for (auto& c : g_active)
      if (c->ctx == ctx && !c->ended) {
        c->invalidated = true;
        r = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
      }
    if (r) return r;
  }
  return check_unsafe_call();
}

bool capture_event_record(const std::shared_ptr<Stream>& s, EventRecord* rec, CUresult* err) {
  std::lock_guard<std::mutex> g(g_mu);
  *err = implicit_check(*s, true);
  if (*err) return true;
  auto c = s->capture;
  if (!c) return false;
  if (c->invalidated) {
    *err = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    return true;
  }
  rec->capture = c;
  rec->capture_nodes = s->capture_deps;
  return true;
}

CUresult check_event_sync(const std::shared_ptr<EventRecord>& rec) {
  if (rec && rec->capture) {
    std::lock_guard<std::mutex> g(g_mu);
    if (!rec->capture->ended) return CUDA_ERROR_CAPTURED_EVENT;
  }
  return check_unsafe_call();
}

bool capture_wait_event(const std::shared_ptr<Stream>& s, const std::shared_ptr<EventRecord>& rec, unsigned flags,
                        CUresult* err) {
  std::lock_guard<std::mutex> g(g_mu);
  *err = CUDA_SUCCESS;
  auto sc = s->capture;
  auto ec = rec && rec->capture && !rec->capture->ended ? rec->capture : nullptr;
  if (!sc && !ec) {
    *err = implicit_check(*s, true);
    return *err != CUDA_SUCCESS;
  }
  if (sc && sc->invalidated) {
    *err = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    return true;
  }
  if (sc && !ec) {
    // A capturing stream may not wait on work outside its capture, unless the
    // wait is external (then it is not ordered by the graph at all).
    if (flags & CU_EVENT_WAIT_EXTERNAL) return true;
    sc->invalidated = true;
    *err = CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
    return true;
  }
  if (ec->invalidated) {
    *err = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    return true;
  }
  if (sc && sc != ec) {
    // Two independent capture sequences would merge.
    sc->invalidated = true;
    ec->invalidated = true;
    *err = CUDA_ERROR_STREAM_CAPTURE_MERGE;
    return true;
  }
  if (!sc) {
    if (s->is_legacy_null) {
      ec->invalidated = true;
      *err = CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
      return true;
    }
    join(ec, s);  // fork: s joins the capture after the recorded nodes
    s->capture_deps = rec->capture_nodes;
    return true;
  }
  add_unique(&s->capture_deps, rec->capture_nodes);  // join within the capture
  return true;
}

CUresult capture_begin(const std::shared_ptr<Stream>& s, CUstreamCaptureMode mode, CUgraph into,
                       const std::vector<CUgraphNode>& deps) {
  if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      mode != CU_STREAM_CAPTURE_MODE_RELAXED)
    return CUDA_ERROR_INVALID_VALUE;
  if (s->is_legacy_null) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  static std::once_flag once;
  std::call_once(once, [] { Driver::get().on_context_destroy(end_context_captures); });
  std::lock_guard<std::mutex> g(g_mu);
  if (s->capture) return CUDA_ERROR_ILLEGAL_STATE;
  if (into && !graph_valid(into)) return CUDA_ERROR_INVALID_VALUE;
  for (CUgraphNode d : deps)
    if (!graph_has_node(into, d)) return CUDA_ERROR_INVALID_VALUE;
  auto c = std::make_shared<Capture>();
  c->id = g_next_id.fetch_add(1);
  c->mode = mode;
  c->owner = std::this_thread::get_id();
  c->ctx = s->ctx;
  c->graph = into ? into : graph_new();
  c->owns_graph = !into;
  c->origin = s.get();
  join(c, s);
  s->capture_deps.clear();
  add_unique(&s->capture_deps, deps);
  g_active.push_back(c);
  return CUDA_SUCCESS;
}

CUresult capture_end(const std::shared_ptr<Stream>& s, CUgraph* out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_mu);
  auto c = s->capture;
  if (!c) return CUDA_ERROR_ILLEGAL_STATE;
  if (c->origin != s.get()) {
    c->invalidated = true;
    return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
  }
  if (c->mode != CU_STREAM_CAPTURE_MODE_RELAXED && c->owner != std::this_thread::get_id())
    return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
  CUresult r = c->invalidated ? CUDA_ERROR_STREAM_CAPTURE_INVALIDATED : CUDA_SUCCESS;
  // Every stream forked from the origin must have been joined back: each of
  // its pending dependencies is reached from the origin's.
  for (auto& w : c->members) {
    auto m = w.lock();
    if (r || !m || m.get() == c->origin || m->capture != c) continue;
    for (CUgraphNode d : m->capture_deps) {
      bool reached = false;
      for (CUgraphNode o : s->capture_deps) reached = reached || graph_node_reaches(o, d);
      if (!reached) r = CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
    }
  }
  finish(c);
  if (r) {
    if (c->owns_graph) graph_delete(c->graph);
    *out = nullptr;
    return r;
  }
  *out = c->graph;
  return CUDA_SUCCESS;
}

CUresult capture_update_deps(const std::shared_ptr<Stream>& s, const std::vector<CUgraphNode>& deps,
                             unsigned flags) {
  if (flags != 0 && flags != CU_STREAM_ADD_CAPTURE_DEPENDENCIES && flags != CU_STREAM_SET_CAPTURE_DEPENDENCIES)
    return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_mu);
  auto c = s->capture;
  if (!c) return CUDA_ERROR_ILLEGAL_STATE;
  for (CUgraphNode d : deps)
    if (!graph_has_node(c->graph, d)) return CUDA_ERROR_INVALID_VALUE;
  if (flags == CU_STREAM_SET_CAPTURE_DEPENDENCIES) s->capture_deps.clear();
  add_unique(&s->capture_deps, deps);
  return CUDA_SUCCESS;
}

CUresult capture_info(const std::shared_ptr<Stream>& s, CUstreamCaptureStatus* status, cuuint64_t* id,
                      CUgraph* graph, const CUgraphNode** deps, size_t* ndeps) {
  if (!status) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_mu);
  if (CUresult r = implicit_check(*s, false)) return r;
  auto c = s->capture;
  if (!c) {
    *status = CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
  }
  *status = c->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  if (id) *id = c->id;
  if (graph) *graph = c->graph;
  t_deps_out = s->capture_deps;
  if (deps) *deps = t_deps_out.data();
  if (ndeps) *ndeps = t_deps_out.size();
  return CUDA_SUCCESS;
}

}  // namespace simgpu
