// Legacy CUDA IPC for memory: cuIpcGetMemHandle / cuIpcOpenMemHandle_v2 /
// cuIpcCloseMemHandle.
//
// A handle names an export in the node's shared table (NodeState::ipc): the
// exporter's pid and start time, the export serial, device, base and size. An
// importer in another process of the node checks that the export is still
// live (exporter alive, memory not freed) and maps a new range of the same
// size that is NOT charged again: the exporter pays for the memory.
// Simplifications: the bytes are not shared between processes (each process
// has its own private address space), and the exporter's free releases the
// memory even while importers still have it open.
#include <pthread.h>
#include <unistd.h>

#include <cstring>
#include <unordered_map>

#include "memory.h"

using namespace simgpu;

namespace {

constexpr uint32_t kIpcMagic = 0x53494d49;  // "SIMI"

struct IpcWire {
  uint32_t magic;
  int32_t pid;
  uint64_t start_time;
  uint64_t serial;
  uint64_t base;
  uint64_t size;
  int32_t device;
  uint32_t index;  // entry in NodeState::ipc
};
static_assert(sizeof(IpcWire) <= sizeof(CUipcMemHandle), "IPC handle too small");

struct Import {
  CUdeviceptr ptr = 0;
  unsigned refs = 0;
};

std::mutex g_mu;
std::unordered_map<CUdeviceptr, IpcWire> g_exports;  // exported base -> handle
std::unordered_map<uint64_t, Import> g_imports;      // serial -> local mapping
std::unordered_map<CUdeviceptr, uint64_t> g_import_serial;  // local mapping -> serial

bool entry_matches(const IpcExport& e, const IpcWire& w) {
  return e.pid == w.pid && e.serial == w.serial && e.start_time == w.start_time && e.base == w.base;
}

// Publishes an export in the node table. Caller holds g_mu.
CUresult publish(const Allocation& a, IpcWire* out) {
  Node& node = Driver::get().node();
  NodeState* s = node.state();
  node.lock();
  const int me = node.slot();
  if (me < 0) {  // exit() detached this process meanwhile: the driver is shutting down
    node.unlock();
    return CUDA_ERROR_DEINITIALIZED;
  }
  int index = -1;
  for (int i = 0; i < kMaxIpcExports && index < 0; ++i) {
    IpcExport& e = s->ipc[i];
    if (e.pid == 0 || !process_alive(e.pid, e.start_time)) index = i;
  }
  if (index >= 0) {
    IpcExport& e = s->ipc[index];
    e.pid = getpid();
    e.start_time = s->procs[me].start_time;
    e.serial = ++s->ipc_next_serial;
    e.base = a.base;
    e.size = a.size;
    e.device = a.device;
    *out = IpcWire{kIpcMagic, e.pid, e.start_time, e.serial, e.base, e.size, e.device,
                   static_cast<uint32_t>(index)};
  }
  node.unlock();
  return index >= 0 ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

// True if the export named by `w` is still live on the node.
bool export_live(const IpcWire& w) {
  Node& node = Driver::get().node();
  node.lock();
  const IpcExport& e = node.state()->ipc[w.index];
  bool live = entry_matches(e, w);
  node.unlock();
  return live && process_alive(w.pid, w.start_time);
}

// Drops one reference to a local import. Caller holds g_mu.
void close_locked(CUdeviceptr ptr) {
  auto it = g_import_serial.find(ptr);
  if (it == g_import_serial.end()) return;
  Import& imp = g_imports[it->second];
  if (--imp.refs > 0) return;
  g_imports.erase(it->second);
  g_import_serial.erase(it);
  if (auto a = unregister_allocation(ptr)) give_back_address(a->device, a->base, a->extent);
}

void reset_after_fork() {
  new (&g_mu) std::mutex();
  g_exports.clear();
  g_imports.clear();
  g_import_serial.clear();
}

const bool g_hooks_installed = [] {
  pthread_atfork(nullptr, nullptr, reset_after_fork);
  return true;
}();

}  // namespace

namespace simgpu {

void ipc_forget_export(CUdeviceptr base) {
  std::lock_guard<std::mutex> g(g_mu);
  auto it = g_exports.find(base);
  if (it == g_exports.end()) return;
  Node& node = Driver::get().node();
  node.lock();
  IpcExport& e = node.state()->ipc[it->second.index];
  if (entry_matches(e, it->second)) e.pid = 0;
  node.unlock();
  g_exports.erase(it);
}

void ipc_close_imports_of(Context* ctx) {
  std::lock_guard<std::mutex> g(g_mu);
  for (const Allocation& a : allocations_of(ctx))
    if (a.kind == MemKind::kIpcImport) {
      auto it = g_import_serial.find(a.base);
      if (it != g_import_serial.end()) g_imports[it->second].refs = 1;
      close_locked(a.base);
    }
}

}  // namespace simgpu

SIMGPU_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle* pHandle, CUdeviceptr dptr) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!pHandle) return CUDA_ERROR_INVALID_VALUE;
  auto a = find_allocation(dptr);
  if (!a || (a->kind != MemKind::kDevice && a->kind != MemKind::kPitched)) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_mu);
  auto it = g_exports.find(dptr);
  IpcWire w{};
  if (it != g_exports.end()) {
    w = it->second;  // the same allocation always yields the same handle
  } else {
    if (CUresult r = publish(*a, &w)) return r;
    g_exports[dptr] = w;
  }
  std::memset(pHandle, 0, sizeof *pHandle);
  std::memcpy(pHandle->reserved, &w, sizeof w);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr* pdptr, CUipcMemHandle handle, unsigned int Flags) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  if (!pdptr || (Flags & ~static_cast<unsigned>(CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS))) return CUDA_ERROR_INVALID_VALUE;
  IpcWire w;
  std::memcpy(&w, handle.reserved, sizeof w);
  if (w.magic != kIpcMagic || w.index >= kMaxIpcExports || w.device < 0 ||
      w.device >= Driver::get().node().state()->device_count)
    return CUDA_ERROR_INVALID_VALUE;
  if (w.pid == getpid()) return CUDA_ERROR_INVALID_CONTEXT;  // as the real driver answers
  if (!export_live(w)) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> g(g_mu);
  Import& imp = g_imports[w.serial];
  if (imp.refs == 0) {
    CUdeviceptr p = 0;
    if (CUresult r = take_address(w.device, w.size, kPageSize, &p)) {
      g_imports.erase(w.serial);
      return r;
    }
    Allocation a;
    a.base = p;
    a.size = w.size;
    a.extent = w.size;
    a.device = w.device;
    a.ctx = c;
    a.kind = MemKind::kIpcImport;
    register_allocation(a);
    imp.ptr = p;
    g_import_serial[p] = w.serial;
  }
  ++imp.refs;
  *pdptr = imp.ptr;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  std::lock_guard<std::mutex> g(g_mu);
  if (!g_import_serial.count(dptr)) return CUDA_ERROR_INVALID_VALUE;
  close_locked(dptr);
  return CUDA_SUCCESS;
}
SIMGPU_EXPORT CUresult cuIpcOpenMemHandle(CUdeviceptr* pdptr, CUipcMemHandle handle, unsigned int Flags) {
  return cuIpcOpenMemHandle_v2(pdptr, handle, Flags);
}
