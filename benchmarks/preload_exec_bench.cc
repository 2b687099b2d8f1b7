// Issue 11 item 5: what LD_PRELOAD=libvgpu.so costs a process that never
// touches CUDA (a shell, a health check: in Kubernetes the shim is preloaded
// into every process of a container).
//
// Execs PROGRAM (default /bin/true) ROUNDS times without and ROUNDS times
// with LD_PRELOAD=<libvgpu.so>, alternating (the order swaps every round, so
// drift lands on both alike), and measures each exec: wall time from
// posix_spawn to wait4, and the child's CPU time (user + system, from
// wait4's rusage: steadier than wall time on a shared machine). Prints the
// medians and means of both modes, the ratio preloaded / plain of the
// medians, and the mean added time with a 95 % confidence interval. Target
// (issue 11): the ratio of the median wall times <= 1.05; exit status 1 when
// missed, 2 on bad arguments.
//
// usage: preload_exec_bench [--rounds 300] [--lib PATH] [--env NAME=VALUE]... [-- PROGRAM ARGS...]
//   --lib   the preloaded library (default: libvgpu.so of this build)
//   --env   extra environment for both modes (e.g. VGPU_SOCKET=..., as a
//           container would have); repeatable
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_cli.h"

extern char** environ;

namespace {

struct Sample {
  double wall_us = 0;
  double cpu_us = 0;
};

double now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// One exec of argv with env; false if it could not start or did not exit 0.
bool exec_once(const std::vector<char*>& argv, const std::vector<char*>& env, Sample* out) {
  pid_t pid = -1;
  double t0 = now_us();
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), env.data()) != 0) return false;
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) != pid) return false;
  out->wall_us = now_us() - t0;
  out->cpu_us = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// Mean and 95 % half-width of the paired differences b[i] - a[i].
void diff_ci(const std::vector<double>& a, const std::vector<double>& b, double* m, double* ci) {
  std::vector<double> d;
  for (size_t i = 0; i < a.size(); ++i) d.push_back(b[i] - a[i]);
  *m = mean(d);
  double ss = 0;
  for (double x : d) ss += (x - *m) * (x - *m);
  double sd = d.size() > 1 ? std::sqrt(ss / static_cast<double>(d.size() - 1)) : 0;
  *ci = 1.96 * sd / std::sqrt(static_cast<double>(std::max<size_t>(d.size(), 1)));
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 300;
  std::string lib = VGPU_LIB_DIR "/libvgpu.so";
  std::vector<std::string> extra_env, program;
  CLI::App app("What LD_PRELOAD=libvgpu.so costs an exec that never uses CUDA (target: median wall time "
               "ratio <= 1.05).",
               "preload_exec_bench");
  app.footer("Usage: preload_exec_bench [OPTIONS] [-- PROGRAM ARGS...]\nPROGRAM (default /bin/true) is exec'd "
             "ROUNDS times plain and ROUNDS times preloaded, alternating.");
  app.add_option("--rounds", rounds, "execs per mode")
      ->capture_default_str()
      ->check(vgpu::bench::at_least(2));
  app.add_option("--lib", lib, "the preloaded library")->capture_default_str();
  app.add_option("--env", extra_env, "extra environment for both modes; repeatable")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false)
      ->check(CLI::Validator(
          [](const std::string& v) { return v.find('=') == std::string::npos ? "expected NAME=VALUE" : ""; },
          ""));
  // Everything after "--" is the program and its own arguments; it is split
  // off before CLI11 sees argv so that a bare word is still an error.
  int own = 1;
  while (own < argc && std::strcmp(argv[own], "--") != 0) ++own;
  for (int i = own + 1; i < argc; ++i) program.push_back(argv[i]);
  vgpu::bench::parse_or_exit(app, own, argv);
  if (program.empty()) program = {"/bin/true"};
  if (access(lib.c_str(), R_OK) != 0 || access(program[0].c_str(), X_OK) != 0) {
    std::fprintf(stderr, "preload_exec_bench: cannot read %s or execute %s\n", lib.c_str(), program[0].c_str());
    return 2;
  }
  // Both modes: this environment without LD_PRELOAD, plus --env; the
  // preloaded mode adds LD_PRELOAD=lib.
  std::vector<std::string> plain_env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "LD_PRELOAD=", 11) != 0) plain_env.push_back(*e);
  plain_env.insert(plain_env.end(), extra_env.begin(), extra_env.end());
  std::vector<std::string> preload_env = plain_env;
  preload_env.push_back("LD_PRELOAD=" + lib);
  auto pointers = [](std::vector<std::string>& v) {
    std::vector<char*> p;
    for (auto& s : v) p.push_back(s.data());
    p.push_back(nullptr);
    return p;
  };
  std::vector<char*> args = pointers(program), plain = pointers(plain_env), preloaded = pointers(preload_env);

  std::vector<double> wall[2], cpu[2];  // [0] plain, [1] preloaded
  Sample s;
  for (int mode : {0, 1})  // warm the page cache for both
    if (!exec_once(args, mode ? preloaded : plain, &s)) {
      std::fprintf(stderr, "preload_exec_bench: %s failed (%s)\n", program[0].c_str(), mode ? "preloaded" : "plain");
      return 1;
    }
  for (int r = 0; r < rounds; ++r) {
    for (int k = 0; k < 2; ++k) {
      int mode = (k + r) % 2;
      if (!exec_once(args, mode ? preloaded : plain, &s)) {
        std::fprintf(stderr, "preload_exec_bench: %s failed (%s)\n", program[0].c_str(), mode ? "preloaded" : "plain");
        return 1;
      }
      wall[mode].push_back(s.wall_us);
      cpu[mode].push_back(s.cpu_us);
    }
  }
  std::printf("preload_exec_bench: %s, %d rounds alternating, LD_PRELOAD=%s\n", program[0].c_str(), rounds, lib.c_str());
  std::printf("%-10s %14s %14s %14s %14s\n", "", "median us", "mean us", "cpu median us", "cpu mean us");
  for (int mode : {0, 1})
    std::printf("%-10s %14.1f %14.1f %14.1f %14.1f\n", mode ? "preloaded" : "plain", median(wall[mode]),
                mean(wall[mode]), median(cpu[mode]), mean(cpu[mode]));
  double dm = 0, dci = 0, cm = 0, cci = 0;
  diff_ci(wall[0], wall[1], &dm, &dci);
  diff_ci(cpu[0], cpu[1], &cm, &cci);
  double ratio = median(wall[1]) / median(wall[0]);
  double cpu_ratio = median(cpu[0]) > 0 ? median(cpu[1]) / median(cpu[0]) : 0;
  std::printf("added per exec: wall %+.1f ± %.1f us, cpu %+.1f ± %.1f us (mean ± 95%% CI)\n", dm, dci, cm, cci);
  std::printf("ratio preloaded/plain (medians): wall %.3f, cpu %.3f (target wall <= 1.05): %s\n", ratio, cpu_ratio,
              ratio <= 1.05 ? "met" : "MISSED");
  return ratio <= 1.05 ? 0 : 1;
}
