// Kernel launches (cuLaunchKernel, cuLaunchKernelEx, cooperative launches) and
// host work in stream order (cuLaunchHostFunc, cuStreamAddCallback), each with
// its per-thread-default-stream variant.
#include "capture.h"
#include "module.h"

using namespace simgpu;

namespace {

constexpr unsigned kMaxCooperativeBlocks = 132 * 32;  // SMs x blocks per SM

CUresult check_dims(unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                    unsigned shared) {
  if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0) return CUDA_ERROR_INVALID_VALUE;
  if (gy > 65535 || gz > 65535 || bx > 1024 || by > 1024 || bz > 64) return CUDA_ERROR_INVALID_VALUE;
  if (static_cast<uint64_t>(bx) * by * bz > 1024) return CUDA_ERROR_INVALID_VALUE;
  if (shared > 232448) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult launch(CUfunction f, const unsigned grid[3], const unsigned block[3], unsigned shared, CUstream h,
                void** params, void** extra, bool per_thread, bool cooperative) {
  Function* fn = nullptr;
  if (CUresult r = resolve_function(f, &fn)) return r;
  if (CUresult r = check_dims(grid[0], grid[1], grid[2], block[0], block[1], block[2], shared)) return r;
  if (params && extra) return CUDA_ERROR_INVALID_VALUE;
  if (!params && !extra && !fn->decl->params.empty()) return CUDA_ERROR_INVALID_VALUE;
  if (cooperative && static_cast<uint64_t>(grid[0]) * grid[1] * grid[2] > kMaxCooperativeBlocks)
    return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  if (fn->ctx != s->ctx) return CUDA_ERROR_INVALID_HANDLE;  // function of another context
  StreamOp op;
  op.engine_ns = kernel_duration_ns(*fn, params, extra);
  op.is_kernel = true;
  return submit_op(s, std::move(op), CU_GRAPH_NODE_TYPE_KERNEL);
}

CUresult launch_ex(const CUlaunchConfig* c, CUfunction f, void** params, void** extra, bool per_thread) {
  if (!c) return CUDA_ERROR_INVALID_VALUE;
  if (c->numAttrs > 0 && !c->attrs) return CUDA_ERROR_INVALID_VALUE;
  bool cooperative = false;
  for (unsigned i = 0; i < c->numAttrs; ++i)
    if (c->attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE && c->attrs[i].value.cooperative) cooperative = true;
  const unsigned grid[3] = {c->gridDimX, c->gridDimY, c->gridDimZ};
  const unsigned block[3] = {c->blockDimX, c->blockDimY, c->blockDimZ};
  return launch(f, grid, block, c->sharedMemBytes, c->hStream, params, extra, per_thread, cooperative);
}

CUresult host_work(CUstream h, bool per_thread, std::function<void()> fn) {
  std::shared_ptr<Stream> s;
  if (CUresult r = resolve_stream(h, per_thread, &s)) return r;
  StreamOp op;
  op.work = std::move(fn);
  return submit_op(s, std::move(op), CU_GRAPH_NODE_TYPE_HOST);
}

}  // namespace

#define SIMGPU_LAUNCH_ARGS                                                                           \
  CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, \
      unsigned int bz, unsigned int shared, CUstream hStream

SIMGPU_EXPORT CUresult cuLaunchKernel(SIMGPU_LAUNCH_ARGS, void** kernelParams, void** extra) {
  const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return launch(f, grid, block, shared, hStream, kernelParams, extra, false, false);
}

SIMGPU_EXPORT CUresult cuLaunchKernel_ptsz(SIMGPU_LAUNCH_ARGS, void** kernelParams, void** extra) {
  const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return launch(f, grid, block, shared, hStream, kernelParams, extra, true, false);
}

SIMGPU_EXPORT CUresult cuLaunchCooperativeKernel(SIMGPU_LAUNCH_ARGS, void** kernelParams) {
  const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return launch(f, grid, block, shared, hStream, kernelParams, nullptr, false, true);
}

SIMGPU_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(SIMGPU_LAUNCH_ARGS, void** kernelParams) {
  const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return launch(f, grid, block, shared, hStream, kernelParams, nullptr, true, true);
}

SIMGPU_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                        void** extra) {
  return launch_ex(config, f, kernelParams, extra, false);
}

SIMGPU_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                             void** extra) {
  return launch_ex(config, f, kernelParams, extra, true);
}

SIMGPU_EXPORT CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void* userData) {
  if (!fn) return CUDA_ERROR_INVALID_VALUE;
  return host_work(hStream, false, [fn, userData] { fn(userData); });
}

SIMGPU_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void* userData) {
  if (!fn) return CUDA_ERROR_INVALID_VALUE;
  return host_work(hStream, true, [fn, userData] { fn(userData); });
}

SIMGPU_EXPORT CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback cb, void* userData,
                                           unsigned int flags) {
  if (!cb || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  return host_work(hStream, false, [cb, hStream, userData] { cb(hStream, CUDA_SUCCESS, userData); });
}

SIMGPU_EXPORT CUresult cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback cb, void* userData,
                                                unsigned int flags) {
  if (!cb || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  return host_work(hStream, true, [cb, hStream, userData] { cb(hStream, CUDA_SUCCESS, userData); });
}
