// CUDA graphs on simgpu: kernel, host and memory nodes, instantiate, launch.
#include <cuda.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "../programs/spin_ptx.h"
#include "test_support.h"

namespace {

class SimGraph : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxCreate(&ctx_, nullptr, 0, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleLoadData(&mod_, kSpinPtx), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleGetFunction(&spin_, mod_, "spin_ns"), CUDA_SUCCESS);
    ASSERT_EQ(cuGraphCreate(&graph_, 0), CUDA_SUCCESS);
  }
  void TearDown() override {
    cuGraphDestroy(graph_);
    cuCtxDestroy(ctx_);
  }
  size_t free_memory() {
    size_t f = 0, t = 0;
    EXPECT_EQ(cuMemGetInfo(&f, &t), CUDA_SUCCESS);
    return f;
  }
  CUDA_MEM_ALLOC_NODE_PARAMS alloc_params(size_t bytes) {
    CUDA_MEM_ALLOC_NODE_PARAMS p{};
    p.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.poolProps.location.id = 0;
    p.bytesize = bytes;
    return p;
  }

  vgpu::test::SimNode node_{{{"SIMGPU_MEMORY", "1Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}}};
  CUcontext ctx_ = nullptr;
  CUmodule mod_ = nullptr;
  CUfunction spin_ = nullptr;
  CUgraph graph_ = nullptr;
};

TEST_F(SimGraph, KernelNodesRunInDependencyOrderOnLaunch) {
  unsigned long long ns = 60'000'000;
  void* params[] = {&ns};
  CUDA_KERNEL_NODE_PARAMS kp{};
  kp.func = spin_;
  kp.gridDimX = kp.gridDimY = kp.gridDimZ = 1;
  kp.blockDimX = kp.blockDimY = kp.blockDimZ = 1;
  kp.kernelParams = params;
  CUgraphNode k1, k2, h;
  ASSERT_EQ(cuGraphAddKernelNode(&k1, graph_, nullptr, 0, &kp), CUDA_SUCCESS);
  ns = 1;  // parameters are captured when the node is added
  ASSERT_EQ(cuGraphAddKernelNode(&k2, graph_, &k1, 1, &kp), CUDA_SUCCESS);
  std::atomic<int> ran{0};
  CUDA_HOST_NODE_PARAMS hp{[](void* p) { static_cast<std::atomic<int>*>(p)->fetch_add(1); }, &ran};
  CUgraphNode deps[] = {k1, k2};
  ASSERT_EQ(cuGraphAddHostNode(&h, graph_, deps, 2, &hp), CUDA_SUCCESS);
  size_t count = 0;
  ASSERT_EQ(cuGraphGetNodes(graph_, nullptr, &count), CUDA_SUCCESS);
  EXPECT_EQ(count, 3u);
  CUgraphExec exec;
  ASSERT_EQ(cuGraphInstantiate(&exec, graph_, 0), CUDA_SUCCESS);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(cuGraphLaunch(exec, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphLaunch(exec, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamQuery(nullptr), CUDA_ERROR_NOT_READY);
  ASSERT_EQ(cuStreamSynchronize(nullptr), CUDA_SUCCESS);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(119));
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(cuGraphExecDestroy(exec), CUDA_SUCCESS);
  EXPECT_EQ(cuGraphLaunch(exec, nullptr), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(SimGraph, MemoryNodesTakeMemoryAtLaunchAndFreeInStreamOrder) {
  auto ap = alloc_params(256ull << 20);
  CUgraphNode a, f;
  ASSERT_EQ(cuGraphAddMemAllocNode(&a, graph_, nullptr, 0, &ap), CUDA_SUCCESS);
  ASSERT_NE(ap.dptr, 0u);
  size_t before = free_memory();
  ASSERT_EQ(cuGraphAddMemFreeNode(&f, graph_, &a, 1, ap.dptr), CUDA_SUCCESS);
  CUgraphExec exec;
  ASSERT_EQ(cuGraphInstantiateWithFlags(&exec, graph_, 0), CUDA_SUCCESS);
  EXPECT_EQ(free_memory(), before);  // nothing taken until launch
  CUstream s;
  ASSERT_EQ(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  // Hold the stream so the free node cannot run yet.
  unsigned long long ns = 100'000'000;
  void* params[] = {&ns};
  ASSERT_EQ(cuLaunchKernel(spin_, 1, 1, 1, 1, 1, 1, 0, s, params, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphLaunch(exec, s), CUDA_SUCCESS);
  EXPECT_EQ(before - free_memory(), 256ull << 20);
  ASSERT_EQ(cuStreamSynchronize(s), CUDA_SUCCESS);
  EXPECT_EQ(free_memory(), before);
  cuGraphExecDestroy(exec);
}

TEST_F(SimGraph, LaunchFailsWithOutOfMemoryWhenTheDeviceIsFull) {
  auto ap = alloc_params(768ull << 20);
  CUgraphNode a;
  ASSERT_EQ(cuGraphAddMemAllocNode(&a, graph_, nullptr, 0, &ap), CUDA_SUCCESS);
  CUgraphExec exec;
  ASSERT_EQ(cuGraphInstantiateWithFlags(&exec, graph_, 0), CUDA_SUCCESS);
  CUdeviceptr hog;
  ASSERT_EQ(cuMemAlloc(&hog, 512ull << 20), CUDA_SUCCESS);
  size_t before = free_memory();
  EXPECT_EQ(cuGraphLaunch(exec, nullptr), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(free_memory(), before);
  ASSERT_EQ(cuMemFree(hog), CUDA_SUCCESS);
  EXPECT_EQ(cuGraphLaunch(exec, nullptr), CUDA_SUCCESS);
  // Without a free node the memory stays allocated: a second launch is refused.
  EXPECT_EQ(cuGraphLaunch(exec, nullptr), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuStreamSynchronize(nullptr), CUDA_SUCCESS);
  cuGraphExecDestroy(exec);
}

TEST_F(SimGraph, GenericAddNodeAndValidation) {
  CUgraphNodeParams p{};
  p.type = CU_GRAPH_NODE_TYPE_MEM_ALLOC;
  p.alloc.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.alloc.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.alloc.bytesize = 4 << 20;
  CUgraphNode n;
  ASSERT_EQ(cuGraphAddNode(&n, graph_, nullptr, nullptr, 0, &p), CUDA_SUCCESS);
  EXPECT_NE(p.alloc.dptr, 0u);
  CUgraphNodeType type;
  ASSERT_EQ(cuGraphNodeGetType(n, &type), CUDA_SUCCESS);
  EXPECT_EQ(type, CU_GRAPH_NODE_TYPE_MEM_ALLOC);
  p.alloc.bytesize = 0;
  EXPECT_EQ(cuGraphAddNode(&n, graph_, nullptr, nullptr, 0, &p), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGraphAddMemFreeNode(&n, graph_, nullptr, 0, 0x1234), CUDA_ERROR_INVALID_VALUE);
  CUgraph other;
  ASSERT_EQ(cuGraphCreate(&other, 0), CUDA_SUCCESS);
  CUgraphNode foreign;
  ASSERT_EQ(cuGraphAddEmptyNode(&foreign, other, nullptr, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuGraphAddEmptyNode(&n, graph_, &foreign, 1), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuGraphDestroy(other), CUDA_SUCCESS);
  EXPECT_EQ(cuGraphDestroy(other), CUDA_ERROR_INVALID_VALUE);
}

}  // namespace
