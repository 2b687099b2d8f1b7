// simgpu against the documentation of cuda.h, table driven: error codes
// before cuInit, NULL output pointers, destroyed handles, every CUresult's
// name and string, and the exported names of the toolkit's link stub.
// Each row's expected code is one that cuda.h lists for that entry point.
// Cases already covered by the other simgpu_*_test.cc files are not repeated.
#include <cuda.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../programs/spin_ptx.h"
#include "test_support.h"

namespace {

struct Row {
  const char* what;
  CUresult expected;
  std::function<CUresult()> call;
};

// Runs every row; returns one line per row whose result differs.
std::string mismatches(const std::vector<Row>& rows) {
  std::string out;
  for (const Row& r : rows) {
    CUresult got = r.call();
    if (got != r.expected)
      out += std::string(r.what) + ": got " + std::to_string(got) + ", want " + std::to_string(r.expected) + "\n";
  }
  return out;
}

// Runs `body` in a forked child (a process that has never called cuInit: the
// child of an initialised process starts uninitialised) and returns the text
// the child produced, or a note if it crashed.
std::string in_fresh_process(const std::function<std::string()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    std::string s = body();
    if (write(fds[1], s.data(), s.size()) < 0) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  std::string all;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) all.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) all += "child did not exit cleanly\n";
  return all;
}

// A pointer that is no handle of any kind; validated handles never match it.
char g_not_a_handle[64];
template <class H>
H bogus() {
  return reinterpret_cast<H>(g_not_a_handle);
}

void host_fn(void*) {}
void stream_cb(CUstream, CUresult, void*) {}

CUmemAllocationProp vmm_prop() {
  CUmemAllocationProp p{};
  p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.location.id = 0;
  return p;
}

CUmemPoolProps pool_props() {
  CUmemPoolProps p{};
  p.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p.location.id = 0;
  return p;
}

CUDA_ARRAY3D_DESCRIPTOR array_desc() {
  CUDA_ARRAY3D_DESCRIPTOR d{};
  d.Width = 64;
  d.Height = 64;
  d.Format = CU_AD_FORMAT_FLOAT;
  d.NumChannels = 1;
  return d;
}

// --- before cuInit ----------------------------------------------------------

// Entry points whose cuda.h documentation lists CUDA_ERROR_NOT_INITIALIZED,
// called with otherwise plausible arguments (valid output pointers, unknown
// handles) so that the missing cuInit is the only thing wrong.
std::vector<Row> before_init_rows() {
  static int i;
  static unsigned u;
  static size_t sz;
  static char buf[256];
  static CUdevice dev;
  static CUcontext ctx;
  static CUstream st;
  static CUevent ev;
  static CUmodule mod;
  static CUfunction fn;
  static CUlibrary lib;
  static CUkernel kern;
  static CUdeviceptr dp;
  static void* hp;
  static CUuuid uuid;
  static float ms;
  static unsigned long long ull;
  static CUgraph graph;
  static CUgraphExec exec;
  static CUmemoryPool pool;
  static CUmemGenericAllocationHandle mh;
  static CUarray arr;
  static CUmipmappedArray mip;
  static CUmemLocation loc{CU_MEM_LOCATION_TYPE_DEVICE, 0};
  static CUmemAllocationProp prop = vmm_prop();
  static CUmemPoolProps pprops = pool_props();
  static CUDA_ARRAY_DESCRIPTOR desc2{64, 64, CU_AD_FORMAT_FLOAT, 1};
  static CUDA_ARRAY3D_DESCRIPTOR desc3 = array_desc();
  static CUDA_MEMCPY2D copy2d{};
  static CUlaunchConfig cfg{1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, 0};
  const CUdeviceptr kDev = 0x100000;
  return {
      {"cuDeviceGet", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDeviceGet(&dev, 0); }},
      {"cuDeviceGetName", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDeviceGetName(buf, sizeof buf, 0); }},
      {"cuDeviceGetUuid", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDeviceGetUuid(&uuid, 0); }},
      {"cuDeviceTotalMem", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDeviceTotalMem(&sz, 0); }},
      {"cuDeviceGetAttribute", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuDeviceGetAttribute(&i, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0); }},
      {"cuDeviceGetPCIBusId", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDeviceGetPCIBusId(buf, sizeof buf, 0); }},
      {"cuDeviceGetByPCIBusId", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDeviceGetByPCIBusId(&dev, "0000:18:00.0"); }},
      {"cuDevicePrimaryCtxRetain", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDevicePrimaryCtxRetain(&ctx, 0); }},
      {"cuDevicePrimaryCtxRelease", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDevicePrimaryCtxRelease(0); }},
      {"cuDevicePrimaryCtxReset", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDevicePrimaryCtxReset(0); }},
      {"cuDevicePrimaryCtxGetState", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuDevicePrimaryCtxGetState(0, &u, &i); }},
      {"cuDevicePrimaryCtxSetFlags", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDevicePrimaryCtxSetFlags(0, 0); }},
      {"cuCtxCreate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxCreate(&ctx, nullptr, 0, 0); }},
      {"cuCtxDestroy", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxDestroy(bogus<CUcontext>()); }},
      {"cuCtxPushCurrent", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxPushCurrent(bogus<CUcontext>()); }},
      {"cuCtxPopCurrent", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxPopCurrent(&ctx); }},
      {"cuCtxSetCurrent", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxSetCurrent(nullptr); }},
      {"cuCtxGetDevice", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxGetDevice(&dev); }},
      {"cuCtxGetFlags", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxGetFlags(&u); }},
      {"cuCtxSetFlags", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxSetFlags(0); }},
      {"cuCtxGetId", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxGetId(nullptr, &ull); }},
      {"cuCtxGetApiVersion", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxGetApiVersion(nullptr, &u); }},
      {"cuCtxSynchronize", CUDA_ERROR_NOT_INITIALIZED, [] { return cuCtxSynchronize(); }},
      {"cuMemAllocPitch", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemAllocPitch(&dp, &sz, 64, 64, 4); }},
      {"cuMemAllocManaged", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuMemAllocManaged(&dp, 64, CU_MEM_ATTACH_GLOBAL); }},
      {"cuMemGetAddressRange", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemGetAddressRange(&dp, &sz, kDev); }},
      {"cuMemAllocHost", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemAllocHost(&hp, 64); }},
      {"cuMemHostAlloc", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemHostAlloc(&hp, 64, 0); }},
      {"cuMemFreeHost", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemFreeHost(buf); }},
      {"cuMemHostGetDevicePointer", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuMemHostGetDevicePointer(&dp, buf, 0); }},
      {"cuMemHostGetFlags", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemHostGetFlags(&u, buf); }},
      {"cuMemHostRegister", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemHostRegister(buf, sizeof buf, 0); }},
      {"cuMemHostUnregister", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemHostUnregister(buf); }},
      {"cuPointerGetAttribute", CUDA_ERROR_NOT_INITIALIZED,
       [=] { return cuPointerGetAttribute(&u, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, kDev); }},
      {"cuMemcpy", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemcpy(kDev, kDev + 64, 16); }},
      {"cuMemcpyHtoD", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemcpyHtoD(kDev, buf, 16); }},
      {"cuMemcpyDtoH", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemcpyDtoH(buf, kDev, 16); }},
      {"cuMemcpyDtoD", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemcpyDtoD(kDev, kDev + 64, 16); }},
      {"cuMemcpy2D", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemcpy2D(&copy2d); }},
      {"cuMemcpyHtoDAsync", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemcpyHtoDAsync(kDev, buf, 16, nullptr); }},
      {"cuMemcpyDtoHAsync", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemcpyDtoHAsync(buf, kDev, 16, nullptr); }},
      {"cuMemsetD8", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemsetD8(kDev, 1, 16); }},
      {"cuMemsetD16", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemsetD16(kDev, 1, 16); }},
      {"cuMemsetD32", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemsetD32(kDev, 1, 16); }},
      {"cuMemsetD32Async", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemsetD32Async(kDev, 1, 16, nullptr); }},
      {"cuStreamCreate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuStreamCreate(&st, 0); }},
      {"cuStreamCreateWithPriority", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuStreamCreateWithPriority(&st, 0, 0); }},
      {"cuStreamDestroy", CUDA_ERROR_NOT_INITIALIZED, [] { return cuStreamDestroy(bogus<CUstream>()); }},
      {"cuStreamSynchronize", CUDA_ERROR_NOT_INITIALIZED, [] { return cuStreamSynchronize(nullptr); }},
      {"cuStreamQuery", CUDA_ERROR_NOT_INITIALIZED, [] { return cuStreamQuery(nullptr); }},
      {"cuStreamWaitEvent", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuStreamWaitEvent(nullptr, bogus<CUevent>(), 0); }},
      {"cuStreamGetFlags", CUDA_ERROR_NOT_INITIALIZED, [] { return cuStreamGetFlags(nullptr, &u); }},
      {"cuStreamGetPriority", CUDA_ERROR_NOT_INITIALIZED, [] { return cuStreamGetPriority(nullptr, &i); }},
      {"cuStreamGetCtx", CUDA_ERROR_NOT_INITIALIZED, [] { return cuStreamGetCtx(nullptr, &ctx); }},
      {"cuStreamGetDevice", CUDA_ERROR_NOT_INITIALIZED, [] { return cuStreamGetDevice(nullptr, &dev); }},
      {"cuLaunchHostFunc", CUDA_ERROR_NOT_INITIALIZED, [] { return cuLaunchHostFunc(nullptr, host_fn, nullptr); }},
      {"cuStreamAddCallback", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuStreamAddCallback(nullptr, stream_cb, nullptr, 0); }},
      {"cuEventCreate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuEventCreate(&ev, 0); }},
      {"cuEventDestroy", CUDA_ERROR_NOT_INITIALIZED, [] { return cuEventDestroy(bogus<CUevent>()); }},
      {"cuEventRecord", CUDA_ERROR_NOT_INITIALIZED, [] { return cuEventRecord(bogus<CUevent>(), nullptr); }},
      {"cuEventRecordWithFlags", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuEventRecordWithFlags(bogus<CUevent>(), nullptr, 0); }},
      {"cuEventQuery", CUDA_ERROR_NOT_INITIALIZED, [] { return cuEventQuery(bogus<CUevent>()); }},
      {"cuEventSynchronize", CUDA_ERROR_NOT_INITIALIZED, [] { return cuEventSynchronize(bogus<CUevent>()); }},
      {"cuEventElapsedTime", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuEventElapsedTime(&ms, bogus<CUevent>(), bogus<CUevent>()); }},
      {"cuModuleLoadData", CUDA_ERROR_NOT_INITIALIZED, [] { return cuModuleLoadData(&mod, kSpinPtx); }},
      {"cuModuleLoadDataEx", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuModuleLoadDataEx(&mod, kSpinPtx, 0, nullptr, nullptr); }},
      {"cuModuleLoad", CUDA_ERROR_NOT_INITIALIZED, [] { return cuModuleLoad(&mod, "/nonexistent/m.ptx"); }},
      {"cuModuleUnload", CUDA_ERROR_NOT_INITIALIZED, [] { return cuModuleUnload(bogus<CUmodule>()); }},
      {"cuModuleGetFunction", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuModuleGetFunction(&fn, bogus<CUmodule>(), "spin_ns"); }},
      {"cuLibraryLoadData", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuLibraryLoadData(&lib, kSpinPtx, nullptr, nullptr, 0, nullptr, nullptr, 0); }},
      {"cuLibraryUnload", CUDA_ERROR_NOT_INITIALIZED, [] { return cuLibraryUnload(bogus<CUlibrary>()); }},
      {"cuLibraryGetKernel", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuLibraryGetKernel(&kern, bogus<CUlibrary>(), "spin_ns"); }},
      {"cuLibraryGetModule", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuLibraryGetModule(&mod, bogus<CUlibrary>()); }},
      {"cuKernelGetFunction", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuKernelGetFunction(&fn, bogus<CUkernel>()); }},
      {"cuLaunchKernel", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuLaunchKernel(bogus<CUfunction>(), 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr); }},
      {"cuLaunchCooperativeKernel", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuLaunchCooperativeKernel(bogus<CUfunction>(), 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr); }},
      {"cuLaunchKernelEx", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuLaunchKernelEx(&cfg, bogus<CUfunction>(), nullptr, nullptr); }},
      {"cuGraphCreate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuGraphCreate(&graph, 0); }},
      {"cuGraphDestroy", CUDA_ERROR_NOT_INITIALIZED, [] { return cuGraphDestroy(bogus<CUgraph>()); }},
      {"cuGraphInstantiate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuGraphInstantiate(&exec, bogus<CUgraph>(), 0); }},
      {"cuGraphLaunch", CUDA_ERROR_NOT_INITIALIZED, [] { return cuGraphLaunch(bogus<CUgraphExec>(), nullptr); }},
      {"cuGraphExecDestroy", CUDA_ERROR_NOT_INITIALIZED, [] { return cuGraphExecDestroy(bogus<CUgraphExec>()); }},
      {"cuDeviceGetDefaultMemPool", CUDA_ERROR_NOT_INITIALIZED, [] { return cuDeviceGetDefaultMemPool(&pool, 0); }},
      {"cuMemPoolCreate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemPoolCreate(&pool, &pprops); }},
      {"cuMemPoolGetAttribute", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuMemPoolGetAttribute(bogus<CUmemoryPool>(), CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &ull); }},
      {"cuMemPoolTrimTo", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemPoolTrimTo(bogus<CUmemoryPool>(), 0); }},
      {"cuMemAllocAsync", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemAllocAsync(&dp, 64, nullptr); }},
      {"cuMemAllocFromPoolAsync", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuMemAllocFromPoolAsync(&dp, 64, bogus<CUmemoryPool>(), nullptr); }},
      {"cuMemFreeAsync", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemFreeAsync(kDev, nullptr); }},
      {"cuMemGetAllocationGranularity", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuMemGetAllocationGranularity(&sz, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM); }},
      {"cuMemCreate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemCreate(&mh, 2u << 20, &prop, 0); }},
      {"cuMemRelease", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemRelease(1); }},
      {"cuMemAddressReserve", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMemAddressReserve(&dp, 2u << 20, 0, 0, 0); }},
      {"cuMemAddressFree", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemAddressFree(kDev, 2u << 20); }},
      {"cuMemMap", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemMap(kDev, 2u << 20, 0, 1, 0); }},
      {"cuMemUnmap", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemUnmap(kDev, 2u << 20); }},
      {"cuMemGetAccess", CUDA_ERROR_NOT_INITIALIZED, [=] { return cuMemGetAccess(&ull, &loc, kDev); }},
      {"cuMemGetAllocationPropertiesFromHandle", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuMemGetAllocationPropertiesFromHandle(&prop, 1); }},
      {"cuMemRetainAllocationHandle", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuMemRetainAllocationHandle(&mh, buf); }},
      {"cuArrayCreate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuArrayCreate(&arr, &desc2); }},
      {"cuArray3DCreate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuArray3DCreate(&arr, &desc3); }},
      {"cuArrayDestroy", CUDA_ERROR_NOT_INITIALIZED, [] { return cuArrayDestroy(bogus<CUarray>()); }},
      {"cuArrayGetDescriptor", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuArrayGetDescriptor(&desc2, bogus<CUarray>()); }},
      {"cuArray3DGetDescriptor", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuArray3DGetDescriptor(&desc3, bogus<CUarray>()); }},
      {"cuMipmappedArrayCreate", CUDA_ERROR_NOT_INITIALIZED, [] { return cuMipmappedArrayCreate(&mip, &desc3, 2); }},
      {"cuMipmappedArrayGetLevel", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuMipmappedArrayGetLevel(&arr, bogus<CUmipmappedArray>(), 0); }},
      {"cuMipmappedArrayDestroy", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuMipmappedArrayDestroy(bogus<CUmipmappedArray>()); }},
  };
}

// Entry points that take handles: before cuInit they must answer
// CUDA_ERROR_NOT_INITIALIZED, as cuda.h documents, rather than judge their
// (bogus) handle arguments first.
std::vector<Row> before_init_rows_with_handles() {
  static int i;
  static size_t n;
  static CUgraphNode node;
  static CUgraphNodeType type;
  static CUdeviceptr dp;
  static CUlibrary lib;
  static CUDA_MEM_ALLOC_NODE_PARAMS alloc{};
  static CUDA_HOST_NODE_PARAMS host{host_fn, nullptr};
  static CUDA_KERNEL_NODE_PARAMS kparams{};
  static CUDA_MEM_ALLOC_NODE_PARAMS alloc_params = [] {
    CUDA_MEM_ALLOC_NODE_PARAMS p{};
    p.poolProps = pool_props();
    p.bytesize = 2u << 20;
    return p;
  }();
  return {
      {"cuFuncGetAttribute", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuFuncGetAttribute(&i, CU_FUNC_ATTRIBUTE_NUM_REGS, bogus<CUfunction>()); }},
      {"cuFuncSetAttribute", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuFuncSetAttribute(bogus<CUfunction>(), CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 0); }},
      {"cuFuncSetCacheConfig", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuFuncSetCacheConfig(bogus<CUfunction>(), CU_FUNC_CACHE_PREFER_NONE); }},
      {"cuLibraryLoadFromFile", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuLibraryLoadFromFile(&lib, "/nonexistent/l.ptx", nullptr, nullptr, 0, nullptr, nullptr, 0); }},
      {"cuGraphAddEmptyNode", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuGraphAddEmptyNode(&node, bogus<CUgraph>(), nullptr, 0); }},
      {"cuGraphAddHostNode", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuGraphAddHostNode(&node, bogus<CUgraph>(), nullptr, 0, &host); }},
      {"cuGraphAddKernelNode", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuGraphAddKernelNode(&node, bogus<CUgraph>(), nullptr, 0, &kparams); }},
      {"cuGraphAddMemAllocNode", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuGraphAddMemAllocNode(&node, bogus<CUgraph>(), nullptr, 0, &alloc_params); }},
      {"cuGraphAddMemFreeNode", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuGraphAddMemFreeNode(&node, bogus<CUgraph>(), nullptr, 0, 0x100000); }},
      {"cuGraphNodeGetType", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuGraphNodeGetType(bogus<CUgraphNode>(), &type); }},
      {"cuGraphGetNodes", CUDA_ERROR_NOT_INITIALIZED, [] { return cuGraphGetNodes(bogus<CUgraph>(), nullptr, &n); }},
      {"cuGraphUpload", CUDA_ERROR_NOT_INITIALIZED, [] { return cuGraphUpload(bogus<CUgraphExec>(), nullptr); }},
      {"cuGraphMemAllocNodeGetParams", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuGraphMemAllocNodeGetParams(bogus<CUgraphNode>(), &alloc); }},
      {"cuGraphMemFreeNodeGetParams", CUDA_ERROR_NOT_INITIALIZED,
       [] { return cuGraphMemFreeNodeGetParams(bogus<CUgraphNode>(), &dp); }},
  };
}

TEST(SimFidelity, EveryDocumentedEntryPointIsNotInitializedBeforeCuInit) {
  auto rows = before_init_rows();
  EXPECT_GT(rows.size(), 100u);
  EXPECT_EQ(in_fresh_process([&] { return mismatches(rows); }), "");
}

TEST(SimFidelity, InitIsCheckedBeforeHandles) {
  EXPECT_EQ(in_fresh_process([] { return mismatches(before_init_rows_with_handles()); }), "");
}

TEST(SimFidelity, VersionErrorsAndProcAddressWorkBeforeCuInit) {
  // cuDriverGetVersion, cuGetErrorName/String and cuGetProcAddress document no
  // NOT_INITIALIZED: cudart looks up cuInit itself through cuGetProcAddress.
  std::string out = in_fresh_process([] {
    std::string bad;
    int v = 0;
    if (cuDriverGetVersion(&v) != CUDA_SUCCESS || v < 12000) bad += "cuDriverGetVersion\n";
    const char* s = nullptr;
    if (cuGetErrorName(CUDA_ERROR_NOT_INITIALIZED, &s) != CUDA_SUCCESS) bad += "cuGetErrorName\n";
    if (cuGetErrorString(CUDA_ERROR_NOT_INITIALIZED, &s) != CUDA_SUCCESS) bad += "cuGetErrorString\n";
    void* pfn = nullptr;
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (cuGetProcAddress("cuInit", &pfn, 2000, CU_GET_PROC_ADDRESS_DEFAULT, &st) != CUDA_SUCCESS || !pfn ||
        st != CU_GET_PROC_ADDRESS_SUCCESS || pfn != dlsym(RTLD_DEFAULT, "cuInit"))
      bad += "cuGetProcAddress(cuInit)\n";
    return bad;
  });
  EXPECT_EQ(out, "");
}

// --- after cuInit: NULL outputs and destroyed handles ------------------------

class SimFidelityLive : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static vgpu::test::SimNode node({{"SIMGPU_MEMORY", "1Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}});
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
  }
  void SetUp() override {
    ASSERT_EQ(cuCtxCreate(&ctx_, nullptr, 0, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuStreamCreate(&stream_, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuEventCreate(&event_, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleLoadData(&module_, kSpinPtx), CUDA_SUCCESS);
    ASSERT_EQ(cuModuleGetFunction(&func_, module_, "spin_ns"), CUDA_SUCCESS);
    ASSERT_EQ(cuLibraryLoadData(&library_, kSpinPtx, nullptr, nullptr, 0, nullptr, nullptr, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuLibraryGetKernel(&kernel_, library_, "spin_ns"), CUDA_SUCCESS);
    ASSERT_EQ(cuGraphCreate(&graph_, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuGraphAddEmptyNode(&node_, graph_, nullptr, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuGraphInstantiate(&exec_, graph_, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuMemPoolCreate(&pool_, &pool_props_), CUDA_SUCCESS);
    ASSERT_EQ(cuMemAlloc(&dptr_, 4096), CUDA_SUCCESS);
    ASSERT_EQ(cuMemAllocHost(&host_, 4096), CUDA_SUCCESS);
    ASSERT_EQ(cuMemCreate(&phys_, 2u << 20, &prop_, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuMemAddressReserve(&va_, 2u << 20, 0, 0, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuMemMap(va_, 2u << 20, 0, phys_, 0), CUDA_SUCCESS);
    CUDA_ARRAY3D_DESCRIPTOR d = array_desc();
    ASSERT_EQ(cuArray3DCreate(&array_, &d), CUDA_SUCCESS);
    ASSERT_EQ(cuMipmappedArrayCreate(&mipmap_, &d, 2), CUDA_SUCCESS);
  }
  // Destroying the context frees everything it owns; the rest goes explicitly.
  void TearDown() override {
    cuMemUnmap(va_, 2u << 20);
    cuMemAddressFree(va_, 2u << 20);
    cuMemRelease(phys_);
    cuMemPoolDestroy(pool_);
    cuGraphExecDestroy(exec_);
    cuGraphDestroy(graph_);
    cuLibraryUnload(library_);
    cuEventDestroy(event_);
    cuMemFreeHost(host_);
    EXPECT_EQ(cuCtxDestroy(ctx_), CUDA_SUCCESS);
  }

  CUcontext ctx_ = nullptr;
  CUstream stream_ = nullptr;
  CUevent event_ = nullptr;
  CUmodule module_ = nullptr;
  CUfunction func_ = nullptr;
  CUlibrary library_ = nullptr;
  CUkernel kernel_ = nullptr;
  CUgraph graph_ = nullptr;
  CUgraphNode node_ = nullptr;
  CUgraphExec exec_ = nullptr;
  CUmemoryPool pool_ = nullptr;
  CUdeviceptr dptr_ = 0;
  void* host_ = nullptr;
  CUmemGenericAllocationHandle phys_ = 0;
  CUdeviceptr va_ = 0;
  CUarray array_ = nullptr;
  CUmipmappedArray mipmap_ = nullptr;
  CUmemPoolProps pool_props_ = pool_props();
  CUmemAllocationProp prop_ = vmm_prop();
};

// Getters whose output pointer is NULL, every other argument valid. cuda.h
// lists CUDA_ERROR_INVALID_VALUE for each of them.
TEST_F(SimFidelityLive, NullOutputPointersAreInvalidValue) {
  const CUresult kIV = CUDA_ERROR_INVALID_VALUE;
  unsigned u = 0;
  int i = 0;
  size_t sz = 0;
  CUdeviceptr dp = 0;
  CUDA_ARRAY3D_DESCRIPTOR d3 = array_desc();
  CUmemLocation loc{CU_MEM_LOCATION_TYPE_DEVICE, 0};
  CUipcMemHandle ipc{};
  ASSERT_EQ(cuIpcGetMemHandle(&ipc, dptr_), CUDA_SUCCESS);
  std::vector<Row> rows = {
      {"cuDeviceGetCount", kIV, [] { return cuDeviceGetCount(nullptr); }},
      {"cuDeviceGet", kIV, [] { return cuDeviceGet(nullptr, 0); }},
      {"cuDeviceGetName", kIV, [] { return cuDeviceGetName(nullptr, 64, 0); }},
      {"cuDeviceGetUuid", kIV, [] { return cuDeviceGetUuid(nullptr, 0); }},
      {"cuDeviceTotalMem", kIV, [] { return cuDeviceTotalMem(nullptr, 0); }},
      {"cuDeviceGetAttribute", kIV,
       [] { return cuDeviceGetAttribute(nullptr, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0); }},
      {"cuDeviceGetPCIBusId", kIV, [] { return cuDeviceGetPCIBusId(nullptr, 64, 0); }},
      {"cuDeviceGetByPCIBusId", kIV, [] { return cuDeviceGetByPCIBusId(nullptr, "0000:18:00.0"); }},
      {"cuDriverGetVersion", kIV, [] { return cuDriverGetVersion(nullptr); }},
      {"cuDevicePrimaryCtxRetain", kIV, [] { return cuDevicePrimaryCtxRetain(nullptr, 0); }},
      {"cuDevicePrimaryCtxGetState(flags)", kIV, [&] { return cuDevicePrimaryCtxGetState(0, nullptr, &i); }},
      {"cuDevicePrimaryCtxGetState(active)", kIV, [&] { return cuDevicePrimaryCtxGetState(0, &u, nullptr); }},
      {"cuCtxCreate", kIV, [] { return cuCtxCreate(nullptr, nullptr, 0, 0); }},
      {"cuCtxGetDevice", kIV, [] { return cuCtxGetDevice(nullptr); }},
      {"cuCtxGetFlags", kIV, [] { return cuCtxGetFlags(nullptr); }},
      {"cuCtxGetId", kIV, [&] { return cuCtxGetId(ctx_, nullptr); }},
      {"cuCtxGetApiVersion", kIV, [&] { return cuCtxGetApiVersion(ctx_, nullptr); }},
      {"cuCtxGetLimit", kIV, [] { return cuCtxGetLimit(nullptr, CU_LIMIT_STACK_SIZE); }},
      {"cuMemAllocPitch(dptr)", kIV, [&] { return cuMemAllocPitch(nullptr, &sz, 64, 64, 4); }},
      {"cuMemAllocPitch(pitch)", kIV, [&] { return cuMemAllocPitch(&dp, nullptr, 64, 64, 4); }},
      {"cuMemAllocManaged", kIV, [] { return cuMemAllocManaged(nullptr, 64, CU_MEM_ATTACH_GLOBAL); }},
      {"cuMemGetInfo(free)", kIV, [&] { return cuMemGetInfo(nullptr, &sz); }},
      {"cuMemGetInfo(total)", kIV, [&] { return cuMemGetInfo(&sz, nullptr); }},
      {"cuMemAllocHost", kIV, [] { return cuMemAllocHost(nullptr, 64); }},
      {"cuMemHostAlloc", kIV, [] { return cuMemHostAlloc(nullptr, 64, 0); }},
      {"cuMemHostGetDevicePointer", kIV, [&] { return cuMemHostGetDevicePointer(nullptr, host_, 0); }},
      {"cuMemHostGetFlags", kIV, [&] { return cuMemHostGetFlags(nullptr, host_); }},
      {"cuPointerGetAttribute", kIV,
       [&] { return cuPointerGetAttribute(nullptr, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, dptr_); }},
      {"cuStreamCreate", kIV, [] { return cuStreamCreate(nullptr, 0); }},
      {"cuStreamCreateWithPriority", kIV, [] { return cuStreamCreateWithPriority(nullptr, 0, 0); }},
      {"cuStreamGetFlags", kIV, [&] { return cuStreamGetFlags(stream_, nullptr); }},
      {"cuStreamGetPriority", kIV, [&] { return cuStreamGetPriority(stream_, nullptr); }},
      {"cuStreamGetId", kIV, [&] { return cuStreamGetId(stream_, nullptr); }},
      {"cuStreamGetDevice", kIV, [&] { return cuStreamGetDevice(stream_, nullptr); }},
      {"cuEventCreate", kIV, [] { return cuEventCreate(nullptr, 0); }},
      {"cuModuleLoadData", kIV, [] { return cuModuleLoadData(nullptr, kSpinPtx); }},
      {"cuModuleGetFunction", kIV, [&] { return cuModuleGetFunction(nullptr, module_, "spin_ns"); }},
      {"cuModuleGetFunctionCount", kIV, [&] { return cuModuleGetFunctionCount(nullptr, module_); }},
      {"cuFuncGetName", kIV, [&] { return cuFuncGetName(nullptr, func_); }},
      {"cuFuncGetAttribute", kIV, [&] { return cuFuncGetAttribute(nullptr, CU_FUNC_ATTRIBUTE_NUM_REGS, func_); }},
      {"cuLibraryLoadData", kIV,
       [] { return cuLibraryLoadData(nullptr, kSpinPtx, nullptr, nullptr, 0, nullptr, nullptr, 0); }},
      {"cuLibraryGetKernel", kIV, [&] { return cuLibraryGetKernel(nullptr, library_, "spin_ns"); }},
      {"cuLibraryGetKernelCount", kIV, [&] { return cuLibraryGetKernelCount(nullptr, library_); }},
      {"cuLibraryGetModule", kIV, [&] { return cuLibraryGetModule(nullptr, library_); }},
      {"cuKernelGetFunction", kIV, [&] { return cuKernelGetFunction(nullptr, kernel_); }},
      {"cuKernelGetName", kIV, [&] { return cuKernelGetName(nullptr, kernel_); }},
      {"cuGraphCreate", kIV, [] { return cuGraphCreate(nullptr, 0); }},
      {"cuGraphInstantiate", kIV, [&] { return cuGraphInstantiate(nullptr, graph_, 0); }},
      {"cuGraphNodeGetType", kIV, [&] { return cuGraphNodeGetType(node_, nullptr); }},
      {"cuGraphGetNodes", kIV, [&] { return cuGraphGetNodes(graph_, nullptr, nullptr); }},
      {"cuGraphExecGetFlags", kIV, [&] { return cuGraphExecGetFlags(exec_, nullptr); }},
      {"cuDeviceGetDefaultMemPool", kIV, [] { return cuDeviceGetDefaultMemPool(nullptr, 0); }},
      {"cuDeviceGetMemPool", kIV, [] { return cuDeviceGetMemPool(nullptr, 0); }},
      {"cuMemPoolCreate", kIV, [&] { return cuMemPoolCreate(nullptr, &pool_props_); }},
      {"cuMemPoolGetAttribute", kIV,
       [&] { return cuMemPoolGetAttribute(pool_, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, nullptr); }},
      {"cuMemAllocAsync", kIV, [&] { return cuMemAllocAsync(nullptr, 64, stream_); }},
      {"cuMemAllocFromPoolAsync", kIV, [&] { return cuMemAllocFromPoolAsync(nullptr, 64, pool_, stream_); }},
      {"cuMemGetAllocationGranularity", kIV,
       [&] { return cuMemGetAllocationGranularity(nullptr, &prop_, CU_MEM_ALLOC_GRANULARITY_MINIMUM); }},
      {"cuMemCreate", kIV, [&] { return cuMemCreate(nullptr, 2u << 20, &prop_, 0); }},
      {"cuMemAddressReserve", kIV, [] { return cuMemAddressReserve(nullptr, 2u << 20, 0, 0, 0); }},
      {"cuMemGetAccess", kIV, [&] { return cuMemGetAccess(nullptr, &loc, va_); }},
      {"cuMemGetAllocationPropertiesFromHandle", kIV,
       [&] { return cuMemGetAllocationPropertiesFromHandle(nullptr, phys_); }},
      {"cuMemRetainAllocationHandle", kIV,
       [&] { return cuMemRetainAllocationHandle(nullptr, reinterpret_cast<void*>(va_)); }},
      {"cuArray3DCreate", kIV, [&] { return cuArray3DCreate(nullptr, &d3); }},
      {"cuArrayGetDescriptor", kIV, [&] { return cuArrayGetDescriptor(nullptr, array_); }},
      {"cuArray3DGetDescriptor", kIV, [&] { return cuArray3DGetDescriptor(nullptr, array_); }},
      {"cuMipmappedArrayCreate", kIV, [&] { return cuMipmappedArrayCreate(nullptr, &d3, 2); }},
      {"cuMipmappedArrayGetLevel", kIV, [&] { return cuMipmappedArrayGetLevel(nullptr, mipmap_, 0); }},
      {"cuIpcGetMemHandle", kIV, [&] { return cuIpcGetMemHandle(nullptr, dptr_); }},
      {"cuIpcOpenMemHandle", kIV,
       [&] { return cuIpcOpenMemHandle(nullptr, ipc, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS); }},
      {"cuGetErrorName", kIV, [] { return cuGetErrorName(CUDA_ERROR_INVALID_VALUE, nullptr); }},
      {"cuGetErrorString", kIV, [] { return cuGetErrorString(CUDA_ERROR_INVALID_VALUE, nullptr); }},
      {"cuFuncGetParamInfo(size optional)", CUDA_SUCCESS,
       [&] { return cuFuncGetParamInfo(func_, 0, &sz, nullptr); }},
      {"cuMemGetAddressRange(both optional)", CUDA_SUCCESS,
       [&] { return cuMemGetAddressRange(nullptr, nullptr, dptr_); }},
      {"cuCtxGetStreamPriorityRange(both optional)", CUDA_SUCCESS,
       [] { return cuCtxGetStreamPriorityRange(nullptr, nullptr); }},
  };
  EXPECT_EQ(mismatches(rows), "");
}

// cuda.h makes paramOffset the required output of cuFuncGetParamInfo /
// cuKernelGetParamInfo (only paramSize may be NULL), so a NULL paramOffset is
// CUDA_ERROR_INVALID_VALUE.
TEST_F(SimFidelityLive, NullParamOffsetIsInvalidValue) {
  size_t size = 0;
  EXPECT_EQ(cuFuncGetParamInfo(func_, 0, nullptr, &size), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(cuKernelGetParamInfo(kernel_, 0, nullptr, &size), CUDA_ERROR_INVALID_VALUE);
}

// Handles used after their destroy call. The codes are the handle error each
// entry point documents.
TEST_F(SimFidelityLive, DestroyedHandlesGiveTheDocumentedCodes) {
  const CUresult kIH = CUDA_ERROR_INVALID_HANDLE, kIV = CUDA_ERROR_INVALID_VALUE;
  CUstream dead_stream;
  CUevent dead_event, live_event;
  CUmodule dead_module;
  CUfunction dead_func, f;
  CUlibrary dead_library;
  CUkernel dead_kernel;
  CUgraph dead_graph;
  CUgraphExec dead_exec, x;
  CUgraphNode n;
  CUmemoryPool dead_pool;
  CUmemGenericAllocationHandle dead_phys;
  CUarray dead_array, level;
  CUmipmappedArray dead_mipmap;
  CUDA_ARRAY3D_DESCRIPTOR d3 = array_desc();
  ASSERT_EQ(cuStreamCreate(&dead_stream, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamDestroy(dead_stream), CUDA_SUCCESS);
  ASSERT_EQ(cuEventCreate(&dead_event, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuEventCreate(&live_event, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(dead_event, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuEventRecord(live_event, nullptr), CUDA_SUCCESS);
  ASSERT_EQ(cuEventDestroy(dead_event), CUDA_SUCCESS);
  ASSERT_EQ(cuModuleLoadData(&dead_module, kSpinPtx), CUDA_SUCCESS);
  ASSERT_EQ(cuModuleGetFunction(&dead_func, dead_module, "spin_ns"), CUDA_SUCCESS);
  ASSERT_EQ(cuModuleUnload(dead_module), CUDA_SUCCESS);
  ASSERT_EQ(cuLibraryLoadData(&dead_library, kSpinPtx, nullptr, nullptr, 0, nullptr, nullptr, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuLibraryGetKernel(&dead_kernel, dead_library, "spin_ns"), CUDA_SUCCESS);
  ASSERT_EQ(cuLibraryUnload(dead_library), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphCreate(&dead_graph, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphInstantiate(&dead_exec, dead_graph, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphExecDestroy(dead_exec), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphDestroy(dead_graph), CUDA_SUCCESS);
  ASSERT_EQ(cuMemPoolCreate(&dead_pool, &pool_props_), CUDA_SUCCESS);
  ASSERT_EQ(cuMemPoolDestroy(dead_pool), CUDA_SUCCESS);
  ASSERT_EQ(cuMemCreate(&dead_phys, 2u << 20, &prop_, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuMemRelease(dead_phys), CUDA_SUCCESS);
  ASSERT_EQ(cuArray3DCreate(&dead_array, &d3), CUDA_SUCCESS);
  ASSERT_EQ(cuArrayDestroy(dead_array), CUDA_SUCCESS);
  ASSERT_EQ(cuMipmappedArrayCreate(&dead_mipmap, &d3, 2), CUDA_SUCCESS);
  ASSERT_EQ(cuMipmappedArrayDestroy(dead_mipmap), CUDA_SUCCESS);
  unsigned long long ns = 1000;
  void* params[] = {&ns};
  unsigned u = 0;
  int i = 0;
  float ms = 0;
  cuuint64_t threshold = 0;
  CUmemAllocationProp prop{};
  CUDA_ARRAY_DESCRIPTOR d2{};
  CUdeviceptr dp = 0;
  std::vector<Row> rows = {
      {"cuStreamDestroy(destroyed)", kIH, [&] { return cuStreamDestroy(dead_stream); }},
      {"cuStreamQuery(destroyed)", kIH, [&] { return cuStreamQuery(dead_stream); }},
      {"cuStreamSynchronize(destroyed)", kIH, [&] { return cuStreamSynchronize(dead_stream); }},
      {"cuStreamGetFlags(destroyed)", kIH, [&] { return cuStreamGetFlags(dead_stream, &u); }},
      {"cuStreamGetPriority(destroyed)", kIH, [&] { return cuStreamGetPriority(dead_stream, &i); }},
      {"cuStreamWaitEvent(destroyed stream)", kIH, [&] { return cuStreamWaitEvent(dead_stream, event_, 0); }},
      {"cuEventRecord(destroyed stream)", kIH, [&] { return cuEventRecord(event_, dead_stream); }},
      {"cuLaunchKernel(destroyed stream)", kIH,
       [&] { return cuLaunchKernel(func_, 1, 1, 1, 32, 1, 1, 0, dead_stream, params, nullptr); }},
      {"cuLaunchHostFunc(destroyed stream)", kIH, [&] { return cuLaunchHostFunc(dead_stream, host_fn, nullptr); }},
      {"cuMemcpyHtoDAsync(destroyed stream)", kIH,
       [&] { return cuMemcpyHtoDAsync(dptr_, host_, 16, dead_stream); }},
      {"cuEventDestroy(destroyed)", kIH, [&] { return cuEventDestroy(dead_event); }},
      {"cuEventQuery(destroyed)", kIH, [&] { return cuEventQuery(dead_event); }},
      {"cuEventSynchronize(destroyed)", kIH, [&] { return cuEventSynchronize(dead_event); }},
      {"cuEventRecord(destroyed)", kIH, [&] { return cuEventRecord(dead_event, nullptr); }},
      {"cuEventElapsedTime(destroyed)", kIH, [&] { return cuEventElapsedTime(&ms, dead_event, live_event); }},
      {"cuStreamWaitEvent(destroyed event)", kIH, [&] { return cuStreamWaitEvent(stream_, dead_event, 0); }},
      {"cuModuleGetFunctionCount(unloaded)", kIH, [&] { return cuModuleGetFunctionCount(&u, dead_module); }},
      {"cuLaunchKernel(function of unloaded module)", kIH,
       [&] { return cuLaunchKernel(dead_func, 1, 1, 1, 32, 1, 1, 0, stream_, params, nullptr); }},
      {"cuFuncGetAttribute(function of unloaded module)", kIH,
       [&] { return cuFuncGetAttribute(&i, CU_FUNC_ATTRIBUTE_NUM_REGS, dead_func); }},
      {"cuLibraryGetKernel(unloaded)", kIH, [&] { return cuLibraryGetKernel(&dead_kernel, dead_library, "spin_ns"); }},
      {"cuLibraryGetKernelCount(unloaded)", kIH, [&] { return cuLibraryGetKernelCount(&u, dead_library); }},
      {"cuLibraryGetModule(unloaded)", kIH, [&] { return cuLibraryGetModule(&dead_module, dead_library); }},
      {"cuKernelGetFunction(kernel of unloaded library)", kIH, [&] { return cuKernelGetFunction(&f, dead_kernel); }},
      {"cuGraphAddEmptyNode(destroyed graph)", kIV, [&] { return cuGraphAddEmptyNode(&n, dead_graph, nullptr, 0); }},
      {"cuGraphInstantiate(destroyed graph)", kIV, [&] { return cuGraphInstantiate(&x, dead_graph, 0); }},
      {"cuGraphExecDestroy(destroyed)", kIV, [&] { return cuGraphExecDestroy(dead_exec); }},
      {"cuGraphLaunch(destroyed exec)", kIV, [&] { return cuGraphLaunch(dead_exec, stream_); }},
      {"cuMemPoolDestroy(destroyed)", kIV, [&] { return cuMemPoolDestroy(dead_pool); }},
      {"cuMemPoolGetAttribute(destroyed)", kIV,
       [&] { return cuMemPoolGetAttribute(dead_pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold); }},
      {"cuMemPoolTrimTo(destroyed)", kIV, [&] { return cuMemPoolTrimTo(dead_pool, 0); }},
      {"cuMemAllocFromPoolAsync(destroyed pool)", kIV,
       [&] { return cuMemAllocFromPoolAsync(&dp, 64, dead_pool, stream_); }},
      {"cuMemRelease(released)", kIV, [&] { return cuMemRelease(dead_phys); }},
      {"cuMemGetAllocationPropertiesFromHandle(released)", kIV,
       [&] { return cuMemGetAllocationPropertiesFromHandle(&prop, dead_phys); }},
      {"cuArrayDestroy(destroyed)", kIH, [&] { return cuArrayDestroy(dead_array); }},
      {"cuArrayGetDescriptor(destroyed)", kIH, [&] { return cuArrayGetDescriptor(&d2, dead_array); }},
      {"cuMipmappedArrayDestroy(destroyed)", kIH, [&] { return cuMipmappedArrayDestroy(dead_mipmap); }},
      {"cuMipmappedArrayGetLevel(destroyed)", kIH, [&] { return cuMipmappedArrayGetLevel(&level, dead_mipmap, 0); }},
  };
  EXPECT_EQ(mismatches(rows), "");
  cuEventDestroy(live_event);
}

// A context destroyed by one thread while current to another: the other
// thread's calls report CUDA_ERROR_CONTEXT_IS_DESTROYED, as documented for
// that code ("the context current to the calling thread has been destroyed").
TEST_F(SimFidelityLive, ContextDestroyedWhileCurrentElsewhere) {
  CUcontext other;
  ASSERT_EQ(cuCtxCreate(&other, nullptr, 0, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxPopCurrent(nullptr), CUDA_SUCCESS);
  std::string out;
  std::mutex mu;
  std::condition_variable cv;
  int phase = 0;
  std::thread t([&] {
    std::unique_lock<std::mutex> l(mu);
    if (cuCtxSetCurrent(other) != CUDA_SUCCESS) out += "cuCtxSetCurrent\n";
    phase = 1;
    cv.notify_all();
    cv.wait(l, [&] { return phase == 2; });
    unsigned long long id = 0;
    if (cuCtxGetId(nullptr, &id) != CUDA_ERROR_CONTEXT_IS_DESTROYED) out += "cuCtxGetId\n";
    CUdevice dev;
    if (cuCtxGetDevice(&dev) != CUDA_ERROR_CONTEXT_IS_DESTROYED) out += "cuCtxGetDevice\n";
  });
  {
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(30), [&] { return phase == 1; }));
    EXPECT_EQ(cuCtxDestroy(other), CUDA_SUCCESS);
    phase = 2;
    cv.notify_all();
  }
  t.join();
  EXPECT_EQ(out, "");
  // A destroyed context handle passed explicitly is an invalid context.
  unsigned long long id = 0;
  EXPECT_EQ(cuCtxSetCurrent(other), CUDA_ERROR_INVALID_CONTEXT);
  EXPECT_EQ(cuCtxGetId(other, &id), CUDA_ERROR_INVALID_CONTEXT);
  unsigned version = 0;
  EXPECT_EQ(cuCtxGetApiVersion(other, &version), CUDA_ERROR_INVALID_CONTEXT);
}

// --- error names and strings -----------------------------------------------

struct ErrorRow {
  const char* name;
  int value;
};
const ErrorRow kErrors[] = {
#define VGPU_DRIVER_ERROR(name, value) {#name, value},
#include "driver_errors.inc"
#undef VGPU_DRIVER_ERROR
};

TEST(SimFidelity, EveryCuResultOfCudaHHasItsNameAndAString) {
  std::set<std::string> strings;
  for (const ErrorRow& e : kErrors) {
    const char* name = nullptr;
    const char* text = nullptr;
    ASSERT_EQ(cuGetErrorName(static_cast<CUresult>(e.value), &name), CUDA_SUCCESS) << e.name;
    EXPECT_STREQ(name, e.name);
    ASSERT_EQ(cuGetErrorString(static_cast<CUresult>(e.value), &text), CUDA_SUCCESS) << e.name;
    ASSERT_NE(text, nullptr) << e.name;
    EXPECT_GT(std::strlen(text), 0u) << e.name;
    strings.insert(text);
  }
  EXPECT_GT(sizeof kErrors / sizeof kErrors[0], 90u);
  // Distinct codes read differently (a description cache must not mix them up).
  EXPECT_EQ(strings.size(), sizeof kErrors / sizeof kErrors[0]);
  // Documented: an unrecognized code is INVALID_VALUE and *pStr is set to NULL.
  const char* s = "untouched";
  EXPECT_EQ(cuGetErrorString(static_cast<CUresult>(123456), &s), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(s, nullptr);
  s = "untouched";
  EXPECT_EQ(cuGetErrorName(static_cast<CUresult>(123456), &s), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(s, nullptr);
}

// --- exported names ------------------------------------------------------------

const char* const kStubNames[] = {
#define VGPU_DRIVER_API(sym, base, version, suffix) #sym,
#include "driver_api.inc"
#undef VGPU_DRIVER_API
#define VGPU_DRIVER_EXTRA(sym) #sym,
#include "driver_extra.inc"
#undef VGPU_DRIVER_EXTRA
};

std::set<std::string> defined_dynamic_symbols(const std::string& library) {
  std::set<std::string> out;
  std::string cmd = "nm -D --defined-only '" + library + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char line[1024];
  while (std::fgets(line, sizeof line, p)) {
    std::string l(line);
    while (!l.empty() && (l.back() == '\n' || l.back() == ' ')) l.pop_back();
    size_t sp = l.rfind(' ');
    if (sp != std::string::npos) out.insert(l.substr(sp + 1));
  }
  pclose(p);
  return out;
}

TEST(SimFidelity, LibcudaExportsExactlyTheToolkitStubNames) {
  const std::string lib = vgpu::test::simgpu_dir() + "/libcuda.so.1";
  void* h = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  std::set<std::string> expected;
  for (const char* name : kStubNames) {
    expected.insert(name);
    EXPECT_NE(dlsym(h, name), nullptr) << name;
  }
  EXPECT_GT(expected.size(), 600u);
  std::set<std::string> actual = defined_dynamic_symbols(lib);
  ASSERT_FALSE(actual.empty()) << "nm -D found no symbols in " << lib;
  for (const std::string& s : actual) EXPECT_TRUE(expected.count(s)) << "extra export: " << s;
  for (const std::string& s : expected) EXPECT_TRUE(actual.count(s)) << "missing export: " << s;
  dlclose(h);
}

TEST(SimFidelity, LibnvidiaMlExportsOnlyNvmlNames) {
  std::set<std::string> actual = defined_dynamic_symbols(vgpu::test::simgpu_dir() + "/libnvidia-ml.so.1");
  ASSERT_FALSE(actual.empty());
  for (const std::string& s : actual) EXPECT_EQ(s.rfind("nvml", 0), 0u) << "extra export: " << s;
  EXPECT_TRUE(actual.count("nvmlInit_v2"));
  EXPECT_TRUE(actual.count("nvmlDeviceGetMemoryInfo_v2"));
}

}  // namespace
