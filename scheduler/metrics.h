// Metrics: vgpud's Prometheus endpoint (`metrics:` address, path /metrics).
// Every per-GPU series carries dcgm-exporter's labels (`gpu`, `UUID`,
// `modelName`, `Hostname`; `GPU_I_ID` for a MIG unit) and vgpu's `gpu_uuid`
// (docs/metrics.md). Per tenant and GPU (plus label `tenant`): memory used and limit,
// allocations denied, share target and achieved (sliding window), time spent
// waiting for a lease, leases granted and preempted; per tenant: processes;
// per GPU: physical memory used and total, busy fraction; the enforcement
// backstop's actions (labels `reason`, `action`, `tenant`) and the number of
// unmanaged processes using a GPU. Values are copied
// from vgpud's state on the event loop every `period`; scrapes read the copy.
// The HTTP server is bounded (metrics.cc): a fixed pool of worker threads, a
// deadline for receiving a request, no keep-alive, so idle or slow clients
// delay a scrape by at most about a request timeout per pool-full of them.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "vgpu/result.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace vgpu::sched {

class Daemon;
struct Gpu;

class Metrics {
 public:
  // Serves /metrics on `address` ("127.0.0.1:9400") and refreshes from `d`.
  static Result<std::unique_ptr<Metrics>> start(Daemon& d, const std::string& address);
  ~Metrics();
  // Copies the current state into the metrics. Loop thread.
  void update();

 private:
  explicit Metrics(Daemon& d);
  struct Families;
  using Labels = std::map<std::string, std::string>;
  Labels gpu_labels(const Gpu& g) const;
  Daemon& d_;
  std::string hostname_;
  // The labels each (tenant, unit) series was last exported with.
  std::map<std::pair<std::string, size_t>, Labels> series_labels_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> f_;
  int timerfd_ = -1;
};

}  // namespace vgpu::sched
