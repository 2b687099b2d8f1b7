// Graph memory accounting at launch time (implemented in api_graph.cc, where
// the rest of the graph memory lifecycle is followed).
//
// The cuGraphLaunch/_ptsz wrappers call launch_graph_charged() after the
// launch gate: it charges the exec's memory-allocation nodes whose charge is
// not held (over quota: CUDA_ERROR_OUT_OF_MEMORY and `real` is not called),
// calls `real`, rolls the charges back if it fails, and on success returns
// the charge of every pointer a free node of the exec frees.
// Thread-safety: thread-safe.
#pragma once

#include "cuda_api.h"

namespace vgpu::hook {

using GraphLaunchFn = CUresult (*)(CUgraphExec, CUstream);

CUresult launch_graph_charged(GraphLaunchFn real, CUgraphExec exec, CUstream stream);

}  // namespace vgpu::hook
