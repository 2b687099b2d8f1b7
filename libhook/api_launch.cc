// Exported wrappers: every kind of launch (kernel, Ex, cooperative, host
// function, graph), each with its per-thread variant. In daemon mode each
// passes the launch gate first (launch_gate.h: one atomic load and a compare
// while the tenant holds the lease); standalone they forward unchanged.
#include "charging.h"
#include "graph_memory.h"
#include "launch_gate.h"

using namespace vgpu::hook;

// A gated launch of `sym` on `stream`; `pt` is true for per-thread variants.
// Each wrapper is split so the hot path is calls-free and ends in a tail call
// of the real function (P1: the hook adds a handful of loads per launch); the
// out-of-line `_gated` twin handles everything else — first use, no lease,
// contention (in-flight cap), vgpud gone.
#define VGPU_LAUNCH(sym, stream, pt, PARAMS, ARGS)                                             \
  namespace {                                                                                 \
  __attribute__((noinline, cold)) CUresult sym##_gated PARAMS {                               \
    VGPU_REAL_OR_RETURN(real, sym);                                                           \
    if (gate_stream_capturing(stream, pt)) return real ARGS; /* a graph node, gated at launch */ \
    GateTicket ticket;                                                                        \
    if (CUresult gate = gate_launch(&ticket)) return gate;                                    \
    CUresult r = real ARGS;                                                                   \
    if (ticket.throttled) gate_after_launch(stream, pt, r);                                   \
    return r;                                                                                 \
  }                                                                                           \
  }                                                                                           \
  VGPU_EXPORT CUresult sym PARAMS {                                                           \
    if (__builtin_expect(g_resolved.load(std::memory_order_acquire) && gate_fast_path(), 1)) { \
      auto real = reinterpret_cast<decltype(&::sym)>(g_real[static_cast<int>(HookId::sym)]);  \
      if (real) return real ARGS;                                                             \
    }                                                                                         \
    return sym##_gated ARGS;                                                                  \
  }

#define VGPU_KERNEL_PARAMS                                                                        \
  (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, \
   unsigned int bz, unsigned int shared, CUstream s, void** params, void** extra)
#define VGPU_COOP_PARAMS                                                                          \
  (CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, \
   unsigned int bz, unsigned int shared, CUstream s, void** params)

VGPU_LAUNCH(cuLaunchKernel, s, false, VGPU_KERNEL_PARAMS, (f, gx, gy, gz, bx, by, bz, shared, s, params, extra))
VGPU_LAUNCH(cuLaunchKernel_ptsz, s, true, VGPU_KERNEL_PARAMS, (f, gx, gy, gz, bx, by, bz, shared, s, params, extra))
VGPU_LAUNCH(cuLaunchKernelEx, config ? config->hStream : nullptr, false,
            (const CUlaunchConfig* config, CUfunction f, void** params, void** extra), (config, f, params, extra))
VGPU_LAUNCH(cuLaunchKernelEx_ptsz, config ? config->hStream : nullptr, true,
            (const CUlaunchConfig* config, CUfunction f, void** params, void** extra), (config, f, params, extra))
VGPU_LAUNCH(cuLaunchCooperativeKernel, s, false, VGPU_COOP_PARAMS, (f, gx, gy, gz, bx, by, bz, shared, s, params))
VGPU_LAUNCH(cuLaunchCooperativeKernel_ptsz, s, true, VGPU_COOP_PARAMS, (f, gx, gy, gz, bx, by, bz, shared, s, params))
VGPU_LAUNCH(cuLaunchHostFunc, s, false, (CUstream s, CUhostFn fn, void* data), (s, fn, data))
VGPU_LAUNCH(cuLaunchHostFunc_ptsz, s, true, (CUstream s, CUhostFn fn, void* data), (s, fn, data))

// Graph launches also charge the graph's memory nodes (graph_memory.h).
// Into a capturing stream a graph launch only adds a child-graph node: it is
// neither gated nor charged (the outer graph is, when it is launched).
#define VGPU_GATED_GRAPH(sym, pt)                              \
  VGPU_REAL_OR_RETURN(real, sym);                              \
  if (gate_stream_capturing(s, pt)) return real(g, s);         \
  GateTicket ticket;                                           \
  if (CUresult gate = gate_launch(&ticket)) return gate;       \
  CUresult r = launch_graph_charged(real, g, s);               \
  if (ticket.throttled) gate_after_launch(s, pt, r);           \
  return r

VGPU_EXPORT CUresult cuGraphLaunch(CUgraphExec g, CUstream s) { VGPU_GATED_GRAPH(cuGraphLaunch, false); }

VGPU_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s) { VGPU_GATED_GRAPH(cuGraphLaunch_ptsz, true); }
