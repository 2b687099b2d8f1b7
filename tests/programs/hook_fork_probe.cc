// fork() under the hook, in the ways that are valid on NVIDIA's real driver,
// which refuses CUDA in a child forked after its parent initialised CUDA
// (cuInit and every later call: CUDA_ERROR_NOT_INITIALIZED; simgpu models it,
// docs/simgpu.md). Prints "ok" or the first step that went wrong (the child's
// lines are prefixed "child:").
//
// Usage: hook_fork_probe UNIT_BYTES MODE   (the test sets the quota to 4 units)
//   after-init: parent cuInit, allocates 3 units (3 charged), then
//     1. fork: the child's cuInit and cuMemAlloc through the hook return the
//        driver's CUDA_ERROR_NOT_INITIALIZED (nothing hangs on a lock taken
//        before fork, nothing is charged);
//     2. fork + exec of this program (mode "fresh"): the new process starts
//        with none of its parent's charges and uses the whole quota;
//     then the parent still has 3 charged, one unit reaches the quota, one
//     more is OUT_OF_MEMORY.
//   before-init: the hook is loaded and asked something (cuDriverGetVersion)
//     but CUDA is not initialised; fork: the child initialises CUDA and uses
//     the whole quota; after it exited the parent does the same.
//   fresh: cuInit, primary context, 0 charged, 4 units fit, one more is
//     OUT_OF_MEMORY.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
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

// A process that may use CUDA afresh: the whole quota is its own.
bool use_whole_quota() {
  CUdeviceptr p, q;
  return start_cuda() && expect_used("fresh", 0) &&
         expect("alloc the whole quota", cuMemAlloc_v2(&p, 4 * g_unit), CUDA_SUCCESS) && expect_used("at quota", 4) &&
         expect("one unit over", cuMemAlloc_v2(&q, g_unit), CUDA_ERROR_OUT_OF_MEMORY) &&
         expect("free", cuMemFree_v2(p), CUDA_SUCCESS) && expect_used("freed", 0);
}

// Runs `body` in a forked child; true when it exited 0.
template <typename Body>
bool in_child(Body body) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    g_who = "child: ";
    bool ok = body();
    std::fflush(stdout);
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::printf("FAIL child status %d\n", status);
    return false;
  }
  return true;
}

int after_init(const char* self) {
  CUdeviceptr held, last, over, none = 0;
  if (!start_cuda() || !expect("alloc 3 units", cuMemAlloc_v2(&held, 3 * g_unit), CUDA_SUCCESS) ||
      !expect_used("parent before fork", 3))
    return 1;
  bool ok = in_child([&] {
    return expect("cuInit after the parent's", cuInit(0), CUDA_ERROR_NOT_INITIALIZED) &&
           expect("cuMemAlloc after the parent's init", cuMemAlloc_v2(&none, g_unit), CUDA_ERROR_NOT_INITIALIZED);
  });
  ok = ok && in_child([&] {
    std::string unit = std::to_string(g_unit);
    execl(self, self, unit.c_str(), "fresh", static_cast<char*>(nullptr));
    std::printf("%sFAIL exec %s: %s\n", g_who, self, std::strerror(errno));
    return false;
  });
  ok = ok && expect_used("parent after the children", 3) &&
       expect("parent to the exact quota", cuMemAlloc_v2(&last, g_unit), CUDA_SUCCESS) &&
       expect("parent one unit over", cuMemAlloc_v2(&over, g_unit), CUDA_ERROR_OUT_OF_MEMORY) &&
       expect("free", cuMemFree_v2(held), CUDA_SUCCESS) && expect("free", cuMemFree_v2(last), CUDA_SUCCESS) &&
       expect_used("parent freed", 0);
  return ok ? 0 : 1;
}

int before_init() {
  int version = 0;
  if (!expect("cuDriverGetVersion", cuDriverGetVersion(&version), CUDA_SUCCESS)) return 1;
  bool ok = in_child(use_whole_quota) && use_whole_quota();
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: hook_fork_probe UNIT_BYTES after-init|before-init|fresh\n");
    return 2;
  }
  g_unit = std::strtoull(argv[1], nullptr, 10);
  std::string mode = argv[2];
  int rc = 2;
  if (mode == "after-init") rc = after_init("/proc/self/exe");
  else if (mode == "before-init") rc = before_init();
  else if (mode == "fresh") rc = use_whole_quota() ? 0 : 1;
  if (rc == 0 && mode != "fresh") std::printf("ok\n");
  return rc;
}
