// The parts of simgpu's CUDA graph model (api_graph.cc) that stream capture
// (capture.cc) builds on: a graph created and filled by the driver itself, whose
// nodes carry the stream op they run when the instantiated graph is launched.
//
// Thread-safety: a graph is not internally locked (as cuda.h says of graphs:
// callers serialize access); capture.cc calls these under its own mutex.
#pragma once

#include <vector>

#include "driver.h"

namespace simgpu {

// A new empty graph, as cuGraphCreate(&g, 0) makes.
CUgraph graph_new();
// Destroys a graph made by graph_new (as cuGraphDestroy).
void graph_delete(CUgraph g);
// Adds a node of `type` depending on `deps` (nodes of g) that runs `op` (no
// stream-order deps of its own) each time the instantiated graph is launched.
CUresult graph_add_op(CUgraph g, const std::vector<CUgraphNode>& deps, CUgraphNodeType type, StreamOp op,
                      CUgraphNode* out);
// True when `g` is a live graph.
bool graph_valid(CUgraph g);
// True when `node` is a live node of graph `g`.
bool graph_has_node(CUgraph g, CUgraphNode node);
// True when `ancestor` is `from` or reachable from `from` through dependencies.
bool graph_node_reaches(CUgraphNode from, CUgraphNode ancestor);

}  // namespace simgpu
