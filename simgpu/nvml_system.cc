// System queries: the driver version string and the CUDA driver version.
// Both follow SIMGPU_DRIVER_VERSION, so a test can simulate an older driver
// for NVML and the CUDA driver API alike.
#include <cuda.h>

#include <cstdio>

#include "config.h"
#include "nvml_core.h"

using namespace simgpu;

namespace {

// The CUDA version the simulated driver reports; the toolkit's when
// SIMGPU_* is malformed (nvmlSystemGetCudaDriverVersion documents a "known
// supported version" when the CUDA library cannot be used).
int cuda_version() {
  auto config = load_config_from_env();
  return config ? config->driver_version : CUDA_VERSION;
}

// The first Linux driver release of each CUDA version, so that tools parsing
// "major.minor.patch" see a plausible pairing.
const char* driver_release(int cuda) {
  struct Release {
    int cuda;
    const char* driver;
  };
  static const Release kReleases[] = {
      {11080, "520.61.05"}, {12000, "525.60.13"}, {12010, "530.30.02"}, {12020, "535.54.03"},
      {12030, "545.23.06"}, {12040, "550.54.14"}, {12050, "555.42.02"}, {12060, "560.28.03"},
      {12080, "570.86.10"}, {12090, "575.51.03"}, {13000, "580.65.06"}};
  const char* best = "515.43.04";  // CUDA 11.7 and older
  for (const auto& r : kReleases)
    if (cuda >= r.cuda) best = r.driver;
  return best;
}

nvmlReturn_t get_cuda_version(int* out) {
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  *out = cuda_version();
  return NVML_SUCCESS;
}

}  // namespace

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  nvml::Session s;
  if (nvmlReturn_t r = s.status()) return r;
  return nvml::copy_string(driver_release(cuda_version()), version, length);
}

// Documented to work without nvmlInit.
SIMGPU_NVML_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* cudaDriverVersion) {
  return get_cuda_version(cudaDriverVersion);
}
SIMGPU_NVML_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* cudaDriverVersion) {
  return get_cuda_version(cudaDriverVersion);
}
