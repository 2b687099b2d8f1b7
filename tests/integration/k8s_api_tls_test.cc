// The API server client over TLS (k8s/api_client.h) against `openssl
// s_server` with certificates made for the test: the server is verified by
// the kubeconfig's CA (certificate-authority-data), the client presents
// client-certificate-data/client-key-data; a wrong CA or a missing client
// certificate fails the call with an error, never a request sent in clear.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "api_client.h"
#include "kubeconfig.h"
#include "test_support.h"
#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::free_port;
using vgpu::test::read_file;
using vgpu::test::wait_until;

std::string b64(const std::string& path) {
  std::string out;
  FILE* p = popen(("base64 -w0 '" + path + "'").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

class K8sApiTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null") != 0) GTEST_SKIP() << "openssl (the command) is not installed";
    char tmpl[] = "/tmp/k8s-tls-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    // A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by it; another CA.
    std::string script =
        "set -e; cd '" + dir + "'\n"
        "q() { \"$@\" >/dev/null 2>&1; }\n"
        "q openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=test-ca\n"
        "q openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 2 -subj /CN=other-ca\n"
        "q openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=apiserver\n"
        "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext\n"
        "q openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 "
        "-extfile san.ext\n"
        "q openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=vgpu-plugin\n"
        "q openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2\n";
    ASSERT_EQ(std::system(script.c_str()), 0) << "openssl could not make the certificates";
    port = free_port();
    server = std::make_unique<Child>(
        std::vector<std::string>{"/usr/bin/env", "openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port),
                                 "-cert", dir + "/server.crt", "-key", dir + "/server.key", "-CAfile", dir + "/ca.crt",
                                 "-Verify", "1", "-www"},
        std::map<std::string, std::string>{{"PATH", "/usr/bin:/bin"}});
    ASSERT_TRUE(wait_until([&] { return server->output().find("ACCEPT") != std::string::npos || !server->running(); },
                           20s));
    ASSERT_TRUE(server->running()) << server->errors();
  }
  void TearDown() override {
    server.reset();
    if (!dir.empty()) (void)std::system(("rm -rf '" + dir + "'").c_str());
  }
  // A kubeconfig for the server with the given CA and, if `cert`, the client certificate.
  vgpu::k8s::ApiCredentials creds(const std::string& ca, bool cert) {
    std::string k = "apiVersion: v1\ncurrent-context: c\n"
                    "clusters:\n- name: a\n  cluster:\n    server: https://127.0.0.1:" +
                    std::to_string(port) + "\n    certificate-authority-data: " + b64(dir + "/" + ca) + "\n" +
                    "users:\n- name: u\n  user:\n" +
                    (cert ? "    client-certificate-data: " + b64(dir + "/client.crt") +
                                "\n    client-key-data: " + b64(dir + "/client.key") + "\n"
                          : "    token: t\n") +
                    "contexts:\n- name: c\n  context: {cluster: a, user: u}\n";
    auto c = vgpu::k8s::parse_kubeconfig(k, dir + "/kubeconfig");
    EXPECT_TRUE(c) << c.error();
    return c ? *c : vgpu::k8s::ApiCredentials{};
  }
  std::string dir;
  int port = 0;
  std::unique_ptr<Child> server;
};

TEST_F(K8sApiTls, VerifiesTheServerAndPresentsTheClientCertificate) {
  vgpu::k8s::ApiClient good(creds("ca.crt", true), 10s);
  auto r = good.request("GET", "/", "");
  ASSERT_TRUE(r) << r.error() << "\n" << server->errors();
  EXPECT_EQ(r->status, 200);

  vgpu::k8s::ApiClient wrong_ca(creds("other.crt", true), 10s);
  auto bad = wrong_ca.request("GET", "/", "");
  ASSERT_FALSE(bad) << "a server the CA did not sign was trusted";
  EXPECT_NE(bad.error().find("certificate"), std::string::npos) << bad.error();

  vgpu::k8s::ApiClient no_cert(creds("ca.crt", false), 10s);
  auto refused = no_cert.request("GET", "/", "");
  EXPECT_FALSE(refused) << "served without a client certificate: HTTP " << (refused ? refused->status : 0);
}

}  // namespace
