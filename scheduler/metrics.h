// Metrics: vgpud's Prometheus endpoint (`metrics:` address, path /metrics).
// Per tenant and GPU (labels `tenant`, `gpu_uuid`): memory used and limit,
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

#include "vgpu/result.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace vgpu::sched {

class Daemon;

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
  Daemon& d_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> f_;
  int timerfd_ = -1;
};

}  // namespace vgpu::sched
