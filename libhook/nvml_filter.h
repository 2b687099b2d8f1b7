// Filtering of NVML's per-process answers down to the pids a process may see
// (api_nvml_processes.cc decides which), keeping NVML's size protocols exact:
// every count the caller sees — the number written, the number needed after
// INSUFFICIENT_SIZE — is a count of the FILTERED list, and the caller's buffer
// never holds, even transiently, an entry of a pid it may not see (the real
// call always writes into a private buffer).
//
// Running-process lists (Compute/Graphics/MPS, v1/v2/v3): *infoCount is the
// capacity in; INSUFFICIENT_SIZE with the number needed when they do not fit;
// *infoCount == 0 with infos == NULL asks (SUCCESS when none); *infoCount > 0
// with infos == NULL is INVALID_ARGUMENT. Utilization samples: NOT_FOUND (count
// 0) when no sample is left; a NULL array or one too small is INSUFFICIENT_SIZE
// with the number available. Errors of the real call (uninitialised, bad
// device, ...) pass through unchanged and come first, as the driver's do.
//
// Header-only templates so the unit tests drive them with fake drivers.
// Thread-safety: stateless; safe from any thread.
#pragma once

#include <cstring>
#include <vector>

#include "vgpu/nvml_subset.h"

namespace vgpu::hook {

// How often a list that grew between the size query and the read is re-read
// before giving up with NVML_ERROR_UNKNOWN, and the most entries accepted from
// the driver (a bound on what one answer may make the hook allocate).
constexpr int kNvmlListAttempts = 8;
constexpr unsigned kNvmlMaxEntries = 1u << 16;

// Reads the whole unfiltered answer of `read(count*, array*)` into `out`
// following the size protocol. Returns the driver's final result: SUCCESS,
// NOT_FOUND (samples), or an error to pass through.
template <class Entry, class Read>
nvmlReturn_t nvml_read_all(Read read, std::vector<Entry>* out) {
  out->clear();
  for (int attempt = 0; attempt < kNvmlListAttempts; ++attempt) {
    unsigned n = static_cast<unsigned>(out->size());
    nvmlReturn_t r = read(&n, out->empty() ? nullptr : out->data());
    if (r == NVML_SUCCESS) {
      if (n > out->size()) return NVML_ERROR_UNKNOWN;  // a driver that wrote past our capacity
      out->resize(n);
      return r;
    }
    if (r != NVML_ERROR_INSUFFICIENT_SIZE) return r;
    if (n > kNvmlMaxEntries || n < out->size()) return NVML_ERROR_UNKNOWN;
    out->assign(n + 4 + n / 4, Entry{});  // headroom: processes may start meanwhile
  }
  return NVML_ERROR_UNKNOWN;
}

// Removes the entries whose pid `keep` rejects; `pid_of(entry)` reads the pid.
template <class Entry, class PidOf, class Keep>
void nvml_keep(std::vector<Entry>* v, PidOf pid_of, Keep keep) {
  size_t w = 0;
  for (size_t i = 0; i < v->size(); ++i)
    if (keep(pid_of((*v)[i]))) (*v)[w++] = (*v)[i];
  v->resize(w);
}

// A running-process list: `real(device, count*, array*)` is the driver's entry
// point, `keep(pid)` the filter.
template <class Info, class Real, class Keep>
nvmlReturn_t nvml_filtered_processes(Real real, nvmlDevice_t device, unsigned* infoCount, Info* infos, Keep keep) {
  std::vector<Info> all;
  nvmlReturn_t r = nvml_read_all<Info>([&](unsigned* n, Info* a) { return real(device, n, a); }, &all);
  if (r != NVML_SUCCESS) return r;
  if (!infoCount || (*infoCount > 0 && !infos)) return NVML_ERROR_INVALID_ARGUMENT;
  nvml_keep(&all, [](const Info& i) { return i.pid; }, keep);
  if (all.size() > *infoCount) {
    *infoCount = static_cast<unsigned>(all.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  if (!all.empty()) std::memcpy(infos, all.data(), all.size() * sizeof(Info));
  *infoCount = static_cast<unsigned>(all.size());
  return NVML_SUCCESS;
}

// Utilization samples: `read(count*, array*)` reads the driver's samples for
// the caller's device and lastSeenTimeStamp; `count` is the caller's.
template <class Sample, class Read, class Keep>
nvmlReturn_t nvml_filtered_samples(Read read, Sample* samples, unsigned* count, Keep keep) {
  std::vector<Sample> all;
  nvmlReturn_t r = nvml_read_all<Sample>(read, &all);
  if (r != NVML_SUCCESS && r != NVML_ERROR_NOT_FOUND) return r;
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  nvml_keep(&all, [](const Sample& s) { return s.pid; }, keep);
  if (all.empty()) {
    *count = 0;
    return NVML_ERROR_NOT_FOUND;
  }
  if (!samples || *count < all.size()) {
    *count = static_cast<unsigned>(all.size());
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  std::memcpy(samples, all.data(), all.size() * sizeof(Sample));
  *count = static_cast<unsigned>(all.size());
  return NVML_SUCCESS;
}

}  // namespace vgpu::hook
