// P3 and P4 of DESIGN.md and the targets of issue 11: each scenario of
// scenario.h (saturating 2/4/8 tenants, a synchronize every 8 kernels, a
// synchronize after each 2 ms or 200 us kernel, 20 us kernels on deep
// queues, an inference tenant at high priority beside training tenants) runs
// natively on simgpu (its own time slicing, no vgpu) and under vgpu, back to
// back, --repeat times, on fresh simulated nodes of the same settings.
//
// Printed per scenario: native and vgpu aggregate throughput (sum of the
// tenants' work_share) and their ratio (mean ± 95 % CI and worst over the
// repeats; met when the mean reaches the target), the backlogged tenants' achieved
// shares under vgpu vs configured in the worst repeat (met when every repeat
// is within the bound), and for the mixed scenario the high-priority
// tenant's synchronize wait p99 (native and vgpu; met when every vgpu
// repeat is within one quantum + the drain cap). Exit status 1 when a target
// is missed, 2 on bad arguments.
//
// usage: sched_share_bench [--duration SECONDS] [--repeat N] [--scenarios a,b,...]
//                          [--quantum-ms 10] [--inflight-cap 16]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_cli.h"
#include "scenario.h"

namespace {

using vgpu::bench::RunResult;
using vgpu::bench::Scenario;

struct Options {
  int duration_s = 5;
  int repeat = 1;
  std::vector<std::string> scenarios;  // empty: all
  vgpu::bench::VgpuSettings vgpu;
};

Options parse(int argc, char** argv) {
  Options o;
  std::vector<std::string> names;
  for (const Scenario& s : vgpu::bench::standard_scenarios()) names.push_back(s.name);
  CLI::App app("P3/P4: each scenario natively on simgpu and under vgpu, back to back: throughput ratio, achieved "
               "shares, high-priority wait.",
               "sched_share_bench");
  app.add_option("--duration", o.duration_s, "SECONDS per run")->capture_default_str()->check(vgpu::bench::at_least(1));
  app.add_option("--repeat", o.repeat, "runs of each scenario")->capture_default_str()->check(vgpu::bench::at_least(1));
  app.add_option("--scenarios,--scenario", o.scenarios, "comma-separated scenarios to run (default: all)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::IsMember(names));
  app.add_option("--quantum-ms", o.vgpu.quantum_ms, "vgpud's quantum")
      ->capture_default_str()
      ->check(vgpu::bench::at_least(1));
  app.add_option("--inflight-cap", o.vgpu.inflight_cap, "vgpud's in-flight cap per process")
      ->capture_default_str()
      ->check(vgpu::bench::at_least(1));
  vgpu::bench::parse_or_exit(app, argc, argv);
  // Each scenario runs once per repeat: a name given twice is a mistake.
  for (size_t i = 0; i < o.scenarios.size(); ++i)
    if (std::find(o.scenarios.begin(), o.scenarios.begin() + static_cast<long>(i), o.scenarios[i]) !=
        o.scenarios.begin() + static_cast<long>(i))
      vgpu::bench::usage_error(app, "--scenarios: " + o.scenarios[i] + " given twice");
  return o;
}

std::string shares_text(const Scenario& s, const RunResult& r) {
  std::string out;
  char buf[32];
  for (size_t i = 0; i < s.tenants.size(); ++i) {
    if (!s.tenants[i].backlogged) continue;
    std::snprintf(buf, sizeof buf, "%s%.1f", out.empty() ? "" : "/", vgpu::bench::achieved_share(s, r, i));
    out += buf;
  }
  return out;
}

std::string configured_text(const Scenario& s) {
  std::string out;
  for (size_t i = 0; i < s.tenants.size(); ++i)
    if (s.tenants[i].backlogged) out += (out.empty() ? "" : "/") + std::to_string(static_cast<int>(std::lround(vgpu::bench::configured_share(s, i))));
  return out;
}

double high_wait_p99(const Scenario& s, const RunResult& r) {
  double worst = 0;
  for (size_t i = 0; i < s.tenants.size(); ++i)
    if (s.tenants[i].high) worst = std::max(worst, r.tenants[i].sync_wait_p99_ms);
  return worst;
}

struct Verdict {
  bool ratio_met = false, shares_met = false, wait_met = true;
};

// Runs one scenario --repeat times (native then vgpu each time) and prints its figures.
Verdict run_scenario(const Scenario& s, const Options& o) {
  std::printf("\n== %s: %s\n", s.name.c_str(), s.description.c_str());
  std::vector<double> ratios, errors, native_waits, vgpu_waits;
  double worst_error = -1;
  std::string worst_shares, native_shares;
  bool all_ok = true;
  for (int k = 0; k < o.repeat; ++k) {
    RunResult n = vgpu::bench::run_native(s, o.duration_s);
    RunResult v = vgpu::bench::run_vgpu(s, o.duration_s, o.vgpu);
    if (!n.ok || !v.ok || n.aggregate <= 0) {
      std::printf("   run %d: a workload failed (native %s, vgpu %s)\n", k + 1, n.ok ? "ok" : "FAILED",
                  v.ok ? "ok" : "FAILED");
      all_ok = false;
      continue;
    }
    double ratio = v.aggregate / n.aggregate, err = vgpu::bench::max_share_error(s, v);
    ratios.push_back(ratio);
    errors.push_back(err);
    std::printf("   run %d: native %.3f  vgpu %.3f  ratio %.1f%%  shares native %s  vgpu %s (configured %s, max error %.2f)",
                k + 1, n.aggregate, v.aggregate, 100 * ratio, shares_text(s, n).c_str(), shares_text(s, v).c_str(),
                configured_text(s).c_str(), err);
    if (s.check_high_wait) {
      native_waits.push_back(high_wait_p99(s, n));
      vgpu_waits.push_back(high_wait_p99(s, v));
      std::printf("  high-priority wait p99 native %.2f ms vgpu %.2f ms", native_waits.back(), vgpu_waits.back());
    }
    std::printf("\n");
    if (err > worst_error) worst_error = err, worst_shares = shares_text(s, v), native_shares = shares_text(s, n);
  }
  Verdict verdict;
  if (ratios.empty()) return verdict;
  double mean = 0;
  for (double r : ratios) mean += r;
  mean /= static_cast<double>(ratios.size());
  double min_ratio = *std::min_element(ratios.begin(), ratios.end());
  double ss = 0;
  for (double r : ratios) ss += (r - mean) * (r - mean);
  // 95 % half-width of the mean ratio (normal approximation; with few
  // repeats it understates the interval).
  double ci = ratios.size() > 1 ? 1.96 * std::sqrt(ss / static_cast<double>(ratios.size() - 1)) /
                                      std::sqrt(static_cast<double>(ratios.size()))
                                : 0;
  verdict.ratio_met = all_ok && mean >= s.ratio_target;
  verdict.shares_met = all_ok && worst_error <= s.share_points;
  std::printf("SUMMARY %-10s ratio mean %.1f%% ± %.1f worst %.1f%% (target >= %.0f%%): %s | shares worst run %s vs %s, "
              "error %.2f points (target <= %.0f): %s\n",
              s.name.c_str(), 100 * mean, 100 * ci, 100 * min_ratio, 100 * s.ratio_target, verdict.ratio_met ? "met" : "MISSED",
              worst_shares.c_str(), configured_text(s).c_str(), worst_error, s.share_points,
              verdict.shares_met ? "met" : "MISSED");
  if (s.check_high_wait) {
    double bound = o.vgpu.quantum_ms + o.vgpu.inflight_cap * 1.0;  // training kernels are 1 ms
    double worst_v = *std::max_element(vgpu_waits.begin(), vgpu_waits.end());
    double worst_n = *std::max_element(native_waits.begin(), native_waits.end());
    verdict.wait_met = worst_v <= bound;
    std::printf("SUMMARY %-10s high-priority wait p99 worst run: native %.2f ms, vgpu %.2f ms (target <= quantum %d + "
                "drain cap %d x 1 ms = %.0f ms): %s\n",
                s.name.c_str(), worst_n, worst_v, o.vgpu.quantum_ms, o.vgpu.inflight_cap, bound,
                verdict.wait_met ? "met" : "MISSED");
  }
  std::fflush(stdout);
  return verdict;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::vector<Scenario> chosen;
  for (const Scenario& s : vgpu::bench::standard_scenarios())
    if (o.scenarios.empty() || std::find(o.scenarios.begin(), o.scenarios.end(), s.name) != o.scenarios.end())
      chosen.push_back(s);
  std::printf("sched_share_bench: %d s per run, %d repeat(s), quantum %d ms, inflight_cap %d; native = the same "
              "workloads on simgpu with no vgpu (its own time slicing)\n",
              o.duration_s, o.repeat, o.vgpu.quantum_ms, o.vgpu.inflight_cap);
  bool ok = true;
  for (const Scenario& s : chosen) {
    Verdict v = run_scenario(s, o);
    ok &= v.ratio_met && v.shares_met && v.wait_met;
  }
  return ok ? 0 : 1;
}
