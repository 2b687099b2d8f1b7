#include "kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace vgpu::k8s {

namespace {

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// A named entry ("clusters", "users", "contexts" are lists of {name, <kind>}).
YAML::Node find_named(const YAML::Node& root, const std::string& list, const std::string& kind,
                      const std::string& name) {
  const YAML::Node& l = root[list];
  if (!l || !l.IsSequence()) return YAML::Node(YAML::NodeType::Undefined);
  for (const auto& e : l)
    if (e.IsMap() && e["name"] && e["name"].IsScalar() && e["name"].as<std::string>() == name) return e[kind];
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string scalar(const YAML::Node& m, const char* key) {
  const YAML::Node& n = m[key];
  return n && n.IsScalar() ? n.as<std::string>() : std::string();
}

// Reads what a kubeconfig gives either inline (base64 `<key>-data`) or as a file.
class Reader {
 public:
  Reader(std::string path) : path_(std::move(path)) {
    size_t slash = path_.find_last_of('/');
    dir_ = slash == std::string::npos ? "." : path_.substr(0, slash == 0 ? 1 : slash);
  }
  Error fail(const std::string& where, const std::string& why) const {
    return make_error("kubeconfig " + path_ + ": " + where + ": " + why);
  }
  std::string resolve(const std::string& p) const { return p.empty() || p[0] == '/' ? p : dir_ + "/" + p; }
  // data key first (it wins, as in kubectl), then the file key.
  Result<std::string> pem(const YAML::Node& m, const std::string& where, const std::string& key) const {
    if (std::string d = scalar(m, (key + "-data").c_str()); !d.empty()) {
      auto pem = base64_decode(d);
      if (!pem) return fail(where + "." + key + "-data", pem.error());
      return pem;
    }
    if (std::string f = scalar(m, key.c_str()); !f.empty()) {
      auto pem = read_file(resolve(f));
      if (!pem) return fail(where + "." + key, pem.error());
      return pem;
    }
    return std::string();
  }

 private:
  std::string path_, dir_;
};

Result<bool> read_user(const Reader& r, const YAML::Node& user, const std::string& where, ApiCredentials* c) {
  if (!user) return true;  // anonymous
  if (!user.IsMap()) return r.fail(where, "not a map");
  if (user["exec"] || user["auth-provider"])
    return r.fail(where, "exec and auth-provider credentials are not supported (use a token or a client certificate)");
  c->token = scalar(user, "token");
  if (std::string f = scalar(user, "tokenFile"); !f.empty() && c->token.empty()) c->token_file = r.resolve(f);
  auto cert = r.pem(user, where, "client-certificate");
  if (!cert) return Error{cert.error()};
  auto key = r.pem(user, where, "client-key");
  if (!key) return Error{key.error()};
  if (cert->empty() != key->empty())
    return r.fail(where, "client-certificate and client-key must be given together");
  c->client_cert_pem = *cert;
  c->client_key_pem = *key;
  return true;
}

Result<ApiCredentials> parse(const std::string& text, const std::string& path);

}  // namespace

Result<std::string> base64_decode(const std::string& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  for (char c : in) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    int v = sextet(c);
    if (v < 0 || pad) return make_error("not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (pad > 2 || bits >= 6) return make_error("not base64");
  return out;
}

Result<ApiCredentials> parse_kubeconfig(const std::string& text, const std::string& path) {
  // yaml-cpp throws on a node of an unexpected shape: whatever the file
  // holds ends as an error, never as an exception out of here.
  try {
    return parse(text, path);
  } catch (const YAML::Exception& e) {
    return make_error("kubeconfig " + path + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

namespace {
Result<ApiCredentials> parse(const std::string& text, const std::string& path) {
  Reader r(path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return r.fail("line " + std::to_string(e.mark.line + 1), e.msg);
  }
  if (!root.IsMap()) return r.fail("top level", "not a kubeconfig (expected a map)");
  std::string context = scalar(root, "current-context");
  if (context.empty()) {
    const YAML::Node& all = root["contexts"];
    if (!all || !all.IsSequence() || all.size() != 1) return r.fail("current-context", "not set (and not exactly one context)");
    context = scalar(all[0], "name");
  }
  YAML::Node ctx = find_named(root, "contexts", "context", context);
  if (!ctx || !ctx.IsMap()) return r.fail("contexts[" + context + "]", "no such context");
  std::string cluster_name = scalar(ctx, "cluster"), user_name = scalar(ctx, "user");
  YAML::Node cluster = find_named(root, "clusters", "cluster", cluster_name);
  std::string cw = "clusters[" + cluster_name + "].cluster";
  if (!cluster || !cluster.IsMap()) return r.fail(cw, "no such cluster (context " + context + ")");

  ApiCredentials c;
  c.source = "kubeconfig " + path + " (context " + context + ")";
  c.server = scalar(cluster, "server");
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0)
    return r.fail(cw + ".server", "'" + c.server + "' is not an http(s) URL");
  c.insecure = scalar(cluster, "insecure-skip-tls-verify") == "true";
  auto ca = r.pem(cluster, cw, "certificate-authority");
  if (!ca) return Error{ca.error()};
  c.ca_pem = *ca;
  if (!user_name.empty()) {
    std::string uw = "users[" + user_name + "].user";
    YAML::Node user = find_named(root, "users", "user", user_name);
    if (!user) return r.fail(uw, "no such user (context " + context + ")");
    if (auto ok = read_user(r, user, uw, &c); !ok) return Error{ok.error()};
  }
  return c;
}
}  // namespace

Result<ApiCredentials> load_kubeconfig(const std::string& path) {
  auto text = read_file(path);
  if (!text) return make_error("kubeconfig: " + text.error());
  return parse_kubeconfig(*text, path);
}

Result<ApiCredentials> in_cluster_credentials(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port)
    return make_error("not in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are unset (use --kubeconfig)");
  ApiCredentials c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6 service address
  c.server = "https://" + h + ":" + port;
  auto ca = read_file(sa_dir + "/ca.crt");
  if (!ca) return make_error("in-cluster credentials: " + ca.error());
  c.ca_pem = *ca;
  c.token_file = sa_dir + "/token";
  c.source = "in-cluster (" + sa_dir + ")";
  return c;
}

}  // namespace vgpu::k8s
