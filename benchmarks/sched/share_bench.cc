// P3 and P4 of DESIGN.md: achieved vs configured GPU share of 2, 4 and 8
// saturating tenants, and the GPU's busy fraction with several tenants vs one
// tenant alone, measured in one run on one simulated node per scenario.
//
// Every tenant runs one `vgpu-workload` (1 ms spin_ns kernels, saturating)
// under LD_PRELOAD=libvgpu.so with its token, beside a real vgpud on a
// private socket. A tenant's achieved share is its work_share (kernel time
// completed / wall time); P3 compares the normalised shares with the
// configured requests, P4 divides the sum of work_shares by the work_share of
// one tenant alone under vgpud (and, for reference, alone without the hook).
//
// usage: sched_share_bench [--duration SECONDS] [--sets 2,4,8] [--quantum 10ms]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::bin_dir;
using vgpu::test::Child;
using vgpu::test::json_number;
using vgpu::test::VgpudFixture;

struct Options {
  int duration_s = 10;
  std::vector<int> sets = {2, 4, 8};
  std::string quantum = "10ms";
};

std::vector<int> requests_for(int n) {
  if (n == 1) return {100};
  if (n == 2) return {30, 70};
  if (n == 3) return {20, 30, 50};
  if (n == 4) return {10, 20, 30, 40};
  if (n == 8) return {5, 5, 10, 10, 10, 15, 20, 25};
  std::vector<int> r(static_cast<size_t>(n), 100 / n);  // equal shares otherwise
  return r;
}

std::string tenants_yaml(const std::vector<int>& requests) {
  std::ostringstream y;
  for (size_t i = 0; i < requests.size(); ++i)
    y << "  - {name: t" << i << ", token: bench-tenant-token-" << i << ", memory: 1Gi, compute: {request: " << requests[i]
      << "%}}\n";
  return y.str();
}

std::vector<std::string> workload_argv(const Options& o, const std::string& label) {
  return {bin_dir() + "/vgpu-workload", "--kernel-us", "1000", "--duration", std::to_string(o.duration_s),
          "--label", label, "--json"};
}

// Runs one workload per tenant concurrently; returns their work_shares (NaN on failure).
std::vector<double> run_tenants(const Options& o, const std::vector<int>& requests) {
  VgpudFixture f(tenants_yaml(requests), {}, "scheduler: {quantum: " + o.quantum + "}\n");
  std::string why;
  if (!f.start(&why)) {
    std::fprintf(stderr, "vgpud did not start: %s\n", why.c_str());
    return std::vector<double>(requests.size(), std::nan(""));
  }
  std::vector<std::unique_ptr<Child>> kids;
  for (size_t i = 0; i < requests.size(); ++i)
    kids.push_back(f.run(workload_argv(o, "t" + std::to_string(i)), "bench-tenant-token-" + std::to_string(i)));
  std::vector<double> shares;
  for (auto& k : kids) {
    int rc = k->wait(std::chrono::seconds(o.duration_s + 60));
    double s = json_number(k->output(), "work_share");
    if (rc != 0 || std::isnan(s))
      std::fprintf(stderr, "workload exited %d: %s\n%s\n", rc, k->errors().c_str(), k->output().c_str());
    shares.push_back(rc == 0 ? s : std::nan(""));
  }
  return shares;
}

// One workload with no hook and no vgpud, on its own simulated node.
double run_unhooked(const Options& o) {
  vgpu::test::SimNode node(std::map<std::string, std::string>{{"SIMGPU_CONTEXT_OVERHEAD", "0"}});
  Child k(workload_argv(o, "alone"), node.env());
  int rc = k.wait(std::chrono::seconds(o.duration_s + 60));
  return rc == 0 ? json_number(k.output(), "work_share") : std::nan("");
}

double report_set(const std::vector<int>& req, const std::vector<double>& got, double alone, double* max_err) {
  double sum = 0;
  for (double s : got) sum += s;
  std::printf("\nP3 %zu tenants: tenant  configured%%  work_share  achieved%%  error(points)\n", req.size());
  *max_err = 0;
  for (size_t i = 0; i < req.size(); ++i) {
    double achieved = 100.0 * got[i] / sum;
    double err = achieved - req[i];
    *max_err = std::max(*max_err, std::fabs(err));
    std::printf("   t%zu  %10d  %10.3f  %9.2f  %+8.2f\n", i, req[i], got[i], achieved, err);
  }
  std::printf("P3 %zu tenants: max |error| = %.2f points (target <= 2): %s\n", req.size(), *max_err,
              *max_err <= 2.0 ? "met" : "MISSED");
  double busy = sum / alone;
  std::printf("P4 %zu tenants: sum of work_share %.3f / alone %.3f = %.1f%% (target >= 98%%): %s\n", req.size(), sum,
              alone, 100.0 * busy, busy >= 0.98 ? "met" : "MISSED");
  return busy;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--duration") o.duration_s = std::atoi(argv[i + 1]);
    else if (a == "--quantum") o.quantum = argv[i + 1];
    else if (a == "--sets") {
      o.sets.clear();
      std::stringstream s(argv[i + 1]);
      for (std::string n; std::getline(s, n, ',');) o.sets.push_back(std::atoi(n.c_str()));
    } else {
      std::fprintf(stderr, "usage: %s [--duration SECONDS] [--sets 2,4,8] [--quantum 10ms]\n", argv[0]);
      std::exit(2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::printf("sched_share_bench: %d s per scenario, quantum %s, 1 ms kernels, saturating\n", o.duration_s,
              o.quantum.c_str());
  double unhooked = run_unhooked(o);
  double alone = run_tenants(o, {100})[0];
  std::printf("alone without hook: work_share %.3f; alone under vgpud: work_share %.3f (%.1f%% of unhooked)\n",
              unhooked, alone, 100.0 * alone / unhooked);
  const bool alone_ok = std::isfinite(alone) && alone > 0;
  bool ok = alone_ok;
  for (int n : o.sets) {
    std::vector<int> req = requests_for(n);
    std::vector<double> got = run_tenants(o, req);
    bool valid = true;
    for (double g : got) valid &= std::isfinite(g);
    if (!valid || !alone_ok) {
      std::printf("P3/P4 %d tenants: a workload failed\n", n);
      ok = false;
      continue;
    }
    double max_err = 0;
    double busy = report_set(req, got, alone, &max_err);
    ok &= max_err <= 2.0 && busy >= 0.98;
  }
  return ok ? 0 : 1;
}
