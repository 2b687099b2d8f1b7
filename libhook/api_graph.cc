// Exported wrapper: graph memory-allocation nodes.
//
// A graph allocation is charged when its node is added (the earliest moment
// the program holds the address, and the only one where refusing is a clean
// error for it), to the device of poolProps.location, keyed by the node's
// dptr. The charge is returned when that pointer is freed outside the graph
// (cuMemFree / cuMemFreeAsync). An allocation freed inside the graph (a free
// node) stays charged: conservative, never under the real use.
#include "charging.h"

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                            const CUgraphNode* dependencies, size_t numDependencies,
                                            CUDA_MEM_ALLOC_NODE_PARAMS* nodeParams) {
  VGPU_REAL_OR_RETURN(real, cuGraphAddMemAllocNode);
  auto call = [&] { return real(phGraphNode, hGraph, dependencies, numDependencies, nodeParams); };
  if (!nodeParams || nodeParams->bytesize == 0 ||
      nodeParams->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE)
    return call();
  HookCore& core = HookCore::get();
  int slot = core.devices().slot_of_ordinal(nodeParams->poolProps.location.id);
  CUresult r = charged_call(slot, nodeParams->bytesize, "cuGraphAddMemAllocNode", call);
  if (r == CUDA_SUCCESS) core.pointers().add(nodeParams->dptr, {slot, nodeParams->bytesize});
  return r;
}
