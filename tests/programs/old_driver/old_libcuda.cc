// A stand-in for an old real driver (12.2, like the 535 series), for the
// hook's ABI tests: a libcuda.so.1 that exports only a few entry points —
// cuCtxCreate up to _v3 and cuGraphAddNode but not cuCtxCreate_v4 or
// cuGraphAddNode_v2 — and whose cuGetProcAddress answers a version above its
// own with success and its newest older function, as NVIDIA's 535/550
// drivers do (simgpu answers so too at SIMGPU_DRIVER_VERSION=12020, but it
// still exports the newer functions, which this stand-in must lack).
// fake_driver_calls(name) tells the test how often an entry point ran.
// Declared without cuda.h: only the ABI matters here.
#include <cstdint>
#include <cstring>

#define EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr int kDriverVersion = 12020;
constexpr int kSuccess = 0, kInvalidValue = 1, kNotInitialized = 3, kInvalidContext = 201;

int g_ctx_create_v2 = 0, g_ctx_create_v3 = 0, g_graph_add_node = 0;

}  // namespace

EXPORT int cuInit(unsigned) { return kSuccess; }
EXPORT int cuDriverGetVersion(int* v) {
  if (!v) return kInvalidValue;
  *v = kDriverVersion;
  return kSuccess;
}
EXPORT int cuCtxGetCurrent(void** ctx) {
  if (ctx) *ctx = nullptr;
  return kSuccess;
}
EXPORT int cuCtxGetDevice(int*) { return kInvalidContext; }
EXPORT int cuCtxCreate_v2(void**, unsigned, int) { return ++g_ctx_create_v2, kNotInitialized; }
EXPORT int cuCtxCreate_v3(void**, void*, int, unsigned, int) { return ++g_ctx_create_v3, kNotInitialized; }
EXPORT int cuGraphAddNode(void**, void*, const void*, size_t, void*) { return ++g_graph_add_node, kInvalidValue; }

EXPORT int fake_driver_calls(const char* name) {
  if (std::strcmp(name, "cuCtxCreate_v2") == 0) return g_ctx_create_v2;
  if (std::strcmp(name, "cuCtxCreate_v3") == 0) return g_ctx_create_v3;
  if (std::strcmp(name, "cuGraphAddNode") == 0) return g_graph_add_node;
  return -1;
}

namespace {

struct Row {
  const char* base;
  int version;
  void* fn;
};
const Row kRows[] = {
    {"cuInit", 2000, reinterpret_cast<void*>(&cuInit)},
    {"cuDriverGetVersion", 2020, reinterpret_cast<void*>(&cuDriverGetVersion)},
    {"cuCtxGetCurrent", 4000, reinterpret_cast<void*>(&cuCtxGetCurrent)},
    {"cuCtxGetDevice", 2000, reinterpret_cast<void*>(&cuCtxGetDevice)},
    {"cuCtxCreate", 3020, reinterpret_cast<void*>(&cuCtxCreate_v2)},
    {"cuCtxCreate", 11040, reinterpret_cast<void*>(&cuCtxCreate_v3)},
    {"cuGraphAddNode", 12020, reinterpret_cast<void*>(&cuGraphAddNode)},
};

// The real 535 driver's lookup: the newest row not above the request, even
// when the request is above the driver's own version.
int lookup(const char* symbol, void** pfn, int version, int* status) {
  if (!symbol || !pfn) return kInvalidValue;
  const Row* best = nullptr;
  for (const Row& r : kRows)
    if (std::strcmp(r.base, symbol) == 0 && r.version <= version && (!best || r.version > best->version)) best = &r;
  *pfn = best ? best->fn : nullptr;
  if (status) *status = best ? 0 : 1;  // CU_GET_PROC_ADDRESS_SUCCESS / SYMBOL_NOT_FOUND
  return kSuccess;
}

}  // namespace

EXPORT int cuGetProcAddress_v2(const char* symbol, void** pfn, int version, uint64_t, int* status) {
  return lookup(symbol, pfn, version, status);
}
EXPORT int cuGetProcAddress(const char* symbol, void** pfn, int version, uint64_t) {
  return lookup(symbol, pfn, version, nullptr);
}
