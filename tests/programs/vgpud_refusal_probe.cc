// What a process gets from the driver API when vgpud does not admit it:
// creates a context, then tries one 1 MiB allocation and one kernel launch
// and prints the results as numbers: "ctx=<CUresult> alloc=<CUresult>
// launch=<CUresult>". Exit status 0 whenever it got that far.
#include <cuda.h>

#include <cstdio>

#include "spin_ptx.h"

int main() {
  CUcontext ctx = nullptr;
  CUresult init = cuInit(0);
  CUresult c = init == CUDA_SUCCESS ? cuDevicePrimaryCtxRetain(&ctx, 0) : init;
  if (c == CUDA_SUCCESS) c = cuCtxSetCurrent(ctx);
  CUdeviceptr p = 0;
  CUresult alloc = cuMemAlloc(&p, 1 << 20);
  if (alloc == CUDA_SUCCESS) cuMemFree(p);
  CUmodule mod = nullptr;
  CUfunction fn = nullptr;
  CUresult launch = cuModuleLoadData(&mod, kSpinPtx);
  if (launch == CUDA_SUCCESS) launch = cuModuleGetFunction(&fn, mod, "spin_ns");
  if (launch == CUDA_SUCCESS) {
    unsigned long long ns = 1000;
    void* params[] = {&ns};
    launch = cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr);
    if (launch == CUDA_SUCCESS) launch = cuCtxSynchronize();
  }
  std::printf("ctx=%d alloc=%d launch=%d\n", static_cast<int>(c), static_cast<int>(alloc), static_cast<int>(launch));
  return 0;
}
