#include "device_state.h"

#include "log.h"

namespace vgpu::k8s {

using sched::log_warn;

bool DeviceState::update(const Result<std::vector<GpuView>>& reading) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<GpuView> gpus = reading ? *reading : gpus_;
  if (!reading)
    for (GpuView& g : gpus) g.healthy = false;
  std::vector<std::string> skipped;
  auto devices = advertise(gpus, unit_, &skipped);
  for (const auto& uuid : skipped) log_warn("GPU %s: its device IDs would be longer than 63 characters; not advertised", uuid.c_str());
  bool changed = devices.size() != devices_.size();
  for (size_t i = 0; !changed && i < devices.size(); ++i)
    changed = devices[i].id != devices_[i].id || devices[i].healthy != devices_[i].healthy;
  if (reading) gpus_ = *reading;
  reachable_ = reading.ok();
  if (!changed) return false;
  devices_ = std::move(devices);
  ++version_;
  cv_.notify_all();
  return true;
}

std::vector<AdvertisedDevice> DeviceState::devices(uint64_t* version) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (version) *version = version_;
  return devices_;
}

std::vector<GpuView> DeviceState::gpus() const {
  std::lock_guard<std::mutex> lock(mu_);
  return gpus_;
}

bool DeviceState::reachable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reachable_;
}

void DeviceState::wait_change(uint64_t seen, std::chrono::milliseconds max) const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, max, [&] { return version_ != seen || stopping_; });
}

void DeviceState::shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  cv_.notify_all();
}

bool DeviceState::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

}  // namespace vgpu::k8s
