// Exported wrappers: graph memory nodes, and the graph lifecycle calls that
// decide when their memory is really held (add, instantiate, launch, destroy).
//
// The lifecycle the driver documents (cuGraphAddMemAllocNode in cuda.h): an
// alloc node fixes its address when it is added; physical memory is taken
// when a graph exec containing it is launched, and given back by a free node
// (in the same graph or in another graph's launch), by cuMemFree /
// cuMemFreeAsync, or never taken at all if the graph goes away unlaunched.
// The hook follows it this way:
//  - add: the node's bytes are charged before the real call (the only point
//    where a refusal is a clean error for the program), keyed by its dptr in
//    the pointer registry, so cuMemFree/cuMemFreeAsync return it as usual;
//  - launch (launch_graph_charged, graph_memory.h, called by the
//    cuGraphLaunch wrappers of api_launch.cc after the launch gate): an alloc
//    node of the exec whose charge is not held (returned by an earlier
//    launch's free node, or by cuGraphDestroy) is charged again before the
//    real call (over quota: CUDA_ERROR_OUT_OF_MEMORY, nothing is queued);
//    after a successful launch, every free node of the exec returns its
//    pointer's charge. The hook cannot see the stream reach the free node, so
//    the charge is returned when the launch is enqueued, like cuMemFreeAsync
//    (api_async.cc);
//  - cuGraphDestroy: alloc nodes that no launch has allocated return their
//    charge; a later launch of a surviving exec charges again.
// An exec's memory nodes are read from the graph when it is instantiated
// (cuGraphGetNodes), so nodes made by stream capture or cuGraphAddNode are
// seen too. Not followed: memory nodes inside child-graph nodes.
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include <pthread.h>

#include "charging.h"
#include "graph_memory.h"
#include "real_driver.h"

namespace vgpu::hook {
namespace {

// One memory-allocation node. `launched`: a launch has allocated its memory
// (so destroying its graph does not return the charge: the memory lives on).
struct AllocNode {
  CUdeviceptr dptr = 0;
  int slot = -1;
  uint64_t bytes = 0;
  bool launched = false;
};
using AllocNodes = std::vector<std::shared_ptr<AllocNode>>;

// What a graph exec does with memory when it is launched.
struct ExecMemory {
  AllocNodes allocs;
  std::vector<CUdeviceptr> frees;
};

// The real query functions used to read a graph's memory nodes.
struct GraphQueries {
  CUresult (*get_nodes)(CUgraph, CUgraphNode*, size_t*);
  CUresult (*get_type)(CUgraphNode, CUgraphNodeType*);
  CUresult (*alloc_params)(CUgraphNode, CUDA_MEM_ALLOC_NODE_PARAMS*);
  CUresult (*free_params)(CUgraphNode, CUdeviceptr*);
};

const GraphQueries& queries() {
  static const GraphQueries q = {
      reinterpret_cast<decltype(q.get_nodes)>(real_cuda_symbol("cuGraphGetNodes")),
      reinterpret_cast<decltype(q.get_type)>(real_cuda_symbol("cuGraphNodeGetType")),
      reinterpret_cast<decltype(q.alloc_params)>(real_cuda_symbol("cuGraphMemAllocNodeGetParams")),
      reinterpret_cast<decltype(q.free_params)>(real_cuda_symbol("cuGraphMemFreeNodeGetParams")),
  };
  return q;
}

// A graph's memory nodes as the driver reports them.
struct GraphNodesSeen {
  std::vector<CUDA_MEM_ALLOC_NODE_PARAMS> allocs;
  std::vector<CUdeviceptr> frees;
};

GraphNodesSeen read_memory_nodes(CUgraph g) {
  GraphNodesSeen seen;
  const GraphQueries& q = queries();
  size_t count = 0;
  if (!q.get_nodes || !q.get_type || q.get_nodes(g, nullptr, &count) != CUDA_SUCCESS || count == 0) return seen;
  std::vector<CUgraphNode> nodes(count);
  if (q.get_nodes(g, nodes.data(), &count) != CUDA_SUCCESS) return seen;
  nodes.resize(std::min(count, nodes.size()));
  for (CUgraphNode n : nodes) {
    CUgraphNodeType type;
    if (q.get_type(n, &type) != CUDA_SUCCESS) continue;
    CUDA_MEM_ALLOC_NODE_PARAMS a;
    CUdeviceptr f = 0;
    if (type == CU_GRAPH_NODE_TYPE_MEM_ALLOC && q.alloc_params && q.alloc_params(n, &a) == CUDA_SUCCESS)
      seen.allocs.push_back(a);
    else if (type == CU_GRAPH_NODE_TYPE_MEM_FREE && q.free_params && q.free_params(n, &f) == CUDA_SUCCESS)
      seen.frees.push_back(f);
  }
  return seen;
}

// True if the pointer registry holds a charge for `dptr`.
bool is_charged(CUdeviceptr dptr) {
  AllocationRegistry& reg = HookCore::get().pointers();
  Charge c;
  if (!reg.take(dptr, &c)) return false;
  reg.add(dptr, c);
  return true;
}

// The alloc nodes of live graphs and the memory nodes of live execs.
// Thread-safety: every method is thread-safe; no driver call is made under
// the lock. Never destroyed; emptied in the child after fork().
class GraphMemory {
 public:
  static GraphMemory& get() {
    static GraphMemory* m = new GraphMemory();
    return *m;
  }

  // An alloc node charged at add time was added to `g`.
  void added(CUgraph g, CUdeviceptr dptr, int slot, uint64_t bytes) {
    std::lock_guard<std::mutex> l(mu_);
    graphs_[g].push_back(std::make_shared<AllocNode>(AllocNode{dptr, slot, bytes, false}));
  }

  // `e` was instantiated from `g`: remembers what launching it does.
  void instantiated(CUgraphExec e, CUgraph g) {
    GraphNodesSeen seen = read_memory_nodes(g);
    if (seen.allocs.empty() && seen.frees.empty()) return;
    ExecMemory em;
    em.frees = std::move(seen.frees);
    std::lock_guard<std::mutex> l(mu_);
    AllocNodes& known = graphs_[g];
    for (const CUDA_MEM_ALLOC_NODE_PARAMS& a : seen.allocs) em.allocs.push_back(find_or_add(known, a));
    execs_[e] = std::move(em);
  }

  // Launches `e` through `call` with its alloc nodes charged (see the top).
  template <class Call>
  CUresult launch(CUgraphExec e, Call call) {
    ExecMemory em;
    if (!snapshot(e, &em)) return call();
    std::vector<CUdeviceptr> charged_now;
    if (!charge_allocations(em, &charged_now)) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = call();
    HookCore& core = HookCore::get();
    if (r != CUDA_SUCCESS) {
      for (CUdeviceptr p : charged_now) core.uncharge_record(core.pointers(), p);
      return r;
    }
    mark_launched(em);
    for (CUdeviceptr p : em.frees) core.uncharge_record(core.pointers(), p);
    return r;
  }

  // `g` was destroyed: unlaunched alloc nodes return their charge.
  void graph_destroyed(CUgraph g) {
    std::vector<CUdeviceptr> unallocated;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = graphs_.find(g);
      if (it == graphs_.end()) return;
      for (auto& n : it->second)
        if (!n->launched) unallocated.push_back(n->dptr);
      graphs_.erase(it);
    }
    HookCore& core = HookCore::get();
    for (CUdeviceptr p : unallocated) core.uncharge_record(core.pointers(), p);
  }

  void exec_destroyed(CUgraphExec e) {
    std::lock_guard<std::mutex> l(mu_);
    execs_.erase(e);
  }

 private:
  GraphMemory() { pthread_atfork(nullptr, nullptr, &GraphMemory::atfork_child); }

  // The child owns no graph of its parent (and its lock may be held by a
  // thread that does not exist in the child).
  static void atfork_child() {
    GraphMemory& m = get();
    new (&m.mu_) std::mutex();
    m.graphs_.clear();
    m.execs_.clear();
  }

  // Nodes seen at instantiation but not charged at add time (stream capture,
  // or added before the hook was loaded) get a record charged at launch.
  std::shared_ptr<AllocNode> find_or_add(AllocNodes& known, const CUDA_MEM_ALLOC_NODE_PARAMS& a) {
    for (auto& n : known)
      if (n->dptr == a.dptr) return n;
    int slot = HookCore::get().devices().slot_of_ordinal(a.poolProps.location.id);
    known.push_back(std::make_shared<AllocNode>(AllocNode{a.dptr, slot, a.bytesize, false}));
    return known.back();
  }

  bool snapshot(CUgraphExec e, ExecMemory* out) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = execs_.find(e);
    if (it == execs_.end()) return false;
    *out = it->second;
    return true;
  }

  // Charges every alloc node whose charge is not held; all or nothing.
  static bool charge_allocations(const ExecMemory& em, std::vector<CUdeviceptr>* charged_now) {
    HookCore& core = HookCore::get();
    for (auto& n : em.allocs) {
      if (is_charged(n->dptr)) continue;
      if (!core.charge(n->slot, n->bytes, "cuGraphLaunch")) {
        for (CUdeviceptr p : *charged_now) core.uncharge_record(core.pointers(), p);
        return false;
      }
      core.pointers().add(n->dptr, {n->slot, n->bytes, core.current_context()});
      charged_now->push_back(n->dptr);
    }
    return true;
  }

  void mark_launched(const ExecMemory& em) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& n : em.allocs) n->launched = true;
  }

  std::mutex mu_;
  std::unordered_map<CUgraph, AllocNodes> graphs_;
  std::unordered_map<CUgraphExec, ExecMemory> execs_;
};

// Charges an alloc node described by `props`/`bytes` around `call`, which
// fills `*dptr` on success.
template <class Call>
CUresult add_alloc_node(CUgraph g, const CUmemPoolProps& props, size_t bytes, const CUdeviceptr* dptr, Call call) {
  if (bytes == 0 || props.location.type != CU_MEM_LOCATION_TYPE_DEVICE) return call();
  HookCore& core = HookCore::get();
  int slot = core.devices().slot_of_ordinal(props.location.id);
  CUresult r = charged_call(slot, bytes, "cuGraphAddMemAllocNode", call);
  if (r != CUDA_SUCCESS) return r;
  core.pointers().add(*dptr, {slot, bytes, core.current_context()});
  GraphMemory::get().added(g, *dptr, slot, bytes);
  return r;
}

template <class Call>
CUresult add_generic_node(CUgraph g, CUgraphNodeParams* p, Call call) {
  if (!p || p->type != CU_GRAPH_NODE_TYPE_MEM_ALLOC) return call();
  return add_alloc_node(g, p->alloc.poolProps, p->alloc.bytesize, &p->alloc.dptr, call);
}

template <class Call>
CUresult instantiate(CUgraphExec* out, CUgraph g, Call call) {
  CUresult r = call();
  if (r == CUDA_SUCCESS && out) GraphMemory::get().instantiated(*out, g);
  return r;
}

}  // namespace

CUresult launch_graph_charged(GraphLaunchFn real, CUgraphExec exec, CUstream stream) {
  return GraphMemory::get().launch(exec, [&] { return real(exec, stream); });
}

}  // namespace vgpu::hook

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode* phGraphNode, CUgraph hGraph,
                                            const CUgraphNode* dependencies, size_t numDependencies,
                                            CUDA_MEM_ALLOC_NODE_PARAMS* nodeParams) {
  VGPU_REAL_OR_RETURN(real, cuGraphAddMemAllocNode);
  auto call = [&] { return real(phGraphNode, hGraph, dependencies, numDependencies, nodeParams); };
  if (!nodeParams) return call();
  return add_alloc_node(hGraph, nodeParams->poolProps, nodeParams->bytesize, &nodeParams->dptr, call);
}

VGPU_EXPORT CUresult cuGraphAddNode(CUgraphNode* phGraphNode, CUgraph hGraph, const CUgraphNode* dependencies,
                                    size_t numDependencies, CUgraphNodeParams* nodeParams) {
  VGPU_REAL_OR_RETURN(real, cuGraphAddNode);
  return add_generic_node(hGraph, nodeParams,
                          [&] { return real(phGraphNode, hGraph, dependencies, numDependencies, nodeParams); });
}

VGPU_EXPORT CUresult cuGraphAddNode_v2(CUgraphNode* phGraphNode, CUgraph hGraph, const CUgraphNode* dependencies,
                                       const CUgraphEdgeData* dependencyData, size_t numDependencies,
                                       CUgraphNodeParams* nodeParams) {
  VGPU_REAL_OR_RETURN(real, cuGraphAddNode_v2);
  return add_generic_node(hGraph, nodeParams, [&] {
    return real(phGraphNode, hGraph, dependencies, dependencyData, numDependencies, nodeParams);
  });
}

VGPU_EXPORT CUresult cuGraphInstantiate(CUgraphExec* phGraphExec, CUgraph hGraph, CUgraphNode* phErrorNode,
                                        char* logBuffer, size_t bufferSize) {
  VGPU_REAL_OR_RETURN(real, cuGraphInstantiate);
  return instantiate(phGraphExec, hGraph, [&] { return real(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize); });
}

VGPU_EXPORT CUresult cuGraphInstantiate_v2(CUgraphExec* phGraphExec, CUgraph hGraph, CUgraphNode* phErrorNode,
                                           char* logBuffer, size_t bufferSize) {
  VGPU_REAL_OR_RETURN(real, cuGraphInstantiate_v2);
  return instantiate(phGraphExec, hGraph, [&] { return real(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize); });
}

VGPU_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags) {
  VGPU_REAL_OR_RETURN(real, cuGraphInstantiateWithFlags);
  return instantiate(phGraphExec, hGraph, [&] { return real(phGraphExec, hGraph, flags); });
}

VGPU_EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                  CUDA_GRAPH_INSTANTIATE_PARAMS* instantiateParams) {
  VGPU_REAL_OR_RETURN(real, cuGraphInstantiateWithParams);
  return instantiate(phGraphExec, hGraph, [&] { return real(phGraphExec, hGraph, instantiateParams); });
}

VGPU_EXPORT CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec* phGraphExec, CUgraph hGraph,
                                                       CUDA_GRAPH_INSTANTIATE_PARAMS* instantiateParams) {
  VGPU_REAL_OR_RETURN(real, cuGraphInstantiateWithParams_ptsz);
  return instantiate(phGraphExec, hGraph, [&] { return real(phGraphExec, hGraph, instantiateParams); });
}

VGPU_EXPORT CUresult cuGraphDestroy(CUgraph hGraph) {
  VGPU_REAL_OR_RETURN(real, cuGraphDestroy);
  CUresult r = real(hGraph);
  if (r == CUDA_SUCCESS) GraphMemory::get().graph_destroyed(hGraph);
  return r;
}

VGPU_EXPORT CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
  VGPU_REAL_OR_RETURN(real, cuGraphExecDestroy);
  CUresult r = real(hGraphExec);
  if (r == CUDA_SUCCESS) GraphMemory::get().exec_destroyed(hGraphExec);
  return r;
}
