// fork() under the hook: the child starts with no charges of its parent and
// uses CUDA afresh; the parent's charges are untouched by the child. Prints
// "ok" or the first step that went wrong (the child's lines are prefixed
// "child:").
//
// Usage: hook_fork_probe UNIT_BYTES   (the test sets the quota to 4 units)
// Parent: cuInit, allocate 3 units (3 charged), fork. Child: cuInit, primary
// context, sees 0 charged, allocates 4 units (exactly the quota), one more is
// OUT_OF_MEMORY; exits 0. Parent, after the child exited: still 3 charged, one
// unit reaches the quota, one more is OUT_OF_MEMORY.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

size_t g_unit = 0;
const char* g_who = "";

bool expect(const std::string& step, CUresult got, CUresult want) {
  if (got == want) return true;
  std::printf("%sFAIL %s: got %d, want %d\n", g_who, step.c_str(), static_cast<int>(got), static_cast<int>(want));
  return false;
}

// The charge the hook reports through its virtualized cuMemGetInfo, in units.
bool expect_used(const std::string& step, long long units) {
  size_t free_b = 0, total_b = 0;
  if (!expect(step + " (cuMemGetInfo)", cuMemGetInfo_v2(&free_b, &total_b), CUDA_SUCCESS)) return false;
  long long got = static_cast<long long>((total_b - free_b) / g_unit);
  if (got == units) return true;
  std::printf("%sFAIL %s: %lld units charged, want %lld\n", g_who, step.c_str(), got, units);
  return false;
}

bool start_cuda() {
  CUcontext ctx;
  return expect("cuInit", cuInit(0), CUDA_SUCCESS) &&
         expect("primary context", cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS) &&
         expect("set current", cuCtxSetCurrent(ctx), CUDA_SUCCESS);
}

int child_main() {
  g_who = "child: ";
  CUdeviceptr p, q;
  bool ok = start_cuda() && expect_used("fresh child", 0) &&
            expect("alloc the whole quota", cuMemAlloc_v2(&p, 4 * g_unit), CUDA_SUCCESS) &&
            expect_used("child at quota", 4) &&
            expect("one unit over", cuMemAlloc_v2(&q, g_unit), CUDA_ERROR_OUT_OF_MEMORY) &&
            expect("free", cuMemFree_v2(p), CUDA_SUCCESS);
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: hook_fork_probe UNIT_BYTES\n");
    return 2;
  }
  g_unit = std::strtoull(argv[1], nullptr, 10);
  CUdeviceptr held, last, over;
  if (!start_cuda() || !expect("alloc 3 units", cuMemAlloc_v2(&held, 3 * g_unit), CUDA_SUCCESS) ||
      !expect_used("parent before fork", 3))
    return 1;
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) _exit(child_main());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::printf("FAIL child status %d\n", status);
    return 1;
  }
  bool ok = expect_used("parent after the child", 3) &&
            expect("parent to the exact quota", cuMemAlloc_v2(&last, g_unit), CUDA_SUCCESS) &&
            expect("parent one unit over", cuMemAlloc_v2(&over, g_unit), CUDA_ERROR_OUT_OF_MEMORY) &&
            expect("free", cuMemFree_v2(held), CUDA_SUCCESS) && expect("free", cuMemFree_v2(last), CUDA_SUCCESS) &&
            expect_used("parent freed", 0);
  if (ok) std::printf("ok\n");
  return ok ? 0 : 1;
}
