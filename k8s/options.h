// The device plugin's command line (docs/kubernetes.md lists every flag).
// Pure; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "vgpu/result.h"

namespace vgpu::k8s {

struct PluginOptions {
  std::string kubelet_root = "/var/lib/kubelet";
  std::string admin_socket = "/run/vgpu/vgpud-admin.sock";
  std::string cdi_dir = "/var/run/cdi";
  // The API server (compute annotations, events): a kubeconfig file, or the
  // service account's token and CA when running in a pod.
  std::string kubeconfig;
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  // How often the pods of held allocations are re-read (live annotation
  // changes, retries); 0: only in PreStartContainer.
  std::chrono::milliseconds annotation_interval{10000};
  uint64_t memory_unit = 1ull << 30;       // bytes per advertised device
  std::string domain = "vgpu.io";
  std::string host_dir = "/var/lib/vgpu/k8s";
  std::string nvidia_cdi_kind = "nvidia.com/gpu";  // "" : no CDI device for the real GPU
  bool nvidia_env = true;                  // NVIDIA_VISIBLE_DEVICES=<uuids>
  std::chrono::milliseconds health_interval{2000};  // how often vgpud's GPU view is read
  std::string log_level = "info";
  // Garbage collection of allocations PodResources no longer lists (gc.h);
  // interval 0: off.
  std::chrono::milliseconds gc_interval{30000};
  std::chrono::milliseconds gc_grace{120000};
  bool pre_start = true;                   // ask for PreStartContainer (labels now, annotations later)

  std::string resource_name() const { return domain + "/gpu-memory"; }
  std::string cdi_kind() const { return domain + "/gpu"; }
  std::string plugins_dir() const { return kubelet_root + "/device-plugins"; }
  std::string kubelet_socket() const { return plugins_dir() + "/kubelet.sock"; }
  std::string pod_resources_socket() const { return kubelet_root + "/pod-resources/kubelet.sock"; }
  // The socket file name in device-plugins/ (the Register endpoint).
  std::string endpoint() const { return "vgpu-" + domain + ".sock"; }
  std::string plugin_socket() const { return plugins_dir() + "/" + endpoint(); }
};

// Parses argv ("--flag value" or "--flag=value"). --help gives an error whose
// message is the usage text and sets *help.
Result<PluginOptions> parse_options(const std::vector<std::string>& args, bool* help);
std::string usage();

}  // namespace vgpu::k8s
