// Exported wrappers: every kind of launch (kernel, Ex, cooperative, host
// function, graph), each with its per-thread variant. In daemon mode each
// passes the launch gate first (launch_gate.h: one atomic load and a compare
// while the tenant holds the lease); standalone they forward unchanged.
#include "charging.h"
#include "launch_gate.h"

#define VGPU_GATED(sym, ...)                          \
  VGPU_REAL_OR_RETURN(real, sym);                     \
  if (CUresult gate = gate_launch()) return gate;     \
  return real(__VA_ARGS__)

using namespace vgpu::hook;

VGPU_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                    unsigned int by, unsigned int bz, unsigned int shared, CUstream s, void** params,
                                    void** extra) {
  VGPU_GATED(cuLaunchKernel, f, gx, gy, gz, bx, by, bz, shared, s, params, extra);
}

VGPU_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                         unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
                                         CUstream s, void** params, void** extra) {
  VGPU_GATED(cuLaunchKernel_ptsz, f, gx, gy, gz, bx, by, bz, shared, s, params, extra);
}

VGPU_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  VGPU_GATED(cuLaunchKernelEx, config, f, params, extra);
}

VGPU_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  VGPU_GATED(cuLaunchKernelEx_ptsz, config, f, params, extra);
}

VGPU_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                               unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared,
                                               CUstream s, void** params) {
  VGPU_GATED(cuLaunchCooperativeKernel, f, gx, gy, gz, bx, by, bz, shared, s, params);
}

VGPU_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                                                    unsigned int bx, unsigned int by, unsigned int bz,
                                                    unsigned int shared, CUstream s, void** params) {
  VGPU_GATED(cuLaunchCooperativeKernel_ptsz, f, gx, gy, gz, bx, by, bz, shared, s, params);
}

VGPU_EXPORT CUresult cuLaunchHostFunc(CUstream s, CUhostFn fn, void* data) {
  VGPU_GATED(cuLaunchHostFunc, s, fn, data);
}

VGPU_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream s, CUhostFn fn, void* data) {
  VGPU_GATED(cuLaunchHostFunc_ptsz, s, fn, data);
}

VGPU_EXPORT CUresult cuGraphLaunch(CUgraphExec g, CUstream s) { VGPU_GATED(cuGraphLaunch, g, s); }

VGPU_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec g, CUstream s) { VGPU_GATED(cuGraphLaunch_ptsz, g, s); }
