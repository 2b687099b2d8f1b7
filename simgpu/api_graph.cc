// CUDA graphs: create/destroy, kernel, host, empty, memory-alloc and
// memory-free nodes (also through cuGraphAddNode), and basic queries;
// instantiation and launch are in graph_exec.cc, the model in graph_nodes.h.
//
// Model. A memory-alloc node reserves its address range when it is added (as
// the real driver fixes dptr at that point) and takes physical memory when
// the graph is launched (graph_exec.cc). Stream capture makes the same nodes
// from cuMemAllocAsync / cuMemFreeAsync, and a child-graph node from a
// cuGraphLaunch into the capturing stream (graph.h).
#include <algorithm>
#include <cstring>

#include "graph.h"
#include "graph_nodes.h"
#include "module.h"

namespace simgpu {

HandleTable<Graph> g_graphs;
HandleTable<GraphNode> g_nodes;
HandleTable<GraphExec> g_execs;

Graph* graph_of(CUgraph h) { return g_graphs.contains(h) ? reinterpret_cast<Graph*>(h) : nullptr; }

CUresult add_node(Graph* g, const CUgraphNode* deps, size_t ndeps, std::shared_ptr<GraphNode> n, CUgraphNode* out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  if (ndeps > 0 && !deps) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < ndeps; ++i) {
    auto* d = reinterpret_cast<GraphNode*>(deps[i]);
    if (!g_nodes.contains(d) || d->graph != g) return CUDA_ERROR_INVALID_VALUE;
    if (std::find(n->deps.begin(), n->deps.end(), d) != n->deps.end()) return CUDA_ERROR_INVALID_VALUE;
    n->deps.push_back(d);
  }
  n->graph = g;
  g_nodes.add(n.get());
  *out = reinterpret_cast<CUgraphNode>(n.get());
  g->nodes.push_back(std::move(n));
  return CUDA_SUCCESS;
}

namespace {

CUresult kernel_node(CUfunction func, CUkernel kern, const unsigned dims[6], unsigned shared, void** params,
                     void** extra, std::shared_ptr<GraphNode>* out) {
  CUfunction f = func ? func : reinterpret_cast<CUfunction>(kern);
  Function* fn = nullptr;
  if (CUresult r = resolve_function(f, &fn)) return r;
  for (int i = 0; i < 6; ++i)
    if (dims[i] == 0) return CUDA_ERROR_INVALID_VALUE;
  if (static_cast<uint64_t>(dims[3]) * dims[4] * dims[5] > 1024 || shared > 232448) return CUDA_ERROR_INVALID_VALUE;
  if (params && extra) return CUDA_ERROR_INVALID_VALUE;
  auto n = std::make_shared<GraphNode>();
  n->type = CU_GRAPH_NODE_TYPE_KERNEL;
  n->func = reinterpret_cast<CUfunction>(fn);
  n->kernel_ns = kernel_duration_ns(*fn, params, extra);  // parameters are copied at add time
  *out = std::move(n);
  return CUDA_SUCCESS;
}

CUresult alloc_node(const CUmemPoolProps& props, size_t bytes, std::shared_ptr<GraphNode>* out, CUdeviceptr* dptr) {
  if (bytes == 0 || props.allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
      props.location.type != CU_MEM_LOCATION_TYPE_DEVICE)
    return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_device(props.location.id)) return r == CUDA_ERROR_INVALID_DEVICE ? CUDA_ERROR_INVALID_VALUE : r;
  auto n = std::make_shared<GraphNode>();
  n->type = CU_GRAPH_NODE_TYPE_MEM_ALLOC;
  n->device = phys(props.location.id);
  n->bytes = bytes;
  if (CUresult r = take_address(n->device, bytes, kVmmGranularity, &n->dptr)) return r;
  *dptr = n->dptr;
  *out = std::move(n);
  return CUDA_SUCCESS;
}

CUresult free_node(Graph* g, CUdeviceptr dptr, std::shared_ptr<GraphNode>* out) {
  bool known = false;
  for (auto& n : g->nodes)
    if (n->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC && n->dptr == dptr) known = true;
  if (!known && !find_allocation(dptr)) return CUDA_ERROR_INVALID_VALUE;
  auto n = std::make_shared<GraphNode>();
  n->type = CU_GRAPH_NODE_TYPE_MEM_FREE;
  n->dptr = dptr;
  *out = std::move(n);
  return CUDA_SUCCESS;
}

}  // namespace

CUgraph graph_new() {
  auto* g = new Graph();
  g_graphs.add(g);
  return reinterpret_cast<CUgraph>(g);
}

void graph_delete(CUgraph h) {
  Graph* g = graph_of(h);
  if (!g) return;
  g_graphs.remove(g);
  for (auto& n : g->nodes) g_nodes.remove(n.get());
  delete g;
}

CUresult graph_add_op(CUgraph h, const std::vector<CUgraphNode>& deps, CUgraphNodeType type, StreamOp op,
                      CUgraphNode* out) {
  Graph* g = graph_of(h);
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  auto n = std::make_shared<GraphNode>();
  n->type = type;
  op.deps.clear();
  n->op = std::make_shared<const StreamOp>(std::move(op));
  return add_node(g, deps.data(), deps.size(), std::move(n), out);
}

CUresult graph_add_mem_alloc(CUgraph h, const std::vector<CUgraphNode>& deps, int device, size_t bytes,
                             CUgraphNode* out, CUdeviceptr* dptr) {
  Graph* g = graph_of(h);
  if (!g || !dptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  auto n = std::make_shared<GraphNode>();
  n->type = CU_GRAPH_NODE_TYPE_MEM_ALLOC;
  n->device = device;
  n->bytes = bytes;
  if (CUresult r = take_address(device, bytes, kVmmGranularity, &n->dptr)) return r;
  CUdeviceptr p = n->dptr;
  if (CUresult r = add_node(g, deps.data(), deps.size(), std::move(n), out)) return r;  // node gives the range back
  *dptr = p;
  return CUDA_SUCCESS;
}

CUresult graph_add_mem_free(CUgraph h, const std::vector<CUgraphNode>& deps, CUdeviceptr dptr, CUgraphNode* out) {
  Graph* g = graph_of(h);
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  bool in_graph = false;
  for (auto& n : g->nodes) in_graph = in_graph || (n->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC && n->dptr == dptr);
  auto a = find_allocation(dptr);
  if (!in_graph && !(a && a->kind == MemKind::kGraph && a->base == dptr)) return CUDA_ERROR_INVALID_VALUE;
  auto n = std::make_shared<GraphNode>();
  n->type = CU_GRAPH_NODE_TYPE_MEM_FREE;
  n->dptr = dptr;
  return add_node(g, deps.data(), deps.size(), std::move(n), out);
}

bool graph_valid(CUgraph g) { return graph_of(g) != nullptr; }

bool graph_has_node(CUgraph g, CUgraphNode node) {
  auto* n = reinterpret_cast<GraphNode*>(node);
  return graph_of(g) && g_nodes.contains(n) && n->graph == reinterpret_cast<Graph*>(g);
}

bool graph_node_reaches(CUgraphNode from, CUgraphNode ancestor) {
  auto* start = reinterpret_cast<GraphNode*>(from);
  if (!g_nodes.contains(start)) return false;
  std::vector<GraphNode*> todo{start};
  std::vector<GraphNode*> seen;
  while (!todo.empty()) {
    GraphNode* n = todo.back();
    todo.pop_back();
    if (reinterpret_cast<CUgraphNode>(n) == ancestor) return true;
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
    seen.push_back(n);
    todo.insert(todo.end(), n->deps.begin(), n->deps.end());
  }
  return false;
}

}  // namespace simgpu

using namespace simgpu;

SIMGPU_EXPORT CUresult cuGraphCreate(CUgraph* phGraph, unsigned int flags) {
  if (!phGraph || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = require_init()) return r;
  auto* g = new Graph();
  g_graphs.add(g);
  *phGraph = reinterpret_cast<CUgraph>(g);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuGraphDestroy(CUgraph h) {
  if (CUresult r = require_init()) return r;
  Graph* g = graph_of(h);
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  g_graphs.remove(g);
  for (auto& n : g->nodes) g_nodes.remove(n.get());
  delete g;  // nodes still used by an exec live on through its shared_ptrs
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuGraphAddKernelNode(CUgraphNode* ph, CUgraph h, const CUgraphNode* deps, size_t n,
                                            const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (CUresult r = require_init()) return r;
  Graph* g = graph_of(h);
  if (!g || !p) return CUDA_ERROR_INVALID_VALUE;
  const unsigned dims[6] = {p->gridDimX, p->gridDimY, p->gridDimZ, p->blockDimX, p->blockDimY, p->blockDimZ};
  std::shared_ptr<GraphNode> node;
  if (CUresult r = kernel_node(p->func, nullptr, dims, p->sharedMemBytes, p->kernelParams, p->extra, &node)) return r;
  return add_node(g, deps, n, std::move(node), ph);
}

SIMGPU_EXPORT CUresult cuGraphAddKernelNode_v2(CUgraphNode* ph, CUgraph h, const CUgraphNode* deps, size_t n,
                                               const CUDA_KERNEL_NODE_PARAMS* p) {
  if (CUresult r = require_init()) return r;
  Graph* g = graph_of(h);
  if (!g || !p) return CUDA_ERROR_INVALID_VALUE;
  const unsigned dims[6] = {p->gridDimX, p->gridDimY, p->gridDimZ, p->blockDimX, p->blockDimY, p->blockDimZ};
  std::shared_ptr<GraphNode> node;
  if (CUresult r = kernel_node(p->func, p->kern, dims, p->sharedMemBytes, p->kernelParams, p->extra, &node))
    return r;
  return add_node(g, deps, n, std::move(node), ph);
}

SIMGPU_EXPORT CUresult cuGraphAddHostNode(CUgraphNode* ph, CUgraph h, const CUgraphNode* deps, size_t n,
                                          const CUDA_HOST_NODE_PARAMS* p) {
  if (CUresult r = require_init()) return r;
  Graph* g = graph_of(h);
  if (!g || !p || !p->fn) return CUDA_ERROR_INVALID_VALUE;
  auto node = std::make_shared<GraphNode>();
  node->type = CU_GRAPH_NODE_TYPE_HOST;
  node->host_fn = p->fn;
  node->host_data = p->userData;
  return add_node(g, deps, n, std::move(node), ph);
}

SIMGPU_EXPORT CUresult cuGraphAddEmptyNode(CUgraphNode* ph, CUgraph h, const CUgraphNode* deps, size_t n) {
  if (CUresult r = require_init()) return r;
  Graph* g = graph_of(h);
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  return add_node(g, deps, n, std::make_shared<GraphNode>(), ph);
}

SIMGPU_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode* ph, CUgraph h, const CUgraphNode* deps, size_t n,
                                              CUDA_MEM_ALLOC_NODE_PARAMS* p) {
  if (CUresult r = require_init()) return r;
  Graph* g = graph_of(h);
  if (!g || !p) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<GraphNode> node;
  if (CUresult r = alloc_node(p->poolProps, p->bytesize, &node, &p->dptr)) return r;
  return add_node(g, deps, n, std::move(node), ph);
}

SIMGPU_EXPORT CUresult cuGraphAddMemFreeNode(CUgraphNode* ph, CUgraph h, const CUgraphNode* deps, size_t n,
                                             CUdeviceptr dptr) {
  if (CUresult r = require_init()) return r;
  Graph* g = graph_of(h);
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<GraphNode> node;
  if (CUresult r = free_node(g, dptr, &node)) return r;
  return add_node(g, deps, n, std::move(node), ph);
}

SIMGPU_EXPORT CUresult cuGraphMemAllocNodeGetParams(CUgraphNode h, CUDA_MEM_ALLOC_NODE_PARAMS* out) {
  if (CUresult r = require_init()) return r;
  auto* n = reinterpret_cast<GraphNode*>(h);
  if (!out || !g_nodes.contains(n) || n->type != CU_GRAPH_NODE_TYPE_MEM_ALLOC) return CUDA_ERROR_INVALID_VALUE;
  std::memset(out, 0, sizeof *out);
  out->poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  out->poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  out->poolProps.location.id = ordinal(n->device);
  out->bytesize = n->bytes;
  out->dptr = n->dptr;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuGraphMemFreeNodeGetParams(CUgraphNode h, CUdeviceptr* out) {
  if (CUresult r = require_init()) return r;
  auto* n = reinterpret_cast<GraphNode*>(h);
  if (!out || !g_nodes.contains(n) || n->type != CU_GRAPH_NODE_TYPE_MEM_FREE) return CUDA_ERROR_INVALID_VALUE;
  *out = n->dptr;
  return CUDA_SUCCESS;
}

namespace {
CUresult add_generic(CUgraphNode* ph, CUgraph h, const CUgraphNode* deps, size_t n, CUgraphNodeParams* p) {
  Graph* g = graph_of(h);
  if (!g || !p) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<GraphNode> node;
  switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      const auto& k = p->kernel;
      const unsigned dims[6] = {k.gridDimX, k.gridDimY, k.gridDimZ, k.blockDimX, k.blockDimY, k.blockDimZ};
      if (CUresult r = kernel_node(k.func, k.kern, dims, k.sharedMemBytes, k.kernelParams, k.extra, &node)) return r;
      break;
    }
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC:
      if (CUresult r = alloc_node(p->alloc.poolProps, p->alloc.bytesize, &node, &p->alloc.dptr)) return r;
      break;
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
      if (CUresult r = free_node(g, p->free.dptr, &node)) return r;
      break;
    case CU_GRAPH_NODE_TYPE_HOST:
      if (!p->host.fn) return CUDA_ERROR_INVALID_VALUE;
      node = std::make_shared<GraphNode>();
      node->type = CU_GRAPH_NODE_TYPE_HOST;
      node->host_fn = p->host.fn;
      node->host_data = p->host.userData;
      break;
    case CU_GRAPH_NODE_TYPE_EMPTY:
      node = std::make_shared<GraphNode>();
      break;
    default:
      return not_supported("cuGraphAddNode for this node type");
  }
  return add_node(g, deps, n, std::move(node), ph);
}
}  // namespace

SIMGPU_EXPORT CUresult cuGraphAddNode(CUgraphNode* ph, CUgraph h, const CUgraphNode* deps, size_t n,
                                      CUgraphNodeParams* p) {
  if (CUresult r = require_init()) return r;
  return add_generic(ph, h, deps, n, p);
}

SIMGPU_EXPORT CUresult cuGraphAddNode_v2(CUgraphNode* ph, CUgraph h, const CUgraphNode* deps,
                                         const CUgraphEdgeData*, size_t n, CUgraphNodeParams* p) {
  if (CUresult r = require_init()) return r;
  return add_generic(ph, h, deps, n, p);
}

SIMGPU_EXPORT CUresult cuGraphNodeGetType(CUgraphNode h, CUgraphNodeType* type) {
  if (CUresult r = require_init()) return r;
  auto* n = reinterpret_cast<GraphNode*>(h);
  if (!type || !g_nodes.contains(n)) return CUDA_ERROR_INVALID_VALUE;
  *type = n->type;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuGraphGetNodes(CUgraph h, CUgraphNode* nodes, size_t* count) {
  if (CUresult r = require_init()) return r;
  Graph* g = graph_of(h);
  if (!g || !count) return CUDA_ERROR_INVALID_VALUE;
  if (nodes)
    for (size_t i = 0; i < std::min(*count, g->nodes.size()); ++i)
      nodes[i] = reinterpret_cast<CUgraphNode>(g->nodes[i].get());
  *count = g->nodes.size();
  return CUDA_SUCCESS;
}
