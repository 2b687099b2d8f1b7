// Exact ABI on an old driver: run under LD_PRELOAD=libvgpu.so with
// tests/programs/old_driver/libcuda.so.1 (a 12.2 driver that lacks
// cuGraphAddNode_v2 and cuCtxCreate_v4 and answers cuGetProcAddress above its
// version with its newest older function, as the 535 series does).
// Checks that
//   - cuGetProcAddress for a version above the driver's gets the function the
//     driver gives (its older ABI, through the hook's wrapper of that ABI);
//   - dlsym(RTLD_DEFAULT / the driver's handle) of a name the driver lacks
//     finds nothing, as without the hook;
//   - calling the hook's cuGraphAddNode_v2 / cuCtxCreate_v4 returns
//     CUDA_ERROR_NOT_FOUND and calls no other version of the function.
// Prints "ok" or every check that failed.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <dlfcn.h>

#include <cstdio>

namespace {

int g_failures = 0;

void expect(bool ok, const char* what) {
  if (ok) return;
  std::printf("FAIL %s\n", what);
  ++g_failures;
}

}  // namespace

int main() {
  void* driver = dlopen("libcuda.so.1", RTLD_NOW);
  if (!driver) {
    std::printf("FAIL dlopen libcuda.so.1: %s\n", dlerror());
    return 1;
  }
  using Calls = int (*)(const char*);
  auto calls = reinterpret_cast<Calls>(dlsym(driver, "fake_driver_calls"));
  if (!calls) {
    std::printf("FAIL this is not the old-driver stand-in\n");
    return 1;
  }
  expect(cuInit(0) == CUDA_SUCCESS, "cuInit");

  void* p = nullptr;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
  CUresult r = cuGetProcAddress_v2("cuGraphAddNode", &p, 12030, CU_GET_PROC_ADDRESS_DEFAULT, &status);
  expect(r == CUDA_SUCCESS && status == CU_GET_PROC_ADDRESS_SUCCESS, "cuGetProcAddress cuGraphAddNode 12030 succeeds");
  expect(p == reinterpret_cast<void*>(&cuGraphAddNode), "cuGraphAddNode 12030 is the driver's cuGraphAddNode ABI");
  expect(p != reinterpret_cast<void*>(&cuGraphAddNode_v2), "cuGraphAddNode 12030 is not a cuGraphAddNode_v2 wrapper");

  p = nullptr;
  r = cuGetProcAddress_v2("cuCtxCreate", &p, 12050, CU_GET_PROC_ADDRESS_DEFAULT, &status);
  expect(r == CUDA_SUCCESS && status == CU_GET_PROC_ADDRESS_SUCCESS, "cuGetProcAddress cuCtxCreate 12050 succeeds");
  expect(p == reinterpret_cast<void*>(&cuCtxCreate_v3), "cuCtxCreate 12050 is the driver's cuCtxCreate_v3 ABI");
  expect(p != reinterpret_cast<void*>(&cuCtxCreate_v4), "cuCtxCreate 12050 is not a cuCtxCreate_v4 wrapper");

  expect(dlsym(RTLD_DEFAULT, "cuGraphAddNode_v2") == nullptr, "dlsym(RTLD_DEFAULT, cuGraphAddNode_v2) is NULL");
  expect(dlsym(RTLD_DEFAULT, "cuCtxCreate_v4") == nullptr, "dlsym(RTLD_DEFAULT, cuCtxCreate_v4) is NULL");
  expect(dlsym(driver, "cuGraphAddNode_v2") == nullptr, "dlsym(driver, cuGraphAddNode_v2) is NULL");
  expect(dlsym(driver, "cuGraphAddNode") == reinterpret_cast<void*>(&cuGraphAddNode),
         "dlsym(driver, cuGraphAddNode) is the hook's wrapper");

  CUgraphNode node = nullptr;
  CUgraphNodeParams params{};
  r = cuGraphAddNode_v2(&node, nullptr, nullptr, nullptr, 0, &params);
  expect(r == CUDA_ERROR_NOT_FOUND, "cuGraphAddNode_v2 returns CUDA_ERROR_NOT_FOUND");
  expect(calls("cuGraphAddNode") == 0, "cuGraphAddNode_v2 did not call cuGraphAddNode");

  CUcontext ctx = nullptr;
  r = cuCtxCreate_v4(&ctx, nullptr, 0, 0);
  expect(r == CUDA_ERROR_NOT_FOUND, "cuCtxCreate_v4 returns CUDA_ERROR_NOT_FOUND");
  expect(calls("cuCtxCreate_v3") == 0, "cuCtxCreate_v4 did not call cuCtxCreate_v3");

  // What the driver has still works through the hook.
  r = cuGraphAddNode(&node, nullptr, nullptr, 0, nullptr);
  expect(r == CUDA_ERROR_INVALID_VALUE && calls("cuGraphAddNode") == 1, "cuGraphAddNode reaches the driver");

  if (g_failures == 0) std::printf("ok\n");
  return g_failures == 0 ? 0 : 1;
}
