// Kubeconfig parsing and in-cluster credentials (k8s/kubeconfig.h): the
// server, token and TLS material of the current context, inline (base64
// *-data) or from files relative to the kubeconfig; errors that name the
// file and the key.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "kubeconfig.h"

namespace {

using vgpu::k8s::base64_decode;
using vgpu::k8s::parse_kubeconfig;

// kCa as `base64 -w0` writes it.
const char* kCaB64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmNhCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";
const char* kCa = "-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n";

std::string config(const std::string& cluster_extra, const std::string& user) {
  return "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
         "clusters:\n- name: other\n  cluster:\n    server: https://wrong:1\n"
         "- name: main\n  cluster:\n    server: https://10.0.0.1:6443/\n" +
         cluster_extra +
         "users:\n- name: admin\n  user:\n" + user +
         "contexts:\n- name: dev\n  context: {cluster: other, user: admin}\n"
         "- name: prod\n  context: {cluster: main, user: admin}\n";
}

TEST(K8sBase64, DecodesStandardBase64AndRefusesJunk) {
  EXPECT_EQ(*base64_decode("aGVsbG8="), "hello");
  EXPECT_EQ(*base64_decode("aGVsbG8"), "hello");  // padding optional
  EXPECT_EQ(*base64_decode("aGVs\nbG8h"), "hello!");
  EXPECT_EQ(*base64_decode(""), "");
  EXPECT_EQ(*base64_decode(kCaB64), kCa);
  EXPECT_FALSE(base64_decode("aGVsbG8*"));
  EXPECT_FALSE(base64_decode("a"));       // 6 bits: not a byte
  EXPECT_FALSE(base64_decode("aG=Vs"));   // data after padding
}

TEST(K8sKubeconfig, TokenAndServerOfTheCurrentContext) {
  auto c = parse_kubeconfig(config("", "    token: abc.def\n"), "/etc/k.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->server, "https://10.0.0.1:6443");  // trailing '/' dropped
  EXPECT_EQ(c->token, "abc.def");
  EXPECT_TRUE(c->ca_pem.empty());
  EXPECT_FALSE(c->insecure);
  EXPECT_NE(c->source.find("context prod"), std::string::npos) << c->source;
}

TEST(K8sKubeconfig, InlineTlsDataIsDecoded) {
  std::string b64 = kCaB64;
  auto c = parse_kubeconfig(config("    certificate-authority-data: " + b64 + "\n",
                                   "    client-certificate-data: " + b64 + "\n    client-key-data: aGVsbG8=\n"),
                            "/k");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->client_cert_pem, kCa);
  EXPECT_EQ(c->client_key_pem, "hello");
  EXPECT_TRUE(c->token.empty());
}

TEST(K8sKubeconfig, FilesAreRelativeToTheKubeconfigAndTokenFilesAreKept) {
  char tmpl[] = "/tmp/k8s-kubeconfig-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  mkdir((dir + "/pki").c_str(), 0700);
  std::ofstream(dir + "/pki/ca.crt") << "CA";
  std::ofstream(dir + "/pki/me.crt") << "CERT";
  std::ofstream(dir + "/pki/me.key") << "KEY";
  std::string path = dir + "/config";
  std::ofstream(path) << config("    certificate-authority: pki/ca.crt\n    insecure-skip-tls-verify: true\n",
                                "    client-certificate: pki/me.crt\n    client-key: " + dir +
                                    "/pki/me.key\n    tokenFile: tok\n");
  auto c = vgpu::k8s::load_kubeconfig(path);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_TRUE(c->insecure);
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(c->token_file, dir + "/tok");

  // A missing file is named with its key.
  std::ofstream(path) << config("    certificate-authority: pki/none.crt\n", "    token: t\n");
  auto bad = vgpu::k8s::load_kubeconfig(path);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("clusters[main].cluster.certificate-authority"), std::string::npos) << bad.error();
  EXPECT_NE(bad.error().find(dir + "/pki/none.crt"), std::string::npos) << bad.error();
  EXPECT_FALSE(vgpu::k8s::load_kubeconfig(dir + "/absent"));
  ASSERT_EQ(std::system(("rm -rf '" + dir + "'").c_str()), 0);
}

TEST(K8sKubeconfig, ErrorsNameTheFileAndTheKey) {
  struct Case {
    std::string text, expect;
  };
  std::vector<Case> cases = {
      {config("", "    client-key-data: '***'\n    client-certificate-data: aGVsbG8=\n"),
       "users[admin].user.client-key-data: not base64"},
      {config("", "    client-certificate-data: aGVsbG8=\n"), "client-certificate and client-key must be given together"},
      {config("", "    exec: {command: aws}\n"), "exec and auth-provider credentials are not supported"},
      {"current-context: x\ncontexts: []\n", "contexts[x]: no such context"},
      {"contexts: []\n", "current-context: not set"},
      {"a: [\n", "/k: line"},
      {"- 1\n", "not a kubeconfig"},
      {"current-context: c\ncontexts:\n- name: c\n  context: {cluster: nope}\n", "clusters[nope].cluster: no such cluster"},
      {"current-context: c\ncontexts:\n- name: c\n  context: {cluster: a}\nclusters:\n- name: a\n  cluster: {server: "
       "ftp://x}\n",
       "clusters[a].cluster.server: 'ftp://x' is not an http(s) URL"},
  };
  for (const auto& c : cases) {
    auto r = parse_kubeconfig(c.text, "/k");
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().rfind("kubeconfig /k: ", 0), 0u) << r.error();
    EXPECT_NE(r.error().find(c.expect), std::string::npos) << r.error();
  }
  // The only context is used when none is current.
  auto one = parse_kubeconfig("contexts:\n- name: c\n  context: {cluster: a}\nclusters:\n- name: a\n  cluster: {server: "
                              "http://127.0.0.1:1}\n",
                              "/k");
  ASSERT_TRUE(one) << one.error();
  EXPECT_EQ(one->server, "http://127.0.0.1:1");
}

TEST(K8sKubeconfig, InClusterCredentialsFromTheServiceAccount) {
  char tmpl[] = "/tmp/k8s-sa-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  unsetenv("KUBERNETES_SERVICE_HOST");
  auto none = vgpu::k8s::in_cluster_credentials(dir);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("KUBERNETES_SERVICE_HOST"), std::string::npos) << none.error();
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto no_ca = vgpu::k8s::in_cluster_credentials(dir);
  ASSERT_FALSE(no_ca);
  EXPECT_NE(no_ca.error().find(dir + "/ca.crt"), std::string::npos) << no_ca.error();
  std::ofstream(dir + "/ca.crt") << "CA";
  auto c = vgpu::k8s::in_cluster_credentials(dir);
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->token_file, dir + "/token");  // read per request: projected tokens rotate
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  EXPECT_EQ(vgpu::k8s::in_cluster_credentials(dir)->server, "https://[fd00::1]:443");
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_EQ(std::system(("rm -rf '" + dir + "'").c_str()), 0);
}

}  // namespace
