// AllocationGc: removes the allocations no container holds any more — the
// vgpud tenant (its socket and directory go with it) and the CDI spec — once
// PodResources has not listed them for `grace` (an allocation is made before
// the kubelet records it, so a fresh one must not be taken for garbage).
// Only allocations of the plugin (names "k8s-...") are touched. When
// PodResources or vgpud cannot be asked, nothing is removed that round.
// Not thread-safe: one thread calls collect().
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

class AllocationGc {
 public:
  AllocationGc(const PluginOptions& opts, VgpudClient& vgpud, PodResourcesClient& pods)
      : opts_(opts), vgpud_(vgpud), pods_(pods) {}
  // One round at `now`; the names removed, or why the round did nothing.
  Result<std::vector<std::string>> collect(std::chrono::steady_clock::time_point now);

 private:
  PluginOptions opts_;
  VgpudClient& vgpud_;
  PodResourcesClient& pods_;
  // allocation -> when it was first seen unlisted (cleared when listed again)
  std::map<std::string, std::chrono::steady_clock::time_point> missing_since_;
};

}  // namespace vgpu::k8s
