// Follows graph memory nodes through their lifecycle against a quota, as a
// real driver-API program would, and prints "ok" or the first step that went
// wrong. The ledger is observed exactly through cuMemGetInfo, which the hook
// virtualizes (used = total - free = what is charged).
//
// Usage: hook_graph_probe UNIT_BYTES   (the test sets the quota to 4 units)
// Steps (units in parentheses are the expected charge afterwards):
//  1. alloc node of 3 units (3); another of 2 → OUT_OF_MEMORY (3); one of 1
//     lands exactly on the quota (4); cuMemAlloc of 1 more → OUT_OF_MEMORY;
//  2. the graph holding the 1-unit node is destroyed unlaunched (3);
//  3. a free node is added after the 3-unit alloc; launching its exec returns
//     the charge (0); with 2 units held by cuMemAlloc a relaunch (which needs
//     3 transiently) is refused; after freeing them it runs (0);
//  4. an alloc node without free node, launched (2): destroying exec and
//     graph keeps the live memory charged (2); cuMemFree returns it (0);
//  5. a graph destroyed before its exec is launched returns its charge (0);
//     launching the surviving exec charges it again (1); cuMemFree (0);
//  6. cuGraphAddNode with a memory-alloc node is charged the same way.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

size_t g_unit = 0;
CUstream g_stream = nullptr;

bool expect(const std::string& step, CUresult got, CUresult want) {
  if (got == want) return true;
  std::printf("FAIL %s: got %d, want %d\n", step.c_str(), static_cast<int>(got), static_cast<int>(want));
  return false;
}

// The charge the hook reports, in units (-1 if unknown).
long long used_units() {
  size_t free_b = 0, total_b = 0;
  if (cuMemGetInfo_v2(&free_b, &total_b) != CUDA_SUCCESS) return -1;
  return static_cast<long long>((total_b - free_b) / g_unit);
}

bool expect_used(const std::string& step, long long units) {
  long long got = used_units();
  if (got == units) return true;
  std::printf("FAIL %s: %lld units charged, want %lld\n", step.c_str(), got, units);
  return false;
}

CUDA_MEM_ALLOC_NODE_PARAMS alloc_params(size_t units) {
  CUDA_MEM_ALLOC_NODE_PARAMS p = {};
  p.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.poolProps.location.id = 0;
  p.bytesize = units * g_unit;
  return p;
}

CUresult add_alloc(CUgraph g, size_t units, CUgraphNode* node, CUdeviceptr* dptr) {
  CUDA_MEM_ALLOC_NODE_PARAMS p = alloc_params(units);
  CUresult r = cuGraphAddMemAllocNode(node, g, nullptr, 0, &p);
  *dptr = p.dptr;
  return r;
}

CUresult launch(CUgraphExec e) {
  CUresult r = cuGraphLaunch(e, g_stream);
  return r == CUDA_SUCCESS ? cuStreamSynchronize(g_stream) : r;
}

bool quota_boundary(CUgraph* g1, CUgraphNode* a1, CUdeviceptr* p1) {
  CUgraph g2;
  CUgraphNode n;
  CUdeviceptr p, extra;
  return expect("create", cuGraphCreate(g1, 0), CUDA_SUCCESS) &&
         expect("alloc node 3 units", add_alloc(*g1, 3, a1, p1), CUDA_SUCCESS) && expect_used("after 3", 3) &&
         expect("create", cuGraphCreate(&g2, 0), CUDA_SUCCESS) &&
         expect("alloc node 2 units over", add_alloc(g2, 2, &n, &p), CUDA_ERROR_OUT_OF_MEMORY) &&
         expect_used("after refusal", 3) &&
         expect("alloc node to the exact quota", add_alloc(g2, 1, &n, &p), CUDA_SUCCESS) &&
         expect_used("at quota", 4) &&
         expect("cuMemAlloc over", cuMemAlloc_v2(&extra, g_unit), CUDA_ERROR_OUT_OF_MEMORY) &&
         expect("destroy unlaunched", cuGraphDestroy(g2), CUDA_SUCCESS) &&
         expect_used("unlaunched graph destroyed", 3);
}

bool free_node_returns(CUgraph g1, CUgraphNode a1, CUdeviceptr p1) {
  CUgraphNode f;
  CUgraphExec e;
  CUdeviceptr held;
  bool ok = expect("free node", cuGraphAddMemFreeNode(&f, g1, &a1, 1, p1), CUDA_SUCCESS) &&
            expect("instantiate", cuGraphInstantiateWithFlags(&e, g1, 0), CUDA_SUCCESS) &&
            expect_used("instantiated", 3) && expect("launch alloc+free", launch(e), CUDA_SUCCESS) &&
            expect_used("after alloc+free launch", 0) &&
            expect("hold 2 units", cuMemAlloc_v2(&held, 2 * g_unit), CUDA_SUCCESS) &&
            expect("relaunch over quota", cuGraphLaunch(e, g_stream), CUDA_ERROR_OUT_OF_MEMORY) &&
            expect_used("after refused relaunch", 2) && expect("free held", cuMemFree_v2(held), CUDA_SUCCESS) &&
            expect("relaunch", launch(e), CUDA_SUCCESS) && expect_used("after relaunch", 0);
  return ok && expect("exec destroy", cuGraphExecDestroy(e), CUDA_SUCCESS) &&
         expect("graph destroy", cuGraphDestroy(g1), CUDA_SUCCESS) && expect_used("graph 1 gone", 0);
}

bool live_memory_outlives_graph() {
  CUgraph g;
  CUgraphNode n;
  CUdeviceptr p;
  CUgraphExec e;
  return expect("create", cuGraphCreate(&g, 0), CUDA_SUCCESS) &&
         expect("alloc node 2 units", add_alloc(g, 2, &n, &p), CUDA_SUCCESS) &&
         expect("instantiate", cuGraphInstantiateWithFlags(&e, g, 0), CUDA_SUCCESS) &&
         expect("launch alloc only", launch(e), CUDA_SUCCESS) && expect_used("live after launch", 2) &&
         expect("exec destroy", cuGraphExecDestroy(e), CUDA_SUCCESS) &&
         expect("graph destroy", cuGraphDestroy(g), CUDA_SUCCESS) && expect_used("live after destroy", 2) &&
         expect("cuMemFree", cuMemFree_v2(p), CUDA_SUCCESS) && expect_used("freed", 0);
}

bool surviving_exec_charges_again() {
  CUgraph g;
  CUgraphNode n;
  CUdeviceptr p;
  CUgraphExec e;
  return expect("create", cuGraphCreate(&g, 0), CUDA_SUCCESS) &&
         expect("alloc node 1 unit", add_alloc(g, 1, &n, &p), CUDA_SUCCESS) &&
         expect("instantiate", cuGraphInstantiateWithFlags(&e, g, 0), CUDA_SUCCESS) &&
         expect("graph destroy", cuGraphDestroy(g), CUDA_SUCCESS) && expect_used("graph gone, exec not run", 0) &&
         expect("launch", launch(e), CUDA_SUCCESS) && expect_used("exec launched", 1) &&
         expect("cuMemFree", cuMemFree_v2(p), CUDA_SUCCESS) && expect_used("freed", 0) &&
         expect("exec destroy", cuGraphExecDestroy(e), CUDA_SUCCESS);
}

bool generic_add_node() {
  CUgraph g;
  CUgraphNode n;
  CUgraphNodeParams np = {};
  np.type = CU_GRAPH_NODE_TYPE_MEM_ALLOC;
  np.alloc.poolProps = alloc_params(0).poolProps;
  np.alloc.bytesize = 5 * g_unit;
  bool ok = expect("create", cuGraphCreate(&g, 0), CUDA_SUCCESS) &&
            expect("cuGraphAddNode over", cuGraphAddNode(&n, g, nullptr, 0, &np), CUDA_ERROR_OUT_OF_MEMORY);
  np.alloc.bytesize = 4 * g_unit;
  return ok && expect("cuGraphAddNode at quota", cuGraphAddNode(&n, g, nullptr, 0, &np), CUDA_SUCCESS) &&
         expect_used("added", 4) && expect("destroy", cuGraphDestroy(g), CUDA_SUCCESS) && expect_used("gone", 0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hook_graph_probe UNIT_BYTES\n");
    return 2;
  }
  g_unit = std::strtoull(argv[1], nullptr, 10);
  CUcontext ctx;
  if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS || cuStreamCreate(&g_stream, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
    std::printf("FAIL: no context\n");
    return 1;
  }
  CUgraph g1;
  CUgraphNode a1;
  CUdeviceptr p1;
  bool ok = quota_boundary(&g1, &a1, &p1) && free_node_returns(g1, a1, p1) && live_memory_outlives_graph() &&
            surviving_exec_charges_again() && generic_add_node();
  if (ok) std::printf("ok\n");
  return ok ? 0 : 1;
}
