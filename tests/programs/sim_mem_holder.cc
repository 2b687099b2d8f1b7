// A CUDA program that takes device memory and keeps it until killed, for the
// cross-process capacity and IPC tests. Usage:
//   sim_mem_holder hold BYTES      allocate BYTES (0: none, the context alone), print
//                                  "ready free=<bytes>", wait
//   sim_mem_holder export BYTES    allocate, print "handle=<128 hex digits>", wait
//   sim_mem_holder open HEX        open an IPC handle, print
//                                  "open rc=<rc> before=<free> after=<free>", wait
// Each line is flushed; the program then sleeps until it is killed.
#include <cuda.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace {

size_t free_now() {
  size_t f = 0, t = 0;
  cuMemGetInfo(&f, &t);
  return f;
}

[[noreturn]] void wait_forever() {
  std::fflush(stdout);
  for (;;) pause();
}

int export_handle(size_t bytes) {
  CUdeviceptr p = 0;
  CUipcMemHandle h;
  if (cuMemAlloc(&p, bytes) != CUDA_SUCCESS || cuIpcGetMemHandle(&h, p) != CUDA_SUCCESS) return 1;
  std::printf("handle=");
  for (unsigned char c : h.reserved) std::printf("%02x", c);
  std::printf("\n");
  wait_forever();
}

int open_handle(const char* hex) {
  CUipcMemHandle h{};
  if (std::strlen(hex) != 2 * sizeof h.reserved) return 2;
  for (size_t i = 0; i < sizeof h.reserved; ++i) {
    unsigned v = 0;
    std::sscanf(hex + 2 * i, "%2x", &v);
    h.reserved[i] = static_cast<char>(v);
  }
  size_t before = free_now();
  CUdeviceptr p = 0;
  CUresult rc = cuIpcOpenMemHandle(&p, h, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS);
  std::printf("open rc=%d before=%zu after=%zu\n", static_cast<int>(rc), before, free_now());
  wait_forever();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: sim_mem_holder hold|export BYTES | open HEX\n");
    return 2;
  }
  CUcontext ctx = nullptr;
  if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
    std::fprintf(stderr, "no CUDA context\n");
    return 1;
  }
  std::string_view mode = argv[1];
  if (mode == "open") return open_handle(argv[2]);
  size_t bytes = std::strtoull(argv[2], nullptr, 10);
  if (mode == "export") return export_handle(bytes);
  CUdeviceptr p = 0;
  if (bytes > 0 && cuMemAlloc(&p, bytes) != CUDA_SUCCESS) {  // 0: the context alone
    std::printf("alloc failed\n");
    return 1;
  }
  std::printf("ready free=%zu\n", free_now());
  wait_forever();
}
