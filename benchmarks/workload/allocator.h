// Takes device memory through one driver API and records every outcome, so a
// test or benchmark can see exactly which allocations a quota allowed.
// Requires a current context. Not thread-safe.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cuda_errors.h"
#include "options.h"

namespace vgpu::workload {

struct AllocationReport {
  std::string api;
  uint64_t size = 0;     // bytes per allocation, as requested
  int requested = 0;
  int ok = 0;
  int failed = 0;
  uint64_t peak_bytes = 0;                // most bytes held at once
  std::map<std::string, int> errors;      // error_name -> count of failed allocations
};

class Allocator {
 public:
  // `stream` is used by the stream-ordered APIs (async, pool). Failures of
  // frees and clean-up calls go to `log`; failed allocations go to the report.
  Allocator(AllocApi api, CUdevice device, CUstream stream, ErrorLog* log);
  ~Allocator();  // releases whatever is still held
  Allocator(const Allocator&) = delete;
  Allocator& operator=(const Allocator&) = delete;

  // Makes `count` allocations of `size` bytes. With `hold` they stay until
  // release_all(); otherwise each is freed as soon as it succeeded.
  void run(uint64_t size, int count, bool hold);
  void release_all();
  const AllocationReport& report() const { return report_; }

 private:
  struct Block {
    CUdeviceptr ptr = 0;
    size_t bytes = 0;
    CUmemGenericAllocationHandle handle = 0;  // vmm
    CUarray array = nullptr;                  // array
  };
  CUresult allocate(uint64_t size, Block* b);
  CUresult allocate_vmm(uint64_t size, Block* b);
  CUresult allocate_array(uint64_t size, Block* b);
  CUresult allocate_pool(uint64_t size, Block* b);
  void release(Block& b);

  AllocApi api_;
  CUdevice device_;
  CUstream stream_;
  ErrorLog* log_;
  CUmemoryPool pool_ = nullptr;
  std::vector<Block> held_;
  uint64_t held_bytes_ = 0;
  AllocationReport report_;
};

}  // namespace vgpu::workload
