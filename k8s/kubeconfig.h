// Where the API server is and how to authenticate to it: from a kubeconfig
// file (--kubeconfig) or from the pod's service account (in-cluster). The
// device plugin reads pods (compute annotations) and writes Events with it.
//
// Supported in a kubeconfig: the current context (or the only one), the
// cluster's `server`, `certificate-authority[-data]`,
// `insecure-skip-tls-verify`; the user's `token`, `tokenFile`,
// `client-certificate[-data]`, `client-key[-data]`. Relative file paths are
// relative to the kubeconfig's directory (as kubectl resolves them). Users
// with `exec` or `auth-provider` plugins are refused with a clear error:
// the plugin runs no helper programs.
//
// Pure apart from reading the named files; thread-safe.
#pragma once

#include <string>

#include "vgpu/result.h"

namespace vgpu::k8s {

struct ApiCredentials {
  std::string server;          // "https://host:port" (or "http://..." in tests), no trailing '/'
  std::string ca_pem;          // PEM bundle that verifies the server; empty: the system's CAs
  bool insecure = false;       // insecure-skip-tls-verify
  std::string token;           // bearer token given inline
  std::string token_file;      // bearer token read on every request (projected tokens rotate)
  std::string client_cert_pem;  // client certificate and key (PEM), both or neither
  std::string client_key_pem;
  std::string source;          // for messages: "kubeconfig /path (context c)" or "in-cluster"
};

// `path` names the file in messages and anchors relative paths. Errors name
// the file and the key, e.g. "kubeconfig /k: users[admin].user.client-key-data: not base64".
Result<ApiCredentials> parse_kubeconfig(const std::string& text, const std::string& path);
Result<ApiCredentials> load_kubeconfig(const std::string& path);

// In-cluster: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT,
// <sa_dir>/token (re-read on every request) and <sa_dir>/ca.crt. An error
// when the variables are unset or the CA cannot be read.
Result<ApiCredentials> in_cluster_credentials(const std::string& sa_dir);

// Standard base64 (RFC 4648, padding optional, whitespace ignored).
Result<std::string> base64_decode(const std::string& in);

}  // namespace vgpu::k8s
