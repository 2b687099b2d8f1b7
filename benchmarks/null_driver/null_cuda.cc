// A null CUDA driver (build/benchmarks/null-driver/libcuda.so.1) for
// measuring what libvgpu.so adds to a driver call: every entry point returns
// at once, so the hook's own cost is not buried under a driver's (simgpu's
// launch costs ~1 µs and varies by tens of ns; the hook adds a few ns).
//
// What it answers: one device (ordinal 0, 80 GiB, a fixed UUID, or the one
// in VGPU_NULL_DRIVER_UUID, "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", so a
// benchmark can make it the GPU of a vgpud running on simgpu: the hook finds
// its GPU by UUID through NVML); contexts,
// streams, events, modules and functions are distinct non-null handles with
// no state behind them; cuMemAlloc returns increasing fake addresses (never
// reused, never dereferenceable) and cuMemGetInfo counts them; launches and
// synchronizations succeed at once; every event is complete; nothing is
// capturing. cuGetProcAddress(_v2) answers from the driver's own table
// (null_table.h). Every other exported name (each row of libhook/hooks.inc
// and null_symbols.txt) returns CUDA_ERROR_NOT_SUPPORTED.
//
// The prototypes follow the driver ABI (cuda.h) with plain C types; cuda.h
// is not included because its declarations of the legacy and versioned names
// (cuMemAlloc vs cuMemAlloc_v2) differ between toolkits.
//
// Thread-safety: all entry points are thread-safe (atomics, a thread-local
// current context). Not for correctness tests: no error checking beyond
// null pointers.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "null_table.h"

namespace {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using Handle = void*;

constexpr CUresult kSuccess = 0;
constexpr CUresult kInvalidValue = 1;
constexpr CUresult kNotInitialized = 3;
constexpr CUresult kInvalidContext = 201;
constexpr CUresult kInvalidDevice = 101;
constexpr CUresult kNotFound = 500;
constexpr uint64_t kTotalMemory = 80ull << 30;
constexpr unsigned char kUuid[16] = {0x6e, 0x75, 0x6c, 0x6c, 0x2d, 0x67, 0x70, 0x75,
                                     0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};

std::atomic<bool> g_initialized{false};
std::atomic<uint64_t> g_next_address{0x7f0000000000ull};
std::atomic<int64_t> g_allocated{0};
std::atomic<uintptr_t> g_next_handle{0x1000};
std::atomic<int> g_primary_refs{0};
char g_primary_context;  // its address is the primary context's handle
thread_local Handle t_current = nullptr;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The UUID from VGPU_NULL_DRIVER_UUID ("GPU-" + 32 hex digits and dashes) into
// out; false if unset or malformed.
bool uuid_from_env(unsigned char out[16]) {
  const char* v = std::getenv("VGPU_NULL_DRIVER_UUID");
  if (!v || std::strncmp(v, "GPU-", 4) != 0) return false;
  int n = 0;
  for (const char* p = v + 4; *p && n < 32; ++p) {
    if (*p == '-') continue;
    int d = hex_digit(*p);
    if (d < 0) return false;
    if (n % 2 == 0) out[n / 2] = static_cast<unsigned char>(d << 4);
    else out[n / 2] = static_cast<unsigned char>(out[n / 2] | d);
    ++n;
  }
  return n == 32;
}

Handle new_handle() { return reinterpret_cast<Handle>(g_next_handle.fetch_add(16, std::memory_order_relaxed)); }
Handle primary() { return &g_primary_context; }
CUresult check_device(CUdevice d) { return d == 0 ? kSuccess : kInvalidDevice; }

CUresult alloc(CUdeviceptr* p, size_t bytes) {
  if (!p || bytes == 0) return kInvalidValue;
  if (!t_current) return kInvalidContext;
  uint64_t rounded = (bytes + 511) & ~uint64_t{511};
  *p = g_next_address.fetch_add(rounded, std::memory_order_relaxed);
  g_allocated.fetch_add(static_cast<int64_t>(rounded), std::memory_order_relaxed);
  return kSuccess;
}

CUresult mem_info(size_t* free_bytes, size_t* total) {
  if (!free_bytes || !total) return kInvalidValue;
  int64_t used = g_allocated.load(std::memory_order_relaxed);
  *total = kTotalMemory;
  *free_bytes = used > 0 && static_cast<uint64_t>(used) < kTotalMemory ? kTotalMemory - static_cast<uint64_t>(used)
                                                                         : kTotalMemory;
  return kSuccess;
}

CUresult proc_address(const char* symbol, void** pfn, int version, uint64_t flags, int* status) {
  if (!symbol || !pfn) return kInvalidValue;
  const bool per_thread = (flags & 2) != 0;  // CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
  const nulldrv::ProcRow* best = nullptr;
  bool known = false;
  for (int pass = 0; pass < 2 && !best; ++pass) {
    // The per-thread variant when asked for and it exists, else the plain one.
    int want_ptsz = per_thread && pass == 0 ? 1 : 0;
    if (!per_thread && pass == 1) break;
    for (int i = 0; i < nulldrv::kProcCount; ++i) {
      const nulldrv::ProcRow& r = nulldrv::kProcTable[i];
      if (std::strcmp(r.base, symbol) != 0 || r.ptsz != want_ptsz) continue;
      known = true;
      if (r.version <= version && (!best || r.version > best->version)) best = &r;
    }
  }
  *pfn = best ? best->fn : nullptr;
  if (status) *status = best ? 0 : known ? 2 : 1;  // SUCCESS / VERSION_NOT_SUFFICIENT / SYMBOL_NOT_FOUND
  return best ? kSuccess : kNotFound;
}

}  // namespace

#define NULL_API extern "C" __attribute__((visibility("default")))

// Initialization, version, devices.
NULL_API CUresult cuInit(unsigned) { g_initialized.store(true); return kSuccess; }
NULL_API CUresult cuDriverGetVersion(int* v) { if (!v) return kInvalidValue; *v = 12080; return kSuccess; }
NULL_API CUresult cuDeviceGetCount(int* n) {
  if (!n) return kInvalidValue;
  if (!g_initialized.load(std::memory_order_relaxed)) return kNotInitialized;
  *n = 1;
  return kSuccess;
}
NULL_API CUresult cuDeviceGet(CUdevice* d, int ordinal) {
  if (!d) return kInvalidValue;
  if (!g_initialized.load(std::memory_order_relaxed)) return kNotInitialized;
  if (ordinal != 0) return kInvalidDevice;
  *d = 0;
  return kSuccess;
}
NULL_API CUresult cuDeviceGetName(char* name, int len, CUdevice d) {
  if (!name || len <= 0) return kInvalidValue;
  std::strncpy(name, "vgpu null driver", static_cast<size_t>(len) - 1);
  name[len - 1] = '\0';
  return check_device(d);
}
NULL_API CUresult cuDeviceGetAttribute(int* v, int attribute, CUdevice d) {
  if (!v) return kInvalidValue;
  *v = attribute == 75 ? 9 : attribute == 76 ? 0 : 1;  // compute capability 9.0, else 1
  return check_device(d);
}
NULL_API CUresult cuDeviceGetUuid(unsigned char* uuid, CUdevice d) {
  if (!uuid) return kInvalidValue;
  if (!uuid_from_env(uuid)) std::memcpy(uuid, kUuid, sizeof kUuid);
  return check_device(d);
}
NULL_API CUresult cuDeviceGetUuid_v2(unsigned char* uuid, CUdevice d) { return cuDeviceGetUuid(uuid, d); }
NULL_API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) {
  if (!bytes) return kInvalidValue;
  *bytes = kTotalMemory;
  return check_device(d);
}
NULL_API CUresult cuDeviceTotalMem(unsigned* bytes, CUdevice d) {  // the 32-bit legacy ABI
  if (!bytes) return kInvalidValue;
  *bytes = 0xffffffffu;
  return check_device(d);
}

// Contexts.
NULL_API CUresult cuDevicePrimaryCtxRetain(Handle* ctx, CUdevice d) {
  if (!ctx) return kInvalidValue;
  if (CUresult r = check_device(d)) return r;
  g_primary_refs.fetch_add(1);
  *ctx = primary();
  return kSuccess;
}
NULL_API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) {
  if (CUresult r = check_device(d)) return r;
  g_primary_refs.fetch_sub(1);
  return kSuccess;
}
NULL_API CUresult cuDevicePrimaryCtxRelease(CUdevice d) { return cuDevicePrimaryCtxRelease_v2(d); }
NULL_API CUresult cuDevicePrimaryCtxReset_v2(CUdevice d) { return check_device(d); }
NULL_API CUresult cuDevicePrimaryCtxReset(CUdevice d) { return check_device(d); }
NULL_API CUresult cuDevicePrimaryCtxGetState(CUdevice d, unsigned* flags, int* active) {
  if (!flags || !active) return kInvalidValue;
  *flags = 0;
  *active = g_primary_refs.load() > 0;
  return check_device(d);
}
NULL_API CUresult cuCtxCreate_v2(Handle* ctx, unsigned, CUdevice d) {
  if (!ctx) return kInvalidValue;
  if (CUresult r = check_device(d)) return r;
  *ctx = new_handle();
  t_current = *ctx;
  return kSuccess;
}
NULL_API CUresult cuCtxCreate(Handle* ctx, unsigned flags, CUdevice d) { return cuCtxCreate_v2(ctx, flags, d); }
NULL_API CUresult cuCtxCreate_v3(Handle* ctx, void*, int, unsigned flags, CUdevice d) { return cuCtxCreate_v2(ctx, flags, d); }
NULL_API CUresult cuCtxCreate_v4(Handle* ctx, void*, unsigned flags, CUdevice d) { return cuCtxCreate_v2(ctx, flags, d); }
NULL_API CUresult cuCtxDestroy_v2(Handle ctx) {
  if (!ctx) return kInvalidValue;
  if (t_current == ctx) t_current = nullptr;
  return kSuccess;
}
NULL_API CUresult cuCtxDestroy(Handle ctx) { return cuCtxDestroy_v2(ctx); }
NULL_API CUresult cuCtxSetCurrent(Handle ctx) { t_current = ctx; return kSuccess; }
NULL_API CUresult cuCtxGetCurrent(Handle* ctx) { if (!ctx) return kInvalidValue; *ctx = t_current; return kSuccess; }
NULL_API CUresult cuCtxPushCurrent_v2(Handle ctx) { t_current = ctx; return kSuccess; }
NULL_API CUresult cuCtxPopCurrent_v2(Handle* ctx) { if (ctx) *ctx = t_current; t_current = nullptr; return kSuccess; }
NULL_API CUresult cuCtxGetDevice(CUdevice* d) {
  if (!d) return kInvalidValue;
  if (!t_current) return kInvalidContext;
  *d = 0;
  return kSuccess;
}
NULL_API CUresult cuCtxSynchronize() { return t_current ? kSuccess : kInvalidContext; }
NULL_API CUresult cuCtxGetLimit(size_t* v, int) { if (!v) return kInvalidValue; *v = 0; return kSuccess; }
NULL_API CUresult cuCtxSetLimit(int, size_t) { return kSuccess; }

// Memory.
NULL_API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) { return alloc(p, bytes); }
NULL_API CUresult cuMemFree_v2(CUdeviceptr p) {
  if (p == 0) return kSuccess;
  return t_current ? kSuccess : kInvalidContext;
}
NULL_API CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total) { return mem_info(free_bytes, total); }

// Modules, streams, events, launches.
NULL_API CUresult cuModuleLoadData(Handle* m, const void* image) {
  if (!m || !image) return kInvalidValue;
  *m = new_handle();
  return kSuccess;
}
NULL_API CUresult cuModuleLoadDataEx(Handle* m, const void* image, unsigned, void*, void**) { return cuModuleLoadData(m, image); }
NULL_API CUresult cuModuleLoad(Handle* m, const char* path) { return cuModuleLoadData(m, path); }
NULL_API CUresult cuModuleUnload(Handle m) { return m ? kSuccess : kInvalidValue; }
NULL_API CUresult cuModuleGetFunction(Handle* f, Handle m, const char* name) {
  if (!f || !m || !name) return kInvalidValue;
  *f = new_handle();
  return kSuccess;
}
NULL_API CUresult cuStreamCreate(Handle* s, unsigned) { if (!s) return kInvalidValue; *s = new_handle(); return kSuccess; }
NULL_API CUresult cuStreamCreateWithPriority(Handle* s, unsigned flags, int) { return cuStreamCreate(s, flags); }
NULL_API CUresult cuStreamDestroy_v2(Handle) { return kSuccess; }
NULL_API CUresult cuStreamDestroy(Handle) { return kSuccess; }
NULL_API CUresult cuStreamSynchronize(Handle) { return kSuccess; }
NULL_API CUresult cuStreamSynchronize_ptsz(Handle) { return kSuccess; }
NULL_API CUresult cuStreamQuery(Handle) { return kSuccess; }
NULL_API CUresult cuStreamQuery_ptsz(Handle) { return kSuccess; }
NULL_API CUresult cuStreamGetCtx(Handle, Handle* ctx) { if (!ctx) return kInvalidValue; *ctx = t_current; return kSuccess; }
NULL_API CUresult cuStreamGetDevice(Handle, CUdevice* d) { if (!d) return kInvalidValue; *d = 0; return kSuccess; }
NULL_API CUresult cuStreamGetDevice_ptsz(Handle s, CUdevice* d) { return cuStreamGetDevice(s, d); }
NULL_API CUresult cuStreamIsCapturing(Handle, int* status) { if (!status) return kInvalidValue; *status = 0; return kSuccess; }
NULL_API CUresult cuStreamIsCapturing_ptsz(Handle s, int* status) { return cuStreamIsCapturing(s, status); }
NULL_API CUresult cuThreadExchangeStreamCaptureMode(int* mode) { return mode ? kSuccess : kInvalidValue; }
NULL_API CUresult cuEventCreate(Handle* e, unsigned) { if (!e) return kInvalidValue; *e = new_handle(); return kSuccess; }
NULL_API CUresult cuEventDestroy_v2(Handle) { return kSuccess; }
NULL_API CUresult cuEventDestroy(Handle) { return kSuccess; }
NULL_API CUresult cuEventRecord(Handle e, Handle) { return e ? kSuccess : kInvalidValue; }
NULL_API CUresult cuEventRecord_ptsz(Handle e, Handle) { return e ? kSuccess : kInvalidValue; }
NULL_API CUresult cuEventQuery(Handle) { return kSuccess; }
NULL_API CUresult cuEventSynchronize(Handle) { return kSuccess; }
NULL_API CUresult cuEventElapsedTime(float* ms, Handle, Handle) { if (!ms) return kInvalidValue; *ms = 0; return kSuccess; }
NULL_API CUresult cuLaunchKernel(Handle f, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, Handle,
                                 void**, void**) {
  return f ? kSuccess : kInvalidValue;
}
NULL_API CUresult cuLaunchKernel_ptsz(Handle f, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                      Handle, void**, void**) {
  return f ? kSuccess : kInvalidValue;
}

// Entry-point lookup and error strings.
NULL_API CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int version, uint64_t flags, int* status) {
  return proc_address(symbol, pfn, version, flags, status);
}
NULL_API CUresult cuGetProcAddress(const char* symbol, void** pfn, int version, uint64_t flags) {
  return proc_address(symbol, pfn, version, flags, nullptr);
}
NULL_API CUresult cuGetErrorString(CUresult, const char** s) { if (!s) return kInvalidValue; *s = "null driver"; return kSuccess; }
NULL_API CUresult cuGetErrorName(CUresult, const char** s) { if (!s) return kInvalidValue; *s = "CUDA_NULL_DRIVER"; return kSuccess; }
NULL_API CUresult cuGetExportTable(const void** table, const void*) { if (table) *table = nullptr; return kNotFound; }
