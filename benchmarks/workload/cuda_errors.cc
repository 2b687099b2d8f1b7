#include "cuda_errors.h"

namespace vgpu::workload {

std::string error_name(CUresult r) {
  const char* name = nullptr;
  if (cuGetErrorName(r, &name) == CUDA_SUCCESS && name != nullptr) return name;
  return "CUresult(" + std::to_string(static_cast<int>(r)) + ")";
}

bool ErrorLog::check(const char* call, CUresult r) {
  if (r == CUDA_SUCCESS) return true;
  ++total_;
  if (kept_.size() < kMaxKept) kept_.push_back({call, error_name(r)});
  return false;
}

}  // namespace vgpu::workload
