// AllocationReconciler: keeps vgpud's allocations in step with the
// containers the kubelet reports (PodResources, pod_resources.h):
//  * an allocation a container holds gets that container's namespace, pod
//    and container names as labels in vgpud (vgpuctl and metrics show them);
//  * an allocation no container holds is removed -- the vgpud tenant (its
//    socket and directory go with it) and the CDI spec -- once PodResources
//    has not listed it for `gc_grace` (Allocate runs before the kubelet
//    records the devices, so a fresh allocation must not be taken for garbage).
//  * a CDI spec of ours (cdi_spec_allocations(): "k8s-..." names of our
//    kind) whose allocation vgpud does not have and PodResources does not
//    list -- vgpud's state was wiped, or a removal was cut short -- is
//    removed: by remove_stale_specs() at start (nothing is allocated before
//    the plugin registers), and by reconcile() once it has been stale for
//    `gc_grace` (an Allocate writes its spec after vgpud's tenant, so a
//    round can list a spec whose tenant it did not see yet). Another
//    vendor's or class's specs in the directory are never touched.
//  * with a ComputeApplier (an API server is configured), the compute
//    annotations of the pod holding an allocation are applied to its tenant
//    in PreStartContainer (prepare()) and re-read every round of
//    apply_annotations(), so annotation changes on a running pod apply live
//    and an API server that did not answer is asked again.
// Only allocations of the plugin (names "k8s-...") are touched. When
// PodResources or vgpud cannot be asked, nothing happens that round.
// Not thread-safe: one thread calls reconcile() and apply_annotations();
// prepare() may run on any thread at the same time (it touches no state of
// the reconciler; the applier is thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compute_applier.h"
#include "options.h"
#include "pod_resources.h"
#include "vgpud_client.h"

namespace vgpu::k8s {

class AllocationReconciler {
 public:
  // `applier` may be null: no API server, labels only.
  AllocationReconciler(const PluginOptions& opts, VgpudClient& vgpud, PodResourcesClient& pods,
                       ComputeApplier* applier = nullptr)
      : opts_(opts), vgpud_(vgpud), pods_(pods), applier_(applier) {}
  struct Round {
    std::vector<std::string> removed;
    std::vector<std::string> labeled;
    std::vector<std::string> stale_specs;  // CDI specs removed without a tenant
  };
  // One round at `now`; what it changed, or why it did nothing.
  Result<Round> reconcile(std::chrono::steady_clock::time_point now);
  // At start: removes the CDI specs of ours that neither vgpud nor
  // PodResources knows, at once; their names, or why nothing was done.
  Result<std::vector<std::string>> remove_stale_specs();
  // Labels the allocation of `device_ids` now, before its container starts
  // (PreStartContainer), and applies its pod's compute annotations; an
  // error if PodResources does not list it or what could not be done.
  Result<bool> prepare(const std::vector<std::string>& device_ids);
  // Re-reads the pods of the allocations containers hold and applies their
  // annotations: the allocations whose settings changed, or the first
  // error (API server or vgpud unreachable; a pod that is gone is skipped).
  Result<std::vector<std::string>> apply_annotations();

 private:
  PluginOptions opts_;
  VgpudClient& vgpud_;
  PodResourcesClient& pods_;
  ComputeApplier* applier_;
  // allocation -> when it was first seen unlisted (cleared when listed again)
  std::map<std::string, std::chrono::steady_clock::time_point> missing_since_;
  // CDI spec without a tenant -> when it was first seen so
  std::map<std::string, std::chrono::steady_clock::time_point> stale_since_;
};

}  // namespace vgpu::k8s
