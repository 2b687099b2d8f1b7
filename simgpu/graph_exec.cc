// CUDA graph execs: instantiate (every form), launch (+_ptsz), upload, exec
// destroy, and the child-graph node a captured cuGraphLaunch makes.
//
// Model. A launch enqueues the nodes on the stream in a topological order (a
// child graph's nodes in its place). The memory of memory-alloc nodes is
// taken when the exec is launched: cuGraphLaunch charges the device
// synchronously and fails with CUDA_ERROR_OUT_OF_MEMORY if it cannot, before
// queuing anything. A memory-free node returns the memory in stream order.
// Into a capturing stream cuGraphLaunch runs nothing: it adds a child-graph
// node to the capture (graph.h).
#include <algorithm>
#include <map>

#include "capture.h"
#include "graph.h"
#include "graph_nodes.h"

namespace simgpu {
namespace {

// Kahn's algorithm; false if the graph has a cycle.
bool topological(const Graph& g, std::vector<std::shared_ptr<GraphNode>>* out) {
  std::map<const GraphNode*, size_t> pending;
  for (auto& n : g.nodes) pending[n.get()] = n->deps.size();
  std::vector<std::shared_ptr<GraphNode>> ready;
  for (auto& n : g.nodes)
    if (n->deps.empty()) ready.push_back(n);
  while (!ready.empty()) {
    auto n = ready.front();
    ready.erase(ready.begin());
    out->push_back(n);
    for (auto& m : g.nodes)
      if (std::find(m->deps.begin(), m->deps.end(), n.get()) != m->deps.end() && --pending[m.get()] == 0)
        ready.push_back(m);
  }
  return out->size() == g.nodes.size();
}

CUresult instantiate(CUgraphExec* out, CUgraph h, unsigned long long flags) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = require_init()) return r;
  Graph* g = graph_of(h);
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  auto* e = new GraphExec();
  e->flags = flags;
  if (!topological(*g, &e->order)) {
    delete e;
    return CUDA_ERROR_INVALID_VALUE;
  }
  g_execs.add(e);
  *out = reinterpret_cast<CUgraphExec>(e);
  return CUDA_SUCCESS;
}

// Takes physical memory for every alloc node; all or nothing.
CUresult charge_allocations(const GraphExec& e, Context* ctx) {
  std::vector<const GraphNode*> done;
  for (auto& n : e.order) {
    if (n->type != CU_GRAPH_NODE_TYPE_MEM_ALLOC) continue;
    CUresult r = find_allocation(n->dptr) ? CUDA_ERROR_INVALID_VALUE : charge_device(n->device, n->bytes);
    if (r != CUDA_SUCCESS) {
      for (const GraphNode* d : done) {
        unregister_allocation(d->dptr);
        uncharge_device(d->device, d->bytes);
      }
      return r;
    }
    Allocation a;
    a.base = n->dptr;
    a.size = n->bytes;
    a.charged = n->bytes;
    a.device = n->device;
    a.ctx = ctx;
    a.kind = MemKind::kGraph;
    a.owner = n.get();
    register_allocation(a);
    done.push_back(n.get());
  }
  return CUDA_SUCCESS;
}

StreamOp op_for(const std::shared_ptr<GraphNode>& n) {
  if (n->op) return *n->op;
  StreamOp op;
  switch (n->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL:
      op.is_kernel = true;
      op.engine_ns = n->kernel_ns;
      break;
    case CU_GRAPH_NODE_TYPE_HOST:
      op.work = [fn = n->host_fn, data = n->host_data] { fn(data); };
      break;
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
      op.work = [dptr = n->dptr] {
        if (auto a = unregister_allocation(dptr)) uncharge_device(a->device, a->charged);
      };
      break;
    default:
      break;
  }
  return op;
}

// Queues the ops of `order` on `s`, child graphs expanded in place.
void enqueue_nodes(const std::vector<std::shared_ptr<GraphNode>>& order, const std::shared_ptr<Stream>& s) {
  for (auto& n : order) {
    if (n->child) {
      enqueue_nodes(*n->child, s);
      continue;
    }
    StreamOp op = op_for(n);
    if (op.is_kernel || op.work) enqueue_ordered(s, std::move(op));
  }
}

CUresult launch(CUgraphExec h, CUstream hs, bool per_thread) {
  if (CUresult r = require_init()) return r;
  if (!g_execs.contains(h)) return CUDA_ERROR_INVALID_VALUE;
  auto* e = reinterpret_cast<GraphExec*>(h);
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(hs, per_thread, &s)) return r;
  // Into a capturing stream the launch becomes a child-graph node of the
  // capture and runs nothing now (no memory is taken either).
  bool captured = false;
  if (CUresult r = capture_node(
          s, [h](CUgraph g, const std::vector<CUgraphNode>& deps, CUgraphNode* out) {
            return graph_add_child_exec(g, deps, h, out);
          },
          &captured))
    return r;
  if (captured) return CUDA_SUCCESS;
  if (CUresult r = charge_allocations(*e, s->ctx)) return r;
  enqueue_nodes(e->order, s);
  return CUDA_SUCCESS;
}

}  // namespace

CUresult graph_add_child_exec(CUgraph h, const std::vector<CUgraphNode>& deps, CUgraphExec exec, CUgraphNode* out) {
  Graph* g = graph_of(h);
  if (!g || !g_execs.contains(exec)) return CUDA_ERROR_INVALID_VALUE;
  const auto& order = reinterpret_cast<GraphExec*>(exec)->order;
  for (auto& n : order)
    if (n->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC || n->type == CU_GRAPH_NODE_TYPE_MEM_FREE)
      return CUDA_ERROR_NOT_SUPPORTED;
  auto n = std::make_shared<GraphNode>();
  n->type = CU_GRAPH_NODE_TYPE_GRAPH;
  // A copy: the node keeps running what the exec ran even if the exec is destroyed.
  n->child = std::make_shared<const std::vector<std::shared_ptr<GraphNode>>>(order);
  return add_node(g, deps.data(), deps.size(), std::move(n), out);
}

}  // namespace simgpu

using namespace simgpu;

SIMGPU_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec* out, CUgraph h, unsigned long long flags) {
  return instantiate(out, h, flags);
}

SIMGPU_EXPORT CUresult cuGraphInstantiate_v2(CUgraphExec* out, CUgraph h, CUgraphNode* err, char* log, size_t n) {
  if (err) *err = nullptr;
  if (log && n) log[0] = '\0';
  return instantiate(out, h, 0);
}

SIMGPU_EXPORT CUresult cuGraphInstantiate(CUgraphExec* out, CUgraph h, CUgraphNode* err, char* log, size_t n) {
  return cuGraphInstantiate_v2(out, h, err, log, n);
}

SIMGPU_EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec* out, CUgraph h, CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = instantiate(out, h, p->flags);
  p->hErrNode_out = nullptr;
  p->result_out = r == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
  return r;
}

SIMGPU_EXPORT CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec* out, CUgraph h,
                                                         CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  return cuGraphInstantiateWithParams(out, h, p);
}

SIMGPU_EXPORT CUresult cuGraphExecGetFlags(CUgraphExec h, cuuint64_t* flags) {
  if (CUresult r = require_init()) return r;
  if (!flags || !g_execs.contains(h)) return CUDA_ERROR_INVALID_VALUE;
  *flags = reinterpret_cast<GraphExec*>(h)->flags;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuGraphLaunch(CUgraphExec h, CUstream s) { return launch(h, s, false); }
SIMGPU_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec h, CUstream s) { return launch(h, s, true); }

SIMGPU_EXPORT CUresult cuGraphUpload(CUgraphExec h, CUstream s) {
  if (CUresult r = require_init()) return r;
  if (!g_execs.contains(h)) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Stream> st;
  return resolve_stream(s, false, &st);
}

SIMGPU_EXPORT CUresult cuGraphUpload_ptsz(CUgraphExec h, CUstream s) {
  if (CUresult r = require_init()) return r;
  if (!g_execs.contains(h)) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Stream> st;
  return resolve_stream(s, true, &st);
}

SIMGPU_EXPORT CUresult cuGraphExecDestroy(CUgraphExec h) {
  if (CUresult r = require_init()) return r;
  auto* e = reinterpret_cast<GraphExec*>(h);
  if (!g_execs.remove(e)) return CUDA_ERROR_INVALID_VALUE;
  delete e;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuDeviceGraphMemTrim(CUdevice dev) { return check_device(dev); }
