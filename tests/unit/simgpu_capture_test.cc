// Stream capture on simgpu (docs/simgpu.md, "Stream capture"): captured work
// becomes graph nodes that run only when the graph is launched; capture modes
// decide which threads may make potentially unsafe calls; errors and
// invalidation as the real driver reports them; fork/join across streams.
#include <cuda.h>
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "../programs/spin_ptx.h"
#include "test_support.h"

namespace {

void bump(void* p) { static_cast<std::atomic<int>*>(p)->fetch_add(1); }

// Exports that cuda.h maps to other names (or does not declare) are called by
// their exact exported name, as a program built against an older header would.
template <class F>
F exported(const char* name) {
  auto f = reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
  EXPECT_NE(f, nullptr) << name;
  return f;
}
using Begin1 = CUresult (*)(CUstream);
using BeginMode = CUresult (*)(CUstream, CUstreamCaptureMode);
using End = CUresult (*)(CUstream, CUgraph*);
using Info1 = CUresult (*)(CUstream, CUstreamCaptureStatus*, cuuint64_t*);
using Info2 = CUresult (*)(CUstream, CUstreamCaptureStatus*, cuuint64_t*, CUgraph*, const CUgraphNode**, size_t*);
using Info3 = CUresult (*)(CUstream, CUstreamCaptureStatus*, cuuint64_t*, CUgraph*, const CUgraphNode**,
                           const CUgraphEdgeData**, size_t*);

class SimCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxCreate(&ctx_, nullptr, 0, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleLoadData(&mod_, kSpinPtx), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleGetFunction(&spin_, mod_, "spin_ns"), CUDA_SUCCESS);
    ASSERT_EQ(cuStreamCreate(&s_, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
    ASSERT_EQ(cuStreamCreate(&s2_, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
    ASSERT_EQ(cuEventCreate(&e_, CU_EVENT_DISABLE_TIMING), CUDA_SUCCESS);
    ASSERT_EQ(cuEventCreate(&e2_, CU_EVENT_DISABLE_TIMING), CUDA_SUCCESS);
  }
  void TearDown() override { cuCtxDestroy(ctx_); }

  CUresult spin(CUstream s, unsigned long long ns = 1000) {
    void* params[] = {&ns};
    return cuLaunchKernel(spin_, 1, 1, 1, 1, 1, 1, 0, s, params, nullptr);
  }
  CUstreamCaptureStatus status(CUstream s) {
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    EXPECT_EQ(cuStreamIsCapturing(s, &st), CUDA_SUCCESS);
    return st;
  }
  std::vector<CUgraphNodeType> node_types(CUgraph g) {
    size_t n = 0;
    EXPECT_EQ(cuGraphGetNodes(g, nullptr, &n), CUDA_SUCCESS);
    std::vector<CUgraphNode> nodes(n);
    EXPECT_EQ(cuGraphGetNodes(g, nodes.data(), &n), CUDA_SUCCESS);
    std::vector<CUgraphNodeType> types;
    for (auto node : nodes) {
      CUgraphNodeType t;
      EXPECT_EQ(cuGraphNodeGetType(node, &t), CUDA_SUCCESS);
      types.push_back(t);
    }
    return types;
  }
  // Runs f on a new thread with this test's context current; returns its result.
  template <class F>
  CUresult on_thread(F f) {
    CUresult r = CUDA_ERROR_UNKNOWN;
    std::thread t([&] {
      cuCtxSetCurrent(ctx_);
      r = f();
    });
    t.join();
    return r;
  }

  vgpu::test::SimNode node_{{{"SIMGPU_MEMORY", "1Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}}};
  CUcontext ctx_ = nullptr;
  CUmodule mod_ = nullptr;
  CUfunction spin_ = nullptr;
  CUstream s_ = nullptr, s2_ = nullptr;
  CUevent e_ = nullptr, e2_ = nullptr;
};

TEST_F(SimCapture, CapturedWorkBecomesNodesAndRunsOnlyWhenTheGraphIsLaunched) {
  CUdeviceptr buf;
  ASSERT_EQ(cuMemAlloc(&buf, 64), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD32(buf, 0, 16), CUDA_SUCCESS);
  std::vector<uint32_t> host(16, 7);
  std::atomic<int> ran{0};

  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_NONE);
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_ACTIVE);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  unsigned long long ns = 1000;
  void* params[] = {&ns};
  CUlaunchConfig cfg{};
  cfg.gridDimX = cfg.gridDimY = cfg.gridDimZ = cfg.blockDimX = cfg.blockDimY = cfg.blockDimZ = 1;
  cfg.hStream = s_;
  ASSERT_EQ(cuLaunchKernelEx(&cfg, spin_, params, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchCooperativeKernel(spin_, 1, 1, 1, 1, 1, 1, 0, s_, params), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD32Async(buf, 0xabcd, 16, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuMemcpyDtoHAsync(host.data(), buf, 64, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchHostFunc(s_, bump, &ran), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e_, s_), CUDA_SUCCESS);  // no node: a capture-internal marker

  CUgraph g = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_NONE);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(ran.load(), 0);  // nothing captured ran
  EXPECT_EQ(host[0], 7u);
  EXPECT_EQ(cuStreamQuery(s_), CUDA_SUCCESS);
  EXPECT_EQ(node_types(g), (std::vector<CUgraphNodeType>{CU_GRAPH_NODE_TYPE_KERNEL, CU_GRAPH_NODE_TYPE_KERNEL,
                                                          CU_GRAPH_NODE_TYPE_KERNEL, CU_GRAPH_NODE_TYPE_MEMSET,
                                                          CU_GRAPH_NODE_TYPE_MEMCPY, CU_GRAPH_NODE_TYPE_HOST}));

  CUgraphExec exec;
  ASSERT_EQ(cuGraphInstantiate(&exec, g, 0), CUDA_SUCCESS);
  for (int i = 1; i <= 2; ++i) {
    ASSERT_EQ(cuGraphLaunch(exec, s2_), CUDA_SUCCESS);
    ASSERT_EQ(cuStreamSynchronize(s2_), CUDA_SUCCESS);
    EXPECT_EQ(ran.load(), i);
    EXPECT_EQ(host[15], 0xabcdu);
  }
  EXPECT_EQ(cuGraphExecDestroy(exec), CUDA_SUCCESS);
  EXPECT_EQ(cuGraphDestroy(g), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(buf), CUDA_SUCCESS);
}

TEST_F(SimCapture, BeginAndEndRules) {
  EXPECT_EQ(cuStreamBeginCapture(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(cuStreamBeginCapture(CU_STREAM_LEGACY, CU_STREAM_CAPTURE_MODE_RELAXED),
            CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(cuStreamBeginCapture(s_, static_cast<CUstreamCaptureMode>(7)), CUDA_ERROR_INVALID_VALUE);
  CUgraph g = reinterpret_cast<CUgraph>(1);
  EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_ILLEGAL_STATE);
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_ERROR_ILLEGAL_STATE);
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  EXPECT_EQ(node_types(g).size(), 0u);  // an empty capture is an empty graph
  cuGraphDestroy(g);
  // The per-thread default stream can be captured (NULL under _ptsz).
  ASSERT_EQ(exported<BeginMode>("cuStreamBeginCapture_v2_ptsz")(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  CUstreamCaptureStatus st;
  ASSERT_EQ(cuStreamIsCapturing(CU_STREAM_PER_THREAD, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
  ASSERT_EQ(exported<End>("cuStreamEndCapture_ptsz")(nullptr, &g), CUDA_SUCCESS);
  cuGraphDestroy(g);
  // The version-1 export (no mode argument) captures in GLOBAL mode.
  ASSERT_EQ(exported<Begin1>("cuStreamBeginCapture_ptsz")(s_), CUDA_SUCCESS);
  EXPECT_EQ(on_thread([] { return cuCtxSynchronize(); }), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
}

TEST_F(SimCapture, GetCaptureInfoEveryVersion) {
  CUstreamCaptureStatus st;
  cuuint64_t id1 = 0, id2 = 0;
  ASSERT_EQ(exported<Info1>("cuStreamGetCaptureInfo")(s_, &st, &id1), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_NONE);
  EXPECT_EQ(exported<Info1>("cuStreamGetCaptureInfo")(s_, nullptr, &id1), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(exported<Info1>("cuStreamGetCaptureInfo")(s_, &st, &id1), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_ACTIVE);
  CUgraph graph = nullptr;
  const CUgraphNode* deps = nullptr;
  size_t n = 99;
  ASSERT_EQ(exported<Info2>("cuStreamGetCaptureInfo_v2")(s_, &st, &id2, &graph, &deps, &n), CUDA_SUCCESS);
  EXPECT_EQ(id2, id1);
  EXPECT_NE(graph, nullptr);
  EXPECT_EQ(n, 0u);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  const CUgraphEdgeData* edges = reinterpret_cast<const CUgraphEdgeData*>(1);
  ASSERT_EQ(exported<Info3>("cuStreamGetCaptureInfo_v3")(s_, &st, &id2, &graph, &deps, &edges, &n), CUDA_SUCCESS);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(edges, nullptr);
  CUgraphNodeType t;
  ASSERT_EQ(cuGraphNodeGetType(deps[0], &t), CUDA_SUCCESS);  // the node just captured
  EXPECT_EQ(t, CU_GRAPH_NODE_TYPE_KERNEL);
  EXPECT_EQ(exported<Info3>("cuStreamGetCaptureInfo_v3")(s_, &st, nullptr, nullptr, nullptr, &edges, nullptr),
            CUDA_ERROR_INVALID_VALUE);  // edge data without dependencies
  ASSERT_EQ(exported<Info1>("cuStreamGetCaptureInfo_ptsz")(s_, &st, &id2), CUDA_SUCCESS);
  EXPECT_EQ(id2, id1);
  ASSERT_EQ(exported<Info2>("cuStreamGetCaptureInfo_v2_ptsz")(s_, &st, nullptr, nullptr, nullptr, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(exported<Info3>("cuStreamGetCaptureInfo_v3_ptsz")(nullptr, &st, nullptr, nullptr, nullptr, nullptr, nullptr),
            CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_NONE);  // the per-thread stream is not capturing
  CUgraph g;
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  EXPECT_EQ(g, graph);
  cuGraphDestroy(g);
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(exported<Info1>("cuStreamGetCaptureInfo")(s_, &st, &id2), CUDA_SUCCESS);
  EXPECT_NE(id2, id1);  // unique per capture sequence
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  cuGraphDestroy(g);
}

TEST_F(SimCapture, ThreadExchangeStreamCaptureModeSwapsPerThread) {
  CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
  ASSERT_EQ(cuThreadExchangeStreamCaptureMode(&m), CUDA_SUCCESS);
  EXPECT_EQ(m, CU_STREAM_CAPTURE_MODE_GLOBAL);  // the default
  EXPECT_EQ(on_thread([] {
              CUstreamCaptureMode other = CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
              CUresult r = cuThreadExchangeStreamCaptureMode(&other);
              return r == CUDA_SUCCESS && other == CU_STREAM_CAPTURE_MODE_GLOBAL ? CUDA_SUCCESS : CUDA_ERROR_UNKNOWN;
            }),
            CUDA_SUCCESS);  // another thread still has its own default
  m = CU_STREAM_CAPTURE_MODE_GLOBAL;
  ASSERT_EQ(cuThreadExchangeStreamCaptureMode(&m), CUDA_SUCCESS);
  EXPECT_EQ(m, CU_STREAM_CAPTURE_MODE_RELAXED);
  m = static_cast<CUstreamCaptureMode>(9);
  EXPECT_EQ(cuThreadExchangeStreamCaptureMode(&m), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuThreadExchangeStreamCaptureMode(nullptr), CUDA_ERROR_INVALID_VALUE);
}

TEST_F(SimCapture, EventRecordedInCaptureCannotBeQueriedOrSynchronized) {
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e_, s_), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(e_), CUDA_ERROR_CAPTURED_EVENT);
  EXPECT_EQ(cuEventSynchronize(e_), CUDA_ERROR_CAPTURED_EVENT);
  EXPECT_EQ(on_thread([&] { return cuEventQuery(e_); }), CUDA_ERROR_CAPTURED_EVENT);
  EXPECT_EQ(cuEventQuery(e2_), CUDA_SUCCESS);  // RELAXED: other events may be queried
  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_ACTIVE);  // not invalidated
  CUgraph g;
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  cuGraphDestroy(g);
}

TEST_F(SimCapture, SynchronizingOrQueryingTheCapturingStreamInvalidatesIt) {
  for (bool query : {false, true}) {
    ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
    ASSERT_EQ(spin(s_), CUDA_SUCCESS);
    EXPECT_EQ(query ? cuStreamQuery(s_) : cuStreamSynchronize(s_), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_INVALIDATED);
    EXPECT_EQ(spin(s_), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CUgraph g = reinterpret_cast<CUgraph>(1);
    EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    EXPECT_EQ(g, nullptr);
    EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_NONE);  // usable again
    EXPECT_EQ(spin(s_), CUDA_SUCCESS);
    EXPECT_EQ(cuStreamSynchronize(s_), CUDA_SUCCESS);
  }
}

// The case PyTorch meets: torch.cuda.graph captures in GLOBAL mode while
// another thread of the process synchronizes the device.
TEST_F(SimCapture, GlobalCaptureRefusesUnsafeCallsOfOtherGlobalThreadsButNotRelaxedOnes) {
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  auto relaxed_sync = [this] {
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
    cuThreadExchangeStreamCaptureMode(&m);
    return cuStreamSynchronize(s2_);  // a context sync would conflict in any mode (below)
  };
  auto thread_local_alloc = [] {
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
    cuThreadExchangeStreamCaptureMode(&m);
    CUdeviceptr p;
    CUresult r = cuMemAlloc(&p, 4096);
    if (r == CUDA_SUCCESS) r = cuMemFree(p);
    return r;
  };
  EXPECT_EQ(on_thread(relaxed_sync), CUDA_SUCCESS);
  EXPECT_EQ(on_thread(thread_local_alloc), CUDA_SUCCESS);  // other threads' captures are ignored
  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_ACTIVE);
  EXPECT_EQ(on_thread([] { return cuCtxSynchronize(); }), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_INVALIDATED);
  CUgraph g = reinterpret_cast<CUgraph>(1);
  EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(g, nullptr);
  // Without a capture the same call succeeds.
  EXPECT_EQ(on_thread([] { return cuCtxSynchronize(); }), CUDA_SUCCESS);
}

TEST_F(SimCapture, EveryUnsafeCallIsRefusedToAGlobalThreadDuringAGlobalCapture) {
  CUevent other;
  ASSERT_EQ(cuEventCreate(&other, 0), CUDA_SUCCESS);
  std::vector<std::pair<const char*, std::function<CUresult()>>> calls = {
      {"cuCtxSynchronize", [] { return cuCtxSynchronize(); }},
      {"cuMemAlloc", [] { CUdeviceptr p; return cuMemAlloc(&p, 4096); }},
      {"cuMemAllocHost", [] { void* p; return cuMemAllocHost(&p, 4096); }},
      {"cuStreamSynchronize(legacy)", [] { return cuStreamSynchronize(nullptr); }},
      {"cuStreamQuery(other stream)", [this] { return cuStreamQuery(s2_); }},
      {"cuEventQuery(other event)", [other] { return cuEventQuery(other); }},
      {"cuEventSynchronize(other event)", [other] { return cuEventSynchronize(other); }},
  };
  for (auto& [name, call] : calls) {
    SCOPED_TRACE(name);
    ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
    EXPECT_EQ(on_thread(call), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CUgraph g;
    EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  }
}

TEST_F(SimCapture, ThreadLocalAndRelaxedCapturesRestrictOnlyTheirOwnThread) {
  CUgraph g;
  CUdeviceptr p;
  // THREAD_LOCAL: another (GLOBAL-mode) thread is not restricted; this thread is.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS);
  EXPECT_EQ(on_thread([this] { return cuStreamSynchronize(s2_); }), CUDA_SUCCESS);
  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_ACTIVE);
  EXPECT_EQ(cuMemAlloc(&p, 4096), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  // RELAXED: nobody is restricted.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAlloc(&p, 4096), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamSynchronize(s2_), CUDA_SUCCESS);
  EXPECT_EQ(on_thread([this] { return cuStreamSynchronize(s2_); }), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(p), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  cuGraphDestroy(g);
  // GLOBAL, own thread switched to RELAXED: still unrestricted.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
  ASSERT_EQ(cuThreadExchangeStreamCaptureMode(&m), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamSynchronize(s2_), CUDA_SUCCESS);
  ASSERT_EQ(cuThreadExchangeStreamCaptureMode(&m), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamSynchronize(s2_), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);  // own GLOBAL capture
  EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
}

TEST_F(SimCapture, EndCaptureFromAnotherThreadIsWrongThreadUnlessRelaxed) {
  CUgraph g;
  for (auto mode : {CU_STREAM_CAPTURE_MODE_GLOBAL, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL}) {
    ASSERT_EQ(cuStreamBeginCapture(s_, mode), CUDA_SUCCESS);
    EXPECT_EQ(on_thread([&] { return cuStreamEndCapture(s_, &g); }), CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD);
    EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_ACTIVE);
    ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
    cuGraphDestroy(g);
  }
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  g = nullptr;
  EXPECT_EQ(on_thread([&] { return cuStreamEndCapture(s_, &g); }), CUDA_SUCCESS);
  EXPECT_NE(g, nullptr);
  cuGraphDestroy(g);
}

TEST_F(SimCapture, LegacyStreamIsImplicitlySynchronizedWithCapturingBlockingStreams) {
  CUstream blocking;
  ASSERT_EQ(cuStreamCreate(&blocking, CU_STREAM_DEFAULT), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(blocking, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  CUstreamCaptureStatus st;
  EXPECT_EQ(cuStreamIsCapturing(CU_STREAM_LEGACY, &st), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
  EXPECT_EQ(status(blocking), CU_STREAM_CAPTURE_STATUS_ACTIVE);  // a query does not invalidate
  EXPECT_EQ(spin(nullptr), CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);  // work on the legacy stream does
  EXPECT_EQ(status(blocking), CU_STREAM_CAPTURE_STATUS_INVALIDATED);
  CUgraph g;
  EXPECT_EQ(cuStreamEndCapture(blocking, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  // A non-blocking capturing stream does not involve the legacy stream.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamIsCapturing(CU_STREAM_LEGACY, &st), CUDA_SUCCESS);
  EXPECT_EQ(st, CU_STREAM_CAPTURE_STATUS_NONE);
  EXPECT_EQ(spin(nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  cuGraphDestroy(g);
  EXPECT_EQ(cuStreamDestroy(blocking), CUDA_SUCCESS);
}

// The programming guide: synchronizing a broader handle (device, context) that
// encompasses an active capture is invalid; RELAXED only permits "potentially
// unsafe" calls, not those that necessarily conflict with a capture.
TEST_F(SimCapture, ContextSyncIsRefusedInEveryModeWhileAStreamOfTheContextCaptures) {
  auto relaxed_ctx_sync = [] {
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
    cuThreadExchangeStreamCaptureMode(&m);
    return cuCtxSynchronize();
  };
  CUgraph g;
  for (auto mode : {CU_STREAM_CAPTURE_MODE_GLOBAL, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
                    CU_STREAM_CAPTURE_MODE_RELAXED}) {
    SCOPED_TRACE(mode);
    ASSERT_EQ(cuStreamBeginCapture(s_, mode), CUDA_SUCCESS);
    EXPECT_EQ(on_thread(relaxed_ctx_sync), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_INVALIDATED);
    EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  }
  EXPECT_EQ(on_thread(relaxed_ctx_sync), CUDA_SUCCESS);  // no capture: allowed
}

// What the hook's drain relies on (launch_gate.h, gate_drain): an event
// recorded on the legacy stream completes only after the work queued before it
// on every blocking stream, per-thread default streams of other threads
// included, but not after work on non-blocking streams.
TEST_F(SimCapture, LegacyStreamEventCoversBlockingAndPerThreadStreamsOnly) {
  CUstream blocking;
  ASSERT_EQ(cuStreamCreate(&blocking, CU_STREAM_DEFAULT), CUDA_SUCCESS);
  ASSERT_EQ(spin(blocking, 150'000'000), CUDA_SUCCESS);
  std::atomic<int> per_thread_done{0};
  ASSERT_EQ(on_thread([&] {
              CUresult r = spin(CU_STREAM_PER_THREAD, 250'000'000);
              return r ? r : cuLaunchHostFunc(CU_STREAM_PER_THREAD, bump, &per_thread_done);
            }),
            CUDA_SUCCESS);
  // Non-blocking: not covered. Its work cannot finish before the test lets
  // it, so the event completing proves the legacy stream did not wait for it.
  std::atomic<bool> release{false};
  ASSERT_EQ(cuLaunchHostFunc(s_, [](void* flag) {
              while (!static_cast<std::atomic<bool>*>(flag)->load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            }, &release),
            CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e_, CU_STREAM_LEGACY), CUDA_SUCCESS);
  EXPECT_EQ(cuEventQuery(e_), CUDA_ERROR_NOT_READY);
  ASSERT_EQ(cuEventSynchronize(e_), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamQuery(blocking), CUDA_SUCCESS);
  EXPECT_EQ(per_thread_done.load(), 1);
  EXPECT_EQ(cuStreamQuery(s_), CUDA_ERROR_NOT_READY);
  release = true;
  EXPECT_EQ(cuStreamSynchronize(s_), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamDestroy(blocking), CUDA_SUCCESS);
}

TEST_F(SimCapture, ForkAndJoinThroughEventsCaptureBothStreams) {
  std::atomic<int> ran{0};
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e_, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(s2_, e_, 0), CUDA_SUCCESS);  // fork: s2 joins the capture
  EXPECT_EQ(status(s2_), CU_STREAM_CAPTURE_STATUS_ACTIVE);
  cuuint64_t id1, id2;
  CUstreamCaptureStatus st;
  ASSERT_EQ(exported<Info1>("cuStreamGetCaptureInfo")(s_, &st, &id1), CUDA_SUCCESS);
  ASSERT_EQ(exported<Info1>("cuStreamGetCaptureInfo")(s2_, &st, &id2), CUDA_SUCCESS);
  EXPECT_EQ(id1, id2);
  ASSERT_EQ(cuLaunchHostFunc(s2_, bump, &ran), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchHostFunc(s_, bump, &ran), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e2_, s2_), CUDA_SUCCESS);
  CUgraph g;
  EXPECT_EQ(cuStreamEndCapture(s2_, &g), CUDA_ERROR_STREAM_CAPTURE_UNMATCHED);  // not the origin
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_ERROR_ILLEGAL_STATE);
  EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(status(s2_), CU_STREAM_CAPTURE_STATUS_NONE);  // ending releases every member

  // Again, joined properly this time.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e_, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(s2_, e_, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchHostFunc(s2_, bump, &ran), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchHostFunc(s_, bump, &ran), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e2_, s2_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(s_, e2_, 0), CUDA_SUCCESS);  // join
  const CUgraphNode* deps;
  size_t n = 0;
  ASSERT_EQ(exported<Info2>("cuStreamGetCaptureInfo_v2")(s_, &st, nullptr, nullptr, &deps, &n), CUDA_SUCCESS);
  EXPECT_EQ(n, 2u);  // both branches
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  EXPECT_EQ(status(s2_), CU_STREAM_CAPTURE_STATUS_NONE);
  EXPECT_EQ(node_types(g).size(), 4u);
  EXPECT_EQ(ran.load(), 0);
  CUgraphExec exec;
  ASSERT_EQ(cuGraphInstantiate(&exec, g, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphLaunch(exec, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamSynchronize(s_), CUDA_SUCCESS);
  EXPECT_EQ(ran.load(), 2);
  cuGraphExecDestroy(exec);
  cuGraphDestroy(g);
}

TEST_F(SimCapture, UnjoinedForkFailsTheCapture) {
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e_, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(s2_, e_, 0), CUDA_SUCCESS);
  ASSERT_EQ(spin(s2_), CUDA_SUCCESS);  // never joined back
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  CUgraph g = reinterpret_cast<CUgraph>(1);
  EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_UNJOINED);
  EXPECT_EQ(g, nullptr);
  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_NONE);
  EXPECT_EQ(status(s2_), CU_STREAM_CAPTURE_STATUS_NONE);
  // A forked stream that captured nothing after the fork needs no join.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e_, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(s2_, e_, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  cuGraphDestroy(g);
}

TEST_F(SimCapture, IsolationAndMergeAcrossCaptureBoundaries) {
  // Waiting in a capture on work recorded outside it crosses the boundary.
  ASSERT_EQ(cuEventRecord(e2_, s2_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamWaitEvent(s_, e2_, 0), CUDA_ERROR_STREAM_CAPTURE_ISOLATION);
  CUgraph g;
  EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  // An external wait is allowed (it is not ordered by the graph).
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamWaitEvent(s_, e2_, CU_EVENT_WAIT_EXTERNAL), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  cuGraphDestroy(g);
  // Two independent captures may not merge.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s2_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e_, s_), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamWaitEvent(s2_, e_, 0), CUDA_ERROR_STREAM_CAPTURE_MERGE);
  EXPECT_EQ(cuStreamEndCapture(s2_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(cuStreamEndCapture(s_, &g), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
}

TEST_F(SimCapture, BeginCaptureToGraphAppendsToTheCallersGraph) {
  std::atomic<int> ran{0};
  CUgraph g, other;
  ASSERT_EQ(cuGraphCreate(&g, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphCreate(&other, 0), CUDA_SUCCESS);
  CUDA_HOST_NODE_PARAMS hp{bump, &ran};
  CUgraphNode first, foreign;
  ASSERT_EQ(cuGraphAddHostNode(&first, g, nullptr, 0, &hp), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphAddEmptyNode(&foreign, other, nullptr, 0), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamBeginCaptureToGraph(s_, nullptr, nullptr, nullptr, 0, CU_STREAM_CAPTURE_MODE_GLOBAL),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuStreamBeginCaptureToGraph(s_, g, &foreign, nullptr, 1, CU_STREAM_CAPTURE_MODE_GLOBAL),
            CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_NONE);
  ASSERT_EQ(cuStreamBeginCaptureToGraph(s_, g, &first, nullptr, 1, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  CUstreamCaptureStatus st;
  CUgraph during = nullptr;
  const CUgraphNode* deps;
  size_t n = 0;
  ASSERT_EQ(exported<Info2>("cuStreamGetCaptureInfo_v2")(s_, &st, nullptr, &during, &deps, &n), CUDA_SUCCESS);
  EXPECT_EQ(during, g);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(deps[0], first);
  ASSERT_EQ(cuLaunchHostFunc(s_, bump, &ran), CUDA_SUCCESS);
  CUgraph out = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &out), CUDA_SUCCESS);
  EXPECT_EQ(out, g);
  EXPECT_EQ(node_types(g).size(), 2u);
  CUgraphExec exec;
  ASSERT_EQ(cuGraphInstantiate(&exec, g, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphLaunch(exec, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamSynchronize(s_), CUDA_SUCCESS);
  EXPECT_EQ(ran.load(), 2);
  cuGraphExecDestroy(exec);
  // An invalidated capture leaves the caller's graph alive.
  ASSERT_EQ(cuStreamBeginCaptureToGraph(s_, g, nullptr, nullptr, 0, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(cuStreamSynchronize(s_), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  EXPECT_EQ(cuStreamEndCapture(s_, &out), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  EXPECT_EQ(cuGraphDestroy(g), CUDA_SUCCESS);
  EXPECT_EQ(cuGraphDestroy(other), CUDA_SUCCESS);
}

TEST_F(SimCapture, UpdateCaptureDependenciesAddsOrReplaces) {
  using Update1 = CUresult (*)(CUstream, CUgraphNode*, size_t, unsigned);
  auto update1 = exported<Update1>("cuStreamUpdateCaptureDependencies");
  EXPECT_EQ(update1(s_, nullptr, 0, 0), CUDA_ERROR_ILLEGAL_STATE);
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(e_, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamWaitEvent(s2_, e_, 0), CUDA_SUCCESS);
  ASSERT_EQ(spin(s2_), CUDA_SUCCESS);  // s2 is not joined back ...
  CUstreamCaptureStatus st;
  const CUgraphNode* deps;
  size_t n = 0;
  ASSERT_EQ(exported<Info2>("cuStreamGetCaptureInfo_v2")(s2_, &st, nullptr, nullptr, &deps, &n), CUDA_SUCCESS);
  ASSERT_EQ(n, 1u);
  CUgraphNode branch = deps[0];
  EXPECT_EQ(update1(s_, &branch, 1, 7), CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(update1(s_, &branch, 1, CU_STREAM_ADD_CAPTURE_DEPENDENCIES), CUDA_SUCCESS);  // ... but s_ adopts it
  ASSERT_EQ(exported<Info2>("cuStreamGetCaptureInfo_v2")(s_, &st, nullptr, nullptr, &deps, &n), CUDA_SUCCESS);
  EXPECT_EQ(n, 2u);
  ASSERT_EQ(cuStreamUpdateCaptureDependencies(s_, &branch, nullptr, 1, CU_STREAM_SET_CAPTURE_DEPENDENCIES),
            CUDA_SUCCESS);
  ASSERT_EQ(exported<Info2>("cuStreamGetCaptureInfo_v2")(s_, &st, nullptr, nullptr, &deps, &n), CUDA_SUCCESS);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(deps[0], branch);
  CUgraph g;
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);  // joined through the update
  EXPECT_EQ(node_types(g).size(), 2u);
  cuGraphDestroy(g);
}

TEST_F(SimCapture, DestroyingTheContextEndsItsCaptures) {
  CUcontext other;
  ASSERT_EQ(cuCtxCreate(&other, nullptr, 0, 0), CUDA_SUCCESS);  // now current
  CUstream s;
  ASSERT_EQ(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(on_thread([] { return cuCtxSynchronize(); }), CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  ASSERT_EQ(cuCtxDestroy(other), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
  EXPECT_EQ(on_thread([] { return cuCtxSynchronize(); }), CUDA_SUCCESS);  // no capture left
  EXPECT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
}

// The device memory in use on the simulated node, in bytes.
size_t used_bytes() {
  size_t free_b = 0, total_b = 0;
  EXPECT_EQ(cuMemGetInfo(&free_b, &total_b), CUDA_SUCCESS);
  return total_b - free_b;
}

// cuMemAllocAsync / cuMemFreeAsync on a capturing stream become memory-alloc /
// memory-free nodes (cuda.h): the pointer is the graph's, fixed at capture;
// the pool is not touched and no memory is taken until the graph is launched.
TEST_F(SimCapture, AsyncAllocAndFreeBecomeMemoryNodesAndTakeMemoryOnlyWhenLaunched) {
  constexpr size_t kBytes = 64u << 20;
  const size_t before = used_bytes();
  CUmemoryPool pool;
  ASSERT_EQ(cuDeviceGetMemPool(&pool, 0), CUDA_SUCCESS);

  // Graph A: alloc + kernel (the allocation outlives the launch).
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  CUdeviceptr p = 0;
  ASSERT_EQ(cuMemAllocAsync(&p, kBytes, s_), CUDA_SUCCESS);
  EXPECT_NE(p, 0u);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  CUgraph a = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &a), CUDA_SUCCESS);
  EXPECT_EQ(node_types(a), (std::vector<CUgraphNodeType>{CU_GRAPH_NODE_TYPE_MEM_ALLOC, CU_GRAPH_NODE_TYPE_KERNEL}));
  CUgraphNode nodes[2];
  size_t n = 2;
  ASSERT_EQ(cuGraphGetNodes(a, nodes, &n), CUDA_SUCCESS);
  CUDA_MEM_ALLOC_NODE_PARAMS params{};
  ASSERT_EQ(cuGraphMemAllocNodeGetParams(nodes[0], &params), CUDA_SUCCESS);
  EXPECT_EQ(params.dptr, p);
  EXPECT_EQ(params.bytesize, kBytes);
  EXPECT_EQ(used_bytes(), before);  // nothing taken at capture
  cuuint64_t reserved = 1;
  ASSERT_EQ(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved), CUDA_SUCCESS);
  EXPECT_EQ(reserved, 0u);  // the pool was not asked

  CUgraphExec ea;
  ASSERT_EQ(cuGraphInstantiate(&ea, a, 0), CUDA_SUCCESS);
  EXPECT_EQ(used_bytes(), before);
  ASSERT_EQ(cuGraphLaunch(ea, s2_), CUDA_SUCCESS);
  EXPECT_EQ(used_bytes(), before + kBytes);  // taken at launch
  ASSERT_EQ(cuStreamSynchronize(s2_), CUDA_SUCCESS);
  EXPECT_EQ(used_bytes(), before + kBytes);

  // Graph B: a free node of A's allocation; memory returns when B runs.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuMemFreeAsync(p, s_), CUDA_SUCCESS);
  CUgraph b = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &b), CUDA_SUCCESS);
  EXPECT_EQ(node_types(b), (std::vector<CUgraphNodeType>{CU_GRAPH_NODE_TYPE_MEM_FREE}));
  EXPECT_EQ(used_bytes(), before + kBytes);  // the free did not run at capture
  CUgraphExec eb;
  ASSERT_EQ(cuGraphInstantiate(&eb, b, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphLaunch(eb, s2_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamSynchronize(s2_), CUDA_SUCCESS);
  EXPECT_EQ(used_bytes(), before);

  // Alloc + kernel + free in one capture: taken and returned by each launch.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), CUDA_SUCCESS);
  CUdeviceptr q = 0;
  ASSERT_EQ(cuMemAllocFromPoolAsync(&q, kBytes, pool, s_), CUDA_SUCCESS);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  ASSERT_EQ(cuMemFreeAsync(q, s_), CUDA_SUCCESS);
  CUgraph c = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &c), CUDA_SUCCESS);
  EXPECT_EQ(node_types(c), (std::vector<CUgraphNodeType>{CU_GRAPH_NODE_TYPE_MEM_ALLOC, CU_GRAPH_NODE_TYPE_KERNEL,
                                                          CU_GRAPH_NODE_TYPE_MEM_FREE}));
  EXPECT_EQ(used_bytes(), before);
  CUgraphExec ec;
  ASSERT_EQ(cuGraphInstantiate(&ec, c, 0), CUDA_SUCCESS);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(cuGraphLaunch(ec, s2_), CUDA_SUCCESS);
    ASSERT_EQ(cuStreamSynchronize(s2_), CUDA_SUCCESS);
    EXPECT_EQ(used_bytes(), before);
  }
  for (CUgraphExec e : {ea, eb, ec}) EXPECT_EQ(cuGraphExecDestroy(e), CUDA_SUCCESS);
  for (CUgraph g : {a, b, c}) EXPECT_EQ(cuGraphDestroy(g), CUDA_SUCCESS);
}

// During capture cuMemFreeAsync must be given a graph allocation (cuda.h).
TEST_F(SimCapture, CapturedFreeOfOrdinaryMemoryIsInvalidValue) {
  CUdeviceptr buf;
  ASSERT_EQ(cuMemAlloc(&buf, 1 << 20), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFreeAsync(buf, s_), CUDA_ERROR_INVALID_VALUE);
  CUgraph g = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &g), CUDA_SUCCESS);
  EXPECT_TRUE(node_types(g).empty());
  EXPECT_EQ(cuGraphDestroy(g), CUDA_SUCCESS);
  EXPECT_EQ(cuMemFree(buf), CUDA_SUCCESS);  // still live
}

// A cuGraphLaunch into a capturing stream becomes a child-graph node: the
// graph does not run then, and runs each time the outer graph is launched.
// An exec with memory nodes cannot be a child graph: NOT_SUPPORTED.
TEST_F(SimCapture, GraphLaunchIntoACapturingStreamBecomesAChildGraphNode) {
  std::atomic<int> ran{0};
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(spin(s_), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchHostFunc(s_, bump, &ran), CUDA_SUCCESS);
  CUgraph inner = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &inner), CUDA_SUCCESS);
  CUgraphExec inner_exec;
  ASSERT_EQ(cuGraphInstantiate(&inner_exec, inner, 0), CUDA_SUCCESS);

  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphLaunch(inner_exec, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuLaunchHostFunc(s_, bump, &ran), CUDA_SUCCESS);
  CUgraph outer = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &outer), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(node_types(outer), (std::vector<CUgraphNodeType>{CU_GRAPH_NODE_TYPE_GRAPH, CU_GRAPH_NODE_TYPE_HOST}));
  EXPECT_EQ(cuGraphExecDestroy(inner_exec), CUDA_SUCCESS);  // the child node keeps its own copy

  CUgraphExec outer_exec;
  ASSERT_EQ(cuGraphInstantiate(&outer_exec, outer, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphLaunch(outer_exec, s2_), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamSynchronize(s2_), CUDA_SUCCESS);
  EXPECT_EQ(ran.load(), 2);

  // A graph with memory nodes as a child: refused, the capture goes on.
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  CUdeviceptr p;
  ASSERT_EQ(cuMemAllocAsync(&p, 1 << 20, s_), CUDA_SUCCESS);
  ASSERT_EQ(cuMemFreeAsync(p, s_), CUDA_SUCCESS);
  CUgraph mem = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &mem), CUDA_SUCCESS);
  CUgraphExec mem_exec;
  ASSERT_EQ(cuGraphInstantiate(&mem_exec, mem, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s_, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  EXPECT_EQ(cuGraphLaunch(mem_exec, s_), CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(status(s_), CU_STREAM_CAPTURE_STATUS_ACTIVE);
  CUgraph empty = nullptr;
  ASSERT_EQ(cuStreamEndCapture(s_, &empty), CUDA_SUCCESS);
  for (CUgraphExec e : {outer_exec, mem_exec}) EXPECT_EQ(cuGraphExecDestroy(e), CUDA_SUCCESS);
  for (CUgraph g : {inner, outer, mem, empty}) EXPECT_EQ(cuGraphDestroy(g), CUDA_SUCCESS);
}

}  // namespace
