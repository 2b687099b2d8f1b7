// Exported wrappers: every kind of launch (kernel, Ex, cooperative, host
// function, graph), each with its per-thread variant. In daemon mode each
// passes the launch gate first (launch_gate.h: one atomic load and a compare
// while the tenant holds the lease); standalone they forward unchanged.
#include "charging.h"
#include "graph_memory.h"
#include "launch_gate.h"

// A gated launch of `sym` on `stream`; `pt` is true for per-thread variants.
#define VGPU_GATED(sym, stream, pt, ...)                      \
  VGPU_REAL_OR_RETURN(real, sym);                             \
  GateTicket ticket;                                          \
  if (CUresult gate = gate_launch(&ticket)) return gate;      \
  CUresult r = real(__VA_ARGS__);                             \
  if (ticket.throttled) gate_after_launch(stream, pt, r);     \
  return r

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                    unsigned int by, unsigned int bz, unsigned int shared, CUstream s, void** params,
                                    void** extra) {
  VGPU_GATED(cuLaunchKernel, s, false, f, gx, gy, gz, bx, by, bz, shared, s, params, extra);
}

VGPU_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                         unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
                                         CUstream s, void** params, void** extra) {
  VGPU_GATED(cuLaunchKernel_ptsz, s, true, f, gx, gy, gz, bx, by, bz, shared, s, params, extra);
}

VGPU_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  VGPU_GATED(cuLaunchKernelEx, config ? config->hStream : nullptr, false, config, f, params, extra);
}

VGPU_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  VGPU_GATED(cuLaunchKernelEx_ptsz, config ? config->hStream : nullptr, true, config, f, params, extra);
}

VGPU_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                               unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
                                               CUstream s, void** params) {
  VGPU_GATED(cuLaunchCooperativeKernel, s, false, f, gx, gy, gz, bx, by, bz, shared, s, params);
}

VGPU_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                                    unsigned int bx, unsigned int by, unsigned int bz,
                                                    unsigned int shared, CUstream s, void** params) {
  VGPU_GATED(cuLaunchCooperativeKernel_ptsz, s, true, f, gx, gy, gz, bx, by, bz, shared, s, params);
}

VGPU_EXPORT CUresult cuLaunchHostFunc(CUstream s, CUhostFn fn, void* data) {
  VGPU_GATED(cuLaunchHostFunc, s, false, s, fn, data);
}

VGPU_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream s, CUhostFn fn, void* data) {
  VGPU_GATED(cuLaunchHostFunc_ptsz, s, true, s, fn, data);
}

// Graph launches also charge the graph's memory nodes (graph_memory.h).
#define VGPU_GATED_GRAPH(sym, pt)                              \
  VGPU_REAL_OR_RETURN(real, sym);                              \
  GateTicket ticket;                                           \
  if (CUresult gate = gate_launch(&ticket)) return gate;       \
  CUresult r = launch_graph_charged(real, g, s);               \
  if (ticket.throttled) gate_after_launch(s, pt, r);           \
  return r

VGPU_EXPORT CUresult cuGraphLaunch(CUgraphExec g, CUstream s) { VGPU_GATED_GRAPH(cuGraphLaunch, false); }

VGPU_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s) { VGPU_GATED_GRAPH(cuGraphLaunch_ptsz, true); }
