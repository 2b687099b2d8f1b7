// DeviceState: the devices the plugin advertises, from vgpud's GPU list and
// its health view, with a version that ListAndWatch streams wait on. A GPU
// vgpud reports unhealthy makes its devices Unhealthy; when vgpud cannot be
// asked, every device is Unhealthy (an Allocate would fail) until it answers
// again. Thread-safe: one mutex, waiters on a condition variable.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "allocation.h"

namespace vgpu::k8s {

class DeviceState {
 public:
  explicit DeviceState(uint64_t unit) : unit_(unit) {}
  // Applies one reading of vgpud (its GPUs, or the error of asking). True if
  // the advertised devices or their health changed (the version moved).
  bool update(const Result<std::vector<GpuView>>& reading);
  // The devices now and their version.
  std::vector<AdvertisedDevice> devices(uint64_t* version) const;
  // The last GPU list vgpud gave (empty before the first).
  std::vector<GpuView> gpus() const;
  bool reachable() const;
  uint64_t unit() const { return unit_; }
  // Blocks until the version is not `seen`, shutdown(), or `max` passed.
  void wait_change(uint64_t seen, std::chrono::milliseconds max) const;
  void shutdown();
  bool stopping() const;

 private:
  const uint64_t unit_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<GpuView> gpus_;
  std::vector<AdvertisedDevice> devices_;
  bool reachable_ = false;
  bool stopping_ = false;
  uint64_t version_ = 0;
};

}  // namespace vgpu::k8s
