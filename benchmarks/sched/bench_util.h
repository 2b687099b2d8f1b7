// Small helpers shared by the scheduler benchmarks: clocks, latency
// distributions, a process's CPU time, and a sleep that is explicit about
// being a pacing delay (never a synchronisation: waits use wait_until).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vgpu::bench {

uint64_t now_ns();
void sleep_ns(uint64_t ns);

// p50/p99/max etc. of a set of samples (nanoseconds).
struct Distribution {
  size_t n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};
Distribution distribution(std::vector<uint64_t> samples);
// "n=.. p50=..ms p99=..ms max=..ms" with values in milliseconds.
std::string format_ms(const Distribution& d);

// CPU time (user + system, all threads) of process `pid` in ns, from
// /proc/<pid>/task/*/schedstat; 0 if unreadable.
uint64_t process_cpu_ns(pid_t pid);

// Path of a build output next to this benchmark binary (build/bin/<name>).
std::string bin_path(const std::string& name);

}  // namespace vgpu::bench
