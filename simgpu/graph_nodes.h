// simgpu's graph model, shared by api_graph.cc (graphs and their nodes) and
// graph_exec.cc (instantiation and launch). Internal: graph.h is what the
// rest of simgpu (stream capture) uses.
//
// Thread-safety: a graph is not internally locked (as cuda.h says of graphs:
// callers serialize access); the handle tables are thread-safe.
#pragma once

#include <memory>
#include <vector>

#include "driver.h"
#include "memory.h"

namespace simgpu {

struct Graph;

struct GraphNode {
  Graph* graph = nullptr;
  CUgraphNodeType type = CU_GRAPH_NODE_TYPE_EMPTY;
  std::vector<GraphNode*> deps;
  CUfunction func = nullptr;  // kernel
  uint64_t kernel_ns = 0;
  CUhostFn host_fn = nullptr;  // host
  void* host_data = nullptr;
  int device = 0;  // mem alloc
  size_t bytes = 0;
  CUdeviceptr dptr = 0;  // mem alloc result / mem free target
  std::shared_ptr<const StreamOp> op;  // captured work (stream capture), run as is
  // Child graph (a captured cuGraphLaunch): the nodes it runs, in order.
  std::shared_ptr<const std::vector<std::shared_ptr<GraphNode>>> child;
  ~GraphNode() {
    if (type == CU_GRAPH_NODE_TYPE_MEM_ALLOC && dptr && !find_allocation(dptr)) give_back_address(device, dptr, bytes);
  }
};

struct Graph {
  std::vector<std::shared_ptr<GraphNode>> nodes;
};

struct GraphExec {
  std::vector<std::shared_ptr<GraphNode>> order;  // topological
  unsigned long long flags = 0;
};

// Live graphs, nodes and execs (handles are their addresses).
extern HandleTable<Graph> g_graphs;
extern HandleTable<GraphNode> g_nodes;
extern HandleTable<GraphExec> g_execs;

// The graph behind a handle, or nullptr.
Graph* graph_of(CUgraph h);
// Adds `n` to `g` after `deps` (each a node of g, no duplicates):
// CUDA_ERROR_INVALID_VALUE otherwise.
CUresult add_node(Graph* g, const CUgraphNode* deps, size_t ndeps, std::shared_ptr<GraphNode> n, CUgraphNode* out);

}  // namespace simgpu
