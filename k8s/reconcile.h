// AllocationReconciler: keeps vgpud's allocations in step with the
// containers the kubelet reports (PodResources, pod_resources.h):
//  * an allocation a container holds gets that container's namespace, pod
//    and container names as labels in vgpud (vgpuctl and metrics show them);
//  * an allocation no container holds is removed -- the vgpud tenant (its
//    socket and directory go with it) and the CDI spec -- once PodResources
//    has not listed it for `gc_grace` (Allocate runs before the kubelet
//    records the devices, so a fresh allocation must not be taken for garbage).
// Only allocations of the plugin (names "k8s-...") are touched. When
// PodResources or vgpud cannot be asked, nothing happens that round.
// Not thread-safe: one thread calls reconcile(); label() may run on any
// thread at the same time (it touches no state of the reconciler).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "options.h"
#include "pod_resources.h"
#include "vgpud_client.h"

namespace vgpu::k8s {

class AllocationReconciler {
 public:
  AllocationReconciler(const PluginOptions& opts, VgpudClient& vgpud, PodResourcesClient& pods)
      : opts_(opts), vgpud_(vgpud), pods_(pods) {}
  struct Round {
    std::vector<std::string> removed;
    std::vector<std::string> labeled;
  };
  // One round at `now`; what it changed, or why it did nothing.
  Result<Round> reconcile(std::chrono::steady_clock::time_point now);
  // Labels the allocation of `device_ids` now, before its container starts
  // (PreStartContainer); an error if PodResources does not list it.
  Result<bool> label(const std::vector<std::string>& device_ids);

 private:
  PluginOptions opts_;
  VgpudClient& vgpud_;
  PodResourcesClient& pods_;
  // allocation -> when it was first seen unlisted (cleared when listed again)
  std::map<std::string, std::chrono::steady_clock::time_point> missing_since_;
};

}  // namespace vgpu::k8s
