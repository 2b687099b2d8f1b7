// cuGetProcAddress / cuGetProcAddress_v2, as documented in cuda.h: lookup by
// base name + CUDA version + flags. For a base name the newest plain version
// not above `cudaVersion` is chosen; with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
// its per-thread (_ptsz/_ptds) variant is returned when one exists for that
// version. Unknown names and versions older than the symbol give CUDA_SUCCESS
// with a NULL pointer and the matching CUdriverProcAddressQueryResult.
//
// cuda.h is not included: the table takes the address of every exported name
// with a neutral declaration.
#include <cstdint>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#define VGPU_DRIVER_API(sym, base, version, suffix) extern "C" int sym();
#include "driver_api.inc"
#undef VGPU_DRIVER_API

namespace simgpu {
int driver_version_for_lookup();  // api_device.cc: cuDriverGetVersion's value
}

namespace {

constexpr int kSuccess = 0, kInvalidValue = 1;
constexpr uint64_t kLegacy = 1, kPerThread = 2;
constexpr int kFound = 0, kNotFound = 1, kVersionNotSufficient = 2;

struct Entry {
  int version;
  bool per_thread;
  const char* symbol;
  void* address;
};

using Table = std::unordered_map<std::string_view, std::vector<Entry>>;

const Table& table() {
  static const Table t = [] {
    Table m;
#define VGPU_DRIVER_API(sym, base, version, suffix)                                          \
  m[#base].push_back({version, sizeof(#suffix) > 1, #sym, reinterpret_cast<void*>(&sym)});
#include "driver_api.inc"
#undef VGPU_DRIVER_API
    return m;
  }();
  return t;
}

// Chooses the entry for (base, version, flags); returns nullptr and sets
// *status when there is none.
const Entry* choose(const std::vector<Entry>& entries, int version, bool per_thread, int* status) {
  const Entry* plain = nullptr;
  for (const Entry& e : entries)
    if (!e.per_thread && e.version <= version && (!plain || e.version > plain->version)) plain = &e;
  if (!plain) {
    *status = kVersionNotSufficient;
    return nullptr;
  }
  *status = kFound;
  if (!per_thread) return plain;
  // The per-thread variant of exactly this ABI: its symbol is plain's + suffix.
  size_t n = std::strlen(plain->symbol);
  for (const Entry& e : entries)
    if (e.per_thread && e.version <= version && std::strncmp(e.symbol, plain->symbol, n) == 0 &&
        std::strlen(e.symbol) == n + 5)
      return &e;
  return plain;
}

int lookup(const char* symbol, void** pfn, int version, uint64_t flags, int* status_out) {
  int status = kNotFound;
  if (!symbol || !pfn || (flags & ~(kLegacy | kPerThread)) != 0 || flags == (kLegacy | kPerThread))
    return kInvalidValue;
  *pfn = nullptr;
  if (version > simgpu::driver_version_for_lookup()) return kInvalidValue;
  const Entry* e = nullptr;
  auto it = table().find(symbol);
  if (it != table().end()) e = choose(it->second, version, (flags & kPerThread) != 0, &status);
  if (e) *pfn = e->address;
  if (status_out) *status_out = status;
  return kSuccess;
}

}  // namespace

namespace simgpu {
int proc_address_lookup(const char* symbol, void** pfn, int version, uint64_t flags, int* status) {
  return lookup(symbol, pfn, version, flags, status);
}
}  // namespace simgpu
