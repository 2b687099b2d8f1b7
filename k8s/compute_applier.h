// ComputeApplier: turns a pod's compute annotations (annotations.h) into
// its allocation tenant's compute request, limit and priority in vgpud.
//
// For an allocation and the container holding it (PodResources), apply()
// reads the pod from the API server, works out the settings for that
// container and updates the tenant when they differ from what vgpud has
// (so a round with nothing changed writes nothing). The annotations are the
// source of these settings for a pod the API server answers for: an
// operator's `vgpuctl tenant update --request` is undone at the next read.
//
// Bad values keep their defaults (annotations.h); when vgpud refuses the
// request (the requests on a GPU would pass 100 %), the tenant gets the
// other settings with request 0. Each problem is reported once per change
// as a Warning Event on the pod (reason InvalidVgpuAnnotation), or logged
// when the event cannot be written. When the API server or vgpud does not
// answer, nothing changes (an allocation starts with the defaults; one that
// had its annotations applied keeps them) and the error is returned: the
// caller retries at its next round.
// Thread-safe (PreStartContainer on gRPC threads, rounds on the main thread).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "annotations.h"
#include "api_client.h"
#include "options.h"
#include "pod_resources.h"
#include "vgpud_client.h"

namespace vgpu::k8s {

inline constexpr const char* kInvalidAnnotationReason = "InvalidVgpuAnnotation";

class ComputeApplier {
 public:
  // `node`: this node's name, the events' source host.
  ComputeApplier(const PluginOptions& opts, VgpudClient& vgpud, std::unique_ptr<ApiClient> api, std::string node);
  struct Outcome {
    ComputeSettings settings;  // what the tenant has now
    bool changed = false;      // vgpud was updated
    std::vector<std::string> problems;
  };
  // Reads the pod and applies. `pod` may be given (a round reads each pod
  // once for all its containers).
  Result<Outcome> apply(const std::string& allocation, const PodRef& ref, const nlohmann::json* pod = nullptr);
  Result<nlohmann::json> read_pod(const PodRef& ref, bool* gone = nullptr);
  // The allocation is gone: forget what was reported for it.
  void forget(const std::string& allocation);

 private:
  Result<Outcome> update(const std::string& allocation, const ComputeAnnotations& want);
  void report(const std::string& allocation, const PodRef& ref, const nlohmann::json& pod,
              const std::vector<std::string>& problems);
  nlohmann::json event(const PodRef& ref, const nlohmann::json& pod, const std::string& message) const;

  PluginOptions opts_;
  VgpudClient& vgpud_;
  std::unique_ptr<ApiClient> api_;
  std::string node_;
  std::mutex mu_;
  std::map<std::string, std::string> reported_;  // allocation -> the problems last reported
};

// The pod's metadata.annotations as strings (values of other types ignored).
std::map<std::string, std::string> annotations_of(const nlohmann::json& pod);

}  // namespace vgpu::k8s
