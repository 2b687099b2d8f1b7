// vgpu-driver-probe: attaches DriverProbe to a driver library and prints what
// it sees. Lets an operator check, on a node, that the probes fire for the
// installed driver and its applications; also used to measure the probes' cost.
//
//   vgpu-driver-probe [--no-launches] LIBRARY                  until SIGINT/SIGTERM
//   vgpu-driver-probe [--no-launches] LIBRARY -- COMMAND ARGS  around one command;
//                                                              exits with its status
//
// Events go to stdout as they arrive; the per-process counts at the end.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "driver_probe.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

void print_event(const vgpu::sched::DriverEvent& e) {
  bool alloc = e.kind == vgpu::sched::DriverEvent::Kind::kAlloc;
  std::printf("%s pid=%d cgroup=%" PRIu64 " fn=%s size=%" PRIu64 " ts=%" PRIu64 "\n",
              alloc ? "alloc" : "first-call", e.pid, e.cgroup_id, e.function.c_str(), e.size, e.ts_ns);
  std::fflush(stdout);
}

void print_counts(const vgpu::sched::DriverProbe& probe) {
  for (const auto& [pid, c] : probe.counts())
    std::printf("counts pid=%d launches=%" PRIu64 " allocs=%" PRIu64 " alloc_bytes=%" PRIu64
                " cgroup=%" PRIu64 " exited=%s\n",
                pid, c.launches, c.allocs, c.alloc_bytes, c.cgroup_id, c.exit_ns ? "yes" : "no");
  std::printf("lost_events=%" PRIu64 " untracked_calls=%" PRIu64 "\n", probe.lost_events(),
              probe.untracked_calls());
}

pid_t start(char** argv) {
  pid_t pid = fork();
  if (pid == 0) {
    execvp(argv[0], argv);
    std::fprintf(stderr, "vgpu-driver-probe: %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  vgpu::sched::DriverProbeOptions options;
  if (argc > 1 && std::strcmp(argv[1], "--no-launches") == 0) {
    options.launches = false;
    --argc;
    ++argv;
  }
  if (argc < 2 || (argc > 2 && (std::strcmp(argv[2], "--") != 0 || argc == 3))) {
    std::fprintf(stderr, "usage: vgpu-driver-probe [--no-launches] LIBRARY [-- COMMAND ARGS...]\n");
    return 2;
  }
  auto probe = vgpu::sched::DriverProbe::attach(argv[1], options);
  if (!probe) {
    std::fprintf(stderr, "vgpu-driver-probe: %s\n", probe.error().c_str());
    return 1;
  }
  std::fprintf(stderr, "vgpu-driver-probe: %s: %zu entry points probed", (*probe)->library().c_str(),
               (*probe)->attached().size());
  for (const auto& name : (*probe)->missing()) std::fprintf(stderr, ", %s missing", name.c_str());
  std::fprintf(stderr, "\n");
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  pid_t child = argc > 3 ? start(argv + 3) : -1;
  int status = 0;
  while (!g_stop) {
    pollfd p{(*probe)->fd(), POLLIN, 0};
    poll(&p, 1, 100);
    (*probe)->consume(print_event);
    if (child > 0 && waitpid(child, &status, WNOHANG) == child) break;
  }
  (*probe)->consume(print_event);
  print_counts(**probe);
  if (child > 0 && g_stop) kill(child, SIGTERM);
  return child > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}
