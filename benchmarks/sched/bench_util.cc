#include "bench_util.h"

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>

namespace vgpu::bench {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void sleep_ns(uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000ull), static_cast<long>(ns % 1'000'000'000ull)};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

Distribution distribution(std::vector<uint64_t> s) {
  Distribution d;
  d.n = s.size();
  if (s.empty()) return d;
  std::sort(s.begin(), s.end());
  auto at = [&](double q) { return static_cast<double>(s[std::min(s.size() - 1, static_cast<size_t>(q * static_cast<double>(s.size())))]); };
  d.min = static_cast<double>(s.front());
  d.p50 = at(0.50);
  d.p90 = at(0.90);
  d.p99 = at(0.99);
  d.max = static_cast<double>(s.back());
  d.mean = static_cast<double>(std::accumulate(s.begin(), s.end(), 0.0)) / static_cast<double>(s.size());
  return d;
}

std::string format_ms(const Distribution& d) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "n=%zu p50=%.3fms p90=%.3fms p99=%.3fms max=%.3fms mean=%.3fms", d.n, d.p50 / 1e6,
                d.p90 / 1e6, d.p99 / 1e6, d.max / 1e6, d.mean / 1e6);
  return buf;
}

uint64_t process_cpu_ns(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  uint64_t total = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(dir + "/" + e->d_name + "/schedstat");
    uint64_t on_cpu = 0;
    if (f >> on_cpu) total += on_cpu;
  }
  closedir(d);
  return total;
}

std::string bin_path(const std::string& name) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return name;
  std::string path(self, static_cast<size_t>(n));
  return path.substr(0, path.find_last_of('/') + 1) + name;
}

}  // namespace vgpu::bench
