// The deployment manifests in k8s/deploy/ (issue 10) hang together: every
// file parses as YAML with the fields the API server requires, kustomization
// lists exactly the files, and the cross-references hold --
//   the DaemonSet's service account exists and is bound to a ClusterRole that
//   grants pods get/list/watch and events create;
//   every volumeMount names a declared volume, every volume is used;
//   the ConfigMap has the key the DaemonSet mounts, vgpud's --config names
//   it, and it is a valid vgpud.yaml (vgpud's own parser);
//   the plugin's flags (its own parser) match the mounts: the kubelet's
//   directories, the CDI dir and the host dir on their host paths, the admin
//   socket vgpud serves on a volume both containers share, the host dir seen
//   by vgpud at the same path (vgpud creates the allocation sockets there);
//   the init container installs both shim libraries into <host-dir>/lib;
//   NODE_NAME comes from spec.nodeName; the metrics Service selects the pods
//   and targets vgpud's port, which is the port vgpud.yaml listens on.
// No cluster is needed.
#include <dirent.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "options.h"

namespace {

const std::string kDir = std::string(VGPU_TREE_DIR) + "/k8s/deploy";

struct Doc {
  std::string file;
  YAML::Node node;
};

std::vector<Doc> load_all() {
  std::vector<Doc> docs;
  DIR* d = opendir(kDir.c_str());
  if (!d) return docs;
  std::vector<std::string> files;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.substr(n.size() - 5) == ".yaml") files.push_back(n);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  for (auto& f : files)
    for (auto& n : YAML::LoadAllFromFile(kDir + "/" + f))
      if (n && !n.IsNull()) docs.push_back({f, n});
  return docs;
}

class K8sDeploy : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_THROW(docs = load_all());
    ASSERT_FALSE(docs.empty()) << "no manifests in " << kDir;
  }
  // The one object of `kind` (fails the test if not exactly one).
  YAML::Node one(const std::string& kind) {
    std::vector<YAML::Node> found;
    for (auto& d : docs)
      if (d.node["kind"].as<std::string>("") == kind) found.push_back(d.node);
    EXPECT_EQ(found.size(), 1u) << kind;
    return found.empty() ? YAML::Node() : found[0];
  }
  YAML::Node pod_spec() { return one("DaemonSet")["spec"]["template"]["spec"]; }
  YAML::Node container(const std::string& name) {
    for (auto list : {"initContainers", "containers"})
      for (auto c : pod_spec()[list])
        if (c["name"].as<std::string>() == name) return c;
    ADD_FAILURE() << "no container " << name;
    return YAML::Node();
  }
  std::vector<std::string> command(const std::string& name) {
    std::vector<std::string> v;
    for (auto a : container(name)["command"]) v.push_back(a.as<std::string>());
    for (auto a : container(name)["args"]) v.push_back(a.as<std::string>());
    return v;
  }
  YAML::Node volume(const std::string& name) {
    for (auto v : pod_spec()["volumes"])
      if (v["name"].as<std::string>() == name) return v;
    return YAML::Node();
  }
  // Where `path` inside container `c` comes from: the volume of the deepest
  // mount holding it and the path below that mount ("" if none holds it).
  std::pair<std::string, std::string> source(const std::string& c, const std::string& path) {
    std::string best, rest;
    size_t best_len = 0;
    for (auto m : container(c)["volumeMounts"]) {
      std::string mp = m["mountPath"].as<std::string>();
      bool holds = path == mp || (path.rfind(mp + "/", 0) == 0);
      if (holds && mp.size() >= best_len) {
        best = m["name"].as<std::string>();
        rest = path.substr(mp.size());
        best_len = mp.size();
      }
    }
    return {best, rest};
  }
  // The host path of `path` in container `c` ("" if not from a hostPath).
  std::string host_path(const std::string& c, const std::string& path) {
    auto [vol, rest] = source(c, path);
    if (vol.empty() || !volume(vol)["hostPath"]) return "";
    return volume(vol)["hostPath"]["path"].as<std::string>() + rest;
  }
  vgpu::k8s::PluginOptions plugin_options() {
    auto argv = command("device-plugin");
    EXPECT_FALSE(argv.empty());
    if (argv.empty()) return {};
    EXPECT_EQ(argv[0], "vgpu-device-plugin");
    bool help = false;
    auto o = vgpu::k8s::parse_options({argv.begin() + 1, argv.end()}, &help);
    EXPECT_TRUE(o.ok()) << o.error();
    return o.ok() ? o.value() : vgpu::k8s::PluginOptions{};
  }
  std::string config_text() {
    auto cm = one("ConfigMap");
    return cm["data"]["vgpud.yaml"].as<std::string>("");
  }

  std::vector<Doc> docs;
};

TEST_F(K8sDeploy, EveryObjectHasItsIdentityAndKustomizationListsEveryFile) {
  std::set<std::string> files;
  for (auto& d : docs) {
    files.insert(d.file);
    ASSERT_TRUE(d.node.IsMap()) << d.file;
    EXPECT_FALSE(d.node["apiVersion"].as<std::string>("").empty()) << d.file;
    std::string kind = d.node["kind"].as<std::string>("");
    EXPECT_FALSE(kind.empty()) << d.file;
    if (kind == "Kustomization") continue;
    EXPECT_FALSE(d.node["metadata"]["name"].as<std::string>("").empty()) << d.file << " " << kind;
    bool cluster_scoped = kind == "Namespace" || kind == "ClusterRole" || kind == "ClusterRoleBinding";
    if (!cluster_scoped) {
      EXPECT_EQ(d.node["metadata"]["namespace"].as<std::string>(""), one("Namespace")["metadata"]["name"].as<std::string>())
          << d.file << " " << kind;
    }
  }
  std::set<std::string> listed;
  for (auto r : one("Kustomization")["resources"]) listed.insert(r.as<std::string>());
  files.erase("kustomization.yaml");
  EXPECT_EQ(listed, files);
}

TEST_F(K8sDeploy, ServiceAccountIsBoundToWhatThePluginNeeds) {
  std::string ns = one("Namespace")["metadata"]["name"].as<std::string>();
  std::string sa = pod_spec()["serviceAccountName"].as<std::string>("");
  EXPECT_EQ(one("ServiceAccount")["metadata"]["name"].as<std::string>(), sa);
  auto binding = one("ClusterRoleBinding");
  EXPECT_EQ(binding["roleRef"]["kind"].as<std::string>(), "ClusterRole");
  EXPECT_EQ(binding["roleRef"]["name"].as<std::string>(), one("ClusterRole")["metadata"]["name"].as<std::string>());
  bool bound = false;
  for (auto s : binding["subjects"])
    bound = bound || (s["kind"].as<std::string>() == "ServiceAccount" && s["name"].as<std::string>() == sa &&
                      s["namespace"].as<std::string>() == ns);
  EXPECT_TRUE(bound) << "the ClusterRoleBinding does not name " << ns << "/" << sa;

  // verbs granted on core-group resources
  std::map<std::string, std::set<std::string>> granted;
  for (auto rule : one("ClusterRole")["rules"]) {
    bool core = false;
    for (auto g : rule["apiGroups"]) core = core || g.as<std::string>().empty();
    if (!core) continue;
    for (auto r : rule["resources"])
      for (auto v : rule["verbs"]) granted[r.as<std::string>()].insert(v.as<std::string>());
  }
  for (auto v : {"get", "list", "watch"}) EXPECT_TRUE(granted["pods"].count(v)) << "pods " << v;
  EXPECT_TRUE(granted["events"].count("create"));
  EXPECT_FALSE(granted["pods"].count("update") || granted["pods"].count("patch") || granted["pods"].count("*"))
      << "the plugin only reads pods";
}

TEST_F(K8sDeploy, VolumesAndMountsMatch) {
  std::set<std::string> declared, used;
  for (auto v : pod_spec()["volumes"]) EXPECT_TRUE(declared.insert(v["name"].as<std::string>()).second);
  for (auto list : {"initContainers", "containers"})
    for (auto c : pod_spec()[list])
      for (auto m : c["volumeMounts"]) {
        std::string n = m["name"].as<std::string>();
        EXPECT_TRUE(declared.count(n)) << c["name"].as<std::string>() << " mounts undeclared volume " << n;
        used.insert(n);
      }
  EXPECT_EQ(used, declared) << "a volume no container mounts";
  EXPECT_TRUE(pod_spec()["hostPID"].as<bool>(false)) << "vgpud needs the host's pids";
}

TEST_F(K8sDeploy, ConfigMapIsAValidVgpudYamlAtThePathVgpudReads) {
  auto cm = one("ConfigMap");
  auto argv = command("vgpud");
  auto it = std::find(argv.begin(), argv.end(), "--config");
  ASSERT_NE(it, argv.end());
  ASSERT_NE(it + 1, argv.end());
  std::string config_path = *(it + 1);
  auto [vol, rest] = source("vgpud", config_path);
  ASSERT_FALSE(vol.empty()) << config_path << " is not mounted";
  auto cmv = volume(vol)["configMap"];
  ASSERT_TRUE(cmv) << vol << " is not the ConfigMap";
  EXPECT_EQ(cmv["name"].as<std::string>(), cm["metadata"]["name"].as<std::string>());
  std::string key = rest.substr(1);
  for (auto item : cmv["items"])
    if ("/" + item["path"].as<std::string>() == rest) key = item["key"].as<std::string>();
  ASSERT_TRUE(cm["data"][key]) << "the ConfigMap has no key " << key;

  auto cfg = vgpu::sched::parse_config(cm["data"][key].as<std::string>(), "configmap.yaml:" + key);
  ASSERT_TRUE(cfg.ok()) << cfg.error();
  // Metrics on the pod's address, on the port the Service targets.
  EXPECT_EQ(cfg.value().metrics.rfind("0.0.0.0:", 0), 0u) << cfg.value().metrics;
  std::string port = cfg.value().metrics.substr(cfg.value().metrics.rfind(':') + 1);
  auto svc = one("Service");
  for (auto p : svc["spec"]["ports"]) {
    std::string target = p["targetPort"].as<std::string>();
    bool named = false;
    for (auto cp : container("vgpud")["ports"])
      if (cp["name"].as<std::string>() == target || cp["containerPort"].as<std::string>() == target) {
        named = true;
        EXPECT_EQ(cp["containerPort"].as<std::string>(), port);
      }
    EXPECT_TRUE(named) << "the Service targets port " << target << ", which vgpud does not declare";
  }
  for (auto l : svc["spec"]["selector"])
    EXPECT_EQ(one("DaemonSet")["spec"]["template"]["metadata"]["labels"][l.first.as<std::string>()].as<std::string>(""),
              l.second.as<std::string>())
        << "the Service does not select the DaemonSet's pods";
  // State (allocation tenants, persisted) on the host, not in the container.
  EXPECT_EQ(host_path("vgpud", cfg.value().state_dir), cfg.value().state_dir);
}

TEST_F(K8sDeploy, PluginFlagsMatchTheMounts) {
  auto o = plugin_options();
  // Paths the kubelet and the container runtime see are host paths.
  EXPECT_EQ(host_path("device-plugin", o.plugins_dir()), o.plugins_dir());
  EXPECT_EQ(host_path("device-plugin", o.kubelet_root + "/pod-resources"), o.kubelet_root + "/pod-resources");
  EXPECT_EQ(host_path("device-plugin", o.cdi_dir), o.cdi_dir) << "CDI specs must land where the runtime reads them";
  EXPECT_EQ(host_path("device-plugin", o.host_dir), o.host_dir) << "the CDI spec names host paths under the host dir";
  // vgpud creates the allocation sockets where the plugin asks: under the
  // host dir, which it must see at the same path.
  EXPECT_EQ(host_path("vgpud", o.host_dir), o.host_dir);

  // The admin socket: where vgpud listens, on a volume both containers share.
  auto cfg = vgpu::sched::parse_config(config_text(), "configmap.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.error();
  EXPECT_EQ(o.admin_socket, cfg.value().admin_socket);
  auto in_vgpud = source("vgpud", cfg.value().admin_socket);
  auto in_plugin = source("device-plugin", o.admin_socket);
  EXPECT_FALSE(in_vgpud.first.empty());
  EXPECT_EQ(in_vgpud, in_plugin) << "vgpud and the plugin do not share the admin socket's directory";

  // NODE_NAME from the downward API.
  bool node_name = false;
  for (auto e : container("device-plugin")["env"])
    if (e["name"].as<std::string>() == "NODE_NAME")
      node_name = e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>("") == "spec.nodeName";
  EXPECT_TRUE(node_name);
}

TEST_F(K8sDeploy, InitContainerInstallsBothShimLibrariesIntoTheHostDir) {
  auto o = plugin_options();
  std::string script;
  for (auto& a : command("install-shim")) script += a + "\n";
  std::string lib = o.host_dir + "/lib";
  EXPECT_NE(script.find(lib), std::string::npos) << script;
  EXPECT_NE(script.find("libvgpu.so"), std::string::npos) << script;
  EXPECT_NE(script.find("libvgpu-core.so"), std::string::npos) << script;
  EXPECT_EQ(host_path("install-shim", lib), lib) << "the init container does not write the host dir";
  bool is_init = false;
  for (auto c : pod_spec()["initContainers"]) is_init = is_init || c["name"].as<std::string>() == "install-shim";
  EXPECT_TRUE(is_init);
}

}  // namespace
