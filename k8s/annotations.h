// The compute annotations of a pod, read for one of its containers:
//   <domain>/compute-request   guaranteed share of the GPU: "30%" (0-100 %,
//                              decimals allowed) or a fraction "0.3"
//   <domain>/compute-limit     hard cap, same forms, above 0
//   <domain>/priority          high | normal | low
// and the same keys with ".<container>" appended for one container, which
// win over the pod-wide key. A key absent or bad keeps its default
// (request 0, limit 100 %, priority normal); a request above the limit falls
// back to request 0 (no guarantee). Every bad value is reported in
// `problems`, naming the key and the value.
// Pure; thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "vgpu/result.h"

namespace vgpu::k8s {

struct ComputeSettings {
  double request = 0;   // fraction of the GPU, [0, limit]
  double limit = 1;     // (0, 1]
  std::string priority = "normal";
  bool operator==(const ComputeSettings&) const = default;
};

struct ComputeAnnotations {
  ComputeSettings settings;
  std::vector<std::string> problems;
  bool any = false;  // at least one of the keys was present
};

ComputeAnnotations compute_from_annotations(const std::map<std::string, std::string>& annotations,
                                            const std::string& domain, const std::string& container);

// "30%", "12.5%", "0.3" -> a fraction in [0, 1].
Result<double> parse_share(const std::string& value);

// "30%" for messages (one decimal when needed).
std::string share_text(double fraction);

}  // namespace vgpu::k8s
