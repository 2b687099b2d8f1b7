// What a container of a Kubernetes allocation sees, for the podman end-to-end
// test (tests/integration/k8s_podman_test.cc). Runs inside the container under
// the preloaded shim, against simgpu. Prints, flushing each line:
//   count=<cuDeviceGetCount> uuid=<GPU-... of ordinal 0> total=<cuMemGetInfo
//   total> free=<free>
//   within=<CUresult of cuMemAlloc(WITHIN)>
//   over=<CUresult of a further cuMemAlloc(OVER)>
//   ready
// then keeps the WITHIN allocation (so vgpud lists the process with its
// memory) until the file RELEASE exists or TIMEOUT_MS passes.
// Exit status: 0 released, 4 timed out waiting, 1 setup failed, 2 usage.
// Usage: k8s_container_probe WITHIN OVER RELEASE TIMEOUT_MS
#include <cuda.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

// The NVML form of a device UUID (what the plugin's device IDs carry).
void print_uuid(const CUuuid& u, char* out, size_t n) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  std::snprintf(out, n, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: k8s_container_probe WITHIN OVER RELEASE TIMEOUT_MS\n");
    return 2;
  }
  size_t within = std::strtoull(argv[1], nullptr, 10);
  size_t over = std::strtoull(argv[2], nullptr, 10);
  const char* release = argv[3];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::strtoull(argv[4], nullptr, 10));

  CUcontext ctx;
  CUdevice dev;
  int count = 0;
  CUuuid uuid{};
  if (cuInit(0) != CUDA_SUCCESS || cuDeviceGetCount(&count) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
      cuDeviceGetUuid(&uuid, dev) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
    std::fprintf(stderr, "k8s_container_probe: no device or context\n");
    return 1;
  }
  size_t free_b = 0, total_b = 0;
  if (cuMemGetInfo(&free_b, &total_b) != CUDA_SUCCESS) {
    std::fprintf(stderr, "k8s_container_probe: cuMemGetInfo failed\n");
    return 1;
  }
  char id[64];
  print_uuid(uuid, id, sizeof id);
  std::printf("count=%d uuid=%s total=%zu free=%zu\n", count, id, total_b, free_b);
  std::fflush(stdout);

  CUdeviceptr held = 0, extra = 0;
  CUresult r1 = cuMemAlloc(&held, within);
  std::printf("within=%d\n", static_cast<int>(r1));
  std::fflush(stdout);
  CUresult r2 = cuMemAlloc(&extra, over);
  std::printf("over=%d\n", static_cast<int>(r2));
  if (r2 == CUDA_SUCCESS) cuMemFree(extra);
  std::printf("ready\n");
  std::fflush(stdout);

  while (access(release, F_OK) != 0) {
    if (std::chrono::steady_clock::now() >= deadline) return 4;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (r1 == CUDA_SUCCESS) cuMemFree(held);
  return 0;
}
