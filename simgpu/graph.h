// The parts of simgpu's CUDA graph model (api_graph.cc, graph_exec.cc) that stream capture
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
// Stream capture of cuMemAllocAsync / cuMemAllocFromPoolAsync: a memory-alloc
// node of `bytes` on physical `device`, whose virtual address (*dptr) is
// reserved now; physical memory is taken when an exec of the graph is
// launched (as for cuGraphAddMemAllocNode).
CUresult graph_add_mem_alloc(CUgraph g, const std::vector<CUgraphNode>& deps, int device, size_t bytes,
                             CUgraphNode* out, CUdeviceptr* dptr);
// Stream capture of cuMemFreeAsync: a memory-free node of `dptr`, which must be
// a graph allocation (an alloc node of `g`, or memory of a launched graph);
// else CUDA_ERROR_INVALID_VALUE.
CUresult graph_add_mem_free(CUgraph g, const std::vector<CUgraphNode>& deps, CUdeviceptr dptr, CUgraphNode* out);
// Stream capture of cuGraphLaunch: a child-graph node that runs what `exec`
// runs. CUDA_ERROR_INVALID_VALUE for an unknown exec; CUDA_ERROR_NOT_SUPPORTED
// when the exec has memory nodes (a child graph may not: cuGraphAddChildGraphNode).
CUresult graph_add_child_exec(CUgraph g, const std::vector<CUgraphNode>& deps, CUgraphExec exec, CUgraphNode* out);
// True when `g` is a live graph.
bool graph_valid(CUgraph g);
// True when `node` is a live node of graph `g`.
bool graph_has_node(CUgraph g, CUgraphNode node);
// True when `ancestor` is `from` or reachable from `from` through dependencies.
bool graph_node_reaches(CUgraphNode from, CUgraphNode ancestor);

}  // namespace simgpu
