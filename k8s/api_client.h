// ApiClient: the few API server calls the device plugin makes -- read a pod
// (its annotations), create an Event -- over libcurl (TLS by OpenSSL; the
// server verified by the kubeconfig's or the service account's CA).
// Every call has a deadline and a fresh connection: calls are rare (one pod
// read per held allocation and round), so nothing is pooled.
// Errors are one line that says whether the server is unreachable, refused
// the credentials, or has no such object. Thread-safe.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "kubeconfig.h"
#include "vgpu/result.h"

namespace vgpu::k8s {

class ApiClient {
 public:
  explicit ApiClient(ApiCredentials creds, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  struct Reply {
    long status = 0;  // HTTP status
    std::string body;
  };
  // GET /api/v1/namespaces/<ns>/pods/<name>. An error for anything but 200
  // (`*not_found` set on 404: the pod is gone) and for a body that is not a
  // JSON object.
  Result<nlohmann::json> get_pod(const std::string& ns, const std::string& name, bool* not_found = nullptr);
  // POST /api/v1/namespaces/<ns>/events.
  Result<bool> create_event(const std::string& ns, const nlohmann::json& event);
  const ApiCredentials& credentials() const { return creds_; }

  // One request; an error only when no HTTP answer came (unreachable, TLS).
  Result<Reply> request(const std::string& method, const std::string& path, const std::string& body);

 private:
  ApiCredentials creds_;
  std::chrono::milliseconds timeout_;
};

// True for a Kubernetes object name or namespace the plugin puts into a URL
// (DNS subdomain characters only: nothing that changes the path).
bool valid_object_name(const std::string& s);

}  // namespace vgpu::k8s
