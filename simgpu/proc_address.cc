// cuGetProcAddress / cuGetProcAddress_v2: lookup by base name + CUDA version +
// flags, answering as NVIDIA's real driver does (observed on 535.261.03, a
// 12.2 driver; docs/simgpu.md "Real-driver behaviours modelled"), which
// departs from cuda.h in four places:
//  - A version above the driver's own is not CUDA_ERROR_INVALID_VALUE: the
//    driver answers with the newest version it has. A negative version reads
//    as a huge unsigned one (newest too).
//  - The driver only knows entry points up to its own version: a function
//    introduced later (cuCtxCreate_v4 in 12.5 on a 12.2 driver) does not
//    exist for the lookup — an unknown name (SYMBOL_NOT_FOUND), or the newest
//    older version of the same base name (cuCtxCreate -> cuCtxCreate_v3).
//  - flags = LEGACY|PER_THREAD (3) is accepted and searches as PER_THREAD;
//    only other bits are CUDA_ERROR_INVALID_VALUE (pfn and status untouched).
//  - With PER_THREAD, a function that has per-thread variants answers only
//    with one of them: below the first per-thread version (7.0) the answer is
//    VERSION_NOT_SUFFICIENT, not the legacy function cuda.h promises.
// Not found / not sufficient: _v2 gives CUDA_SUCCESS, *pfn = NULL and the
// status; the legacy cuGetProcAddress (no status) gives CUDA_ERROR_NOT_FOUND
// and leaves *pfn as it was. A null symbol or pfn is CUDA_ERROR_INVALID_VALUE
// here (the real driver dereferences it and crashes).
//
// cuda.h is not included: the table takes the address of every exported name
// with a neutral declaration. Thread-safe: the table is built once, read-only.
#include <cstdint>
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

constexpr int kSuccess = 0, kInvalidValue = 1, kNotFoundError = 500;  // CUDA_ERROR_NOT_FOUND
constexpr uint64_t kLegacy = 1, kPerThread = 2;
constexpr int kFound = 0, kNotFound = 1, kVersionNotSufficient = 2;

struct Entry {
  unsigned version;
  bool per_thread;
  void* address;
};

using Table = std::unordered_map<std::string_view, std::vector<Entry>>;

const Table& table() {
  static const Table t = [] {
    Table m;
#define VGPU_DRIVER_API(sym, base, version, suffix) \
  m[#base].push_back({version, sizeof(#suffix) > 1, reinterpret_cast<void*>(&sym)});
#include "driver_api.inc"
#undef VGPU_DRIVER_API
    return m;
  }();
  return t;
}

// The newest entry of `entries` not above `version` among those the driver
// knows (not above `driver`), of the kind asked for: per-thread variants only
// when the base has any and the caller asked for them. nullptr with *status
// set when there is none.
const Entry* choose(const std::vector<Entry>& entries, unsigned version, unsigned driver, bool per_thread,
                    int* status) {
  bool known = false, has_per_thread = false;
  for (const Entry& e : entries)
    if (e.version <= driver) {
      known = true;
      has_per_thread |= e.per_thread;
    }
  if (!known) {
    *status = kNotFound;
    return nullptr;
  }
  const bool want_per_thread = per_thread && has_per_thread;
  const Entry* best = nullptr;
  for (const Entry& e : entries)
    if (e.per_thread == want_per_thread && e.version <= version && e.version <= driver &&
        (!best || e.version > best->version))
      best = &e;
  *status = best ? kFound : kVersionNotSufficient;
  return best;
}

}  // namespace

namespace simgpu {

int proc_address_lookup(const char* symbol, void** pfn, int version, uint64_t flags, int* status_out, bool legacy) {
  if (!symbol || !pfn || (flags & ~(kLegacy | kPerThread)) != 0) return kInvalidValue;
  int status = kNotFound;
  const Entry* e = nullptr;
  auto it = table().find(symbol);
  if (it != table().end()) {
    // The real driver compares versions unsigned: -1 asks for the newest.
    e = choose(it->second, static_cast<unsigned>(version), static_cast<unsigned>(driver_version_for_lookup()),
               (flags & kPerThread) != 0, &status);
  }
  if (legacy) {
    if (!e) return kNotFoundError;
    *pfn = e->address;
    return kSuccess;
  }
  *pfn = e ? e->address : nullptr;
  if (status_out) *status_out = status;
  return kSuccess;
}

}  // namespace simgpu
