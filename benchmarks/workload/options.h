// Command-line options of vgpu-workload and their parser. Pure functions;
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vgpu/result.h"

namespace vgpu::workload {

// How the workload takes device memory; each value exercises one driver path
// that a quota must account for.
enum class AllocApi { kAlloc, kPitch, kManaged, kAsync, kPool, kVmm, kArray, kNone };

const char* alloc_api_name(AllocApi api);

struct Options {
  int device = 0;
  AllocApi alloc_api = AllocApi::kAlloc;
  uint64_t alloc_size = 0;       // bytes per allocation; 0 = allocate nothing
  int alloc_count = 1;
  uint64_t kernel_ns = 1'000'000;
  int streams = 1;
  int depth = 4;                 // kernels in flight per stream (event mode)
  int sync_every = 0;            // > 0: cuStreamSynchronize after every N launches on a stream, no events
  double rate = 0;               // kernels per second over all streams; 0 = saturate
  double duration_s = 5;         // used when count == 0
  uint64_t count = 0;            // kernels to run; 0 = run for duration_s
  bool hold = false;             // keep allocations until the kernels are done
  bool json = false;
  std::string label = "workload";
  bool help = false;
};

// Parses argv[1..]. On failure the error names the offending option and value.
Result<Options> parse_options(const std::vector<std::string>& args);

// The usage text printed by --help and after a bad argument.
std::string usage();

}  // namespace vgpu::workload
