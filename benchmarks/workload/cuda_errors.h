// Naming and collecting CUDA errors for the workload's summary. Every failed
// driver call is reported by the name cuGetErrorName gives it, so the output
// reads the same on simgpu and on a real driver. Not thread-safe: the workload
// drives the GPU from one thread.
#pragma once

#include <cuda.h>

#include <string>
#include <vector>

namespace vgpu::workload {

// "CUDA_ERROR_OUT_OF_MEMORY", or "CUresult(<n>)" for a code the driver does not name.
std::string error_name(CUresult r);

struct CallError {
  std::string call;   // the driver function, e.g. "cuLaunchKernel"
  std::string error;  // error_name() of its result
};

// Unexpected failures of driver calls. Keeps the first kMaxKept in detail and
// counts the rest, so a failing loop cannot flood the summary.
class ErrorLog {
 public:
  static constexpr size_t kMaxKept = 32;
  // Returns true if `r` is CUDA_SUCCESS; otherwise records it and returns false.
  bool check(const char* call, CUresult r);
  bool empty() const { return total_ == 0; }
  size_t total() const { return total_; }
  const std::vector<CallError>& kept() const { return kept_; }

 private:
  std::vector<CallError> kept_;
  size_t total_ = 0;
};

}  // namespace vgpu::workload
