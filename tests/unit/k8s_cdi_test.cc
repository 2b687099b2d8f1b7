// CDI specs and the container edits of an allocation (k8s/cdi.h), and the
// plugin's flags (k8s/options.h).
#include "cdi.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <dirent.h>

#include <cstdlib>

#include "options.h"

namespace vgpu::k8s {
namespace {

// A private temp directory, removed at the end.
struct TempDir {
  TempDir() {
    char t[] = "/tmp/k8s-cdi-test-XXXXXX";
    dir = mkdtemp(t);
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  }
  const std::string& path() const { return dir; }
  std::string dir;
};

std::vector<std::string> list_dir(const std::string& d) {
  std::vector<std::string> out;
  if (DIR* p = opendir(d.c_str())) {
    while (dirent* e = readdir(p))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.push_back(e->d_name);
    closedir(p);
  }
  return out;
}

HostLayout layout() { return HostLayout{"/var/lib/vgpu/k8s"}; }

TEST(K8sCdi, EditsMountSocketShimAndPreload) {
  auto e = allocation_edits(layout(), "/var/lib/vgpu/k8s/sockets/k8s-abc");
  ASSERT_EQ(e.env.size(), 1u);
  EXPECT_EQ(e.env[0].first, "VGPU_SOCKET");
  EXPECT_EQ(e.env[0].second, "/run/vgpu/vgpud.sock");
  ASSERT_EQ(e.mounts.size(), 3u);
  EXPECT_EQ(e.mounts[0].host_path, "/var/lib/vgpu/k8s/sockets/k8s-abc");
  EXPECT_EQ(e.mounts[0].container_path, "/run/vgpu");
  EXPECT_TRUE(e.mounts[0].read_only);  // the container cannot touch the socket file
  EXPECT_EQ(e.mounts[1].host_path, "/var/lib/vgpu/k8s/lib");  // the shim and its core
  EXPECT_EQ(e.mounts[1].container_path, "/usr/lib/vgpu");
  EXPECT_TRUE(e.mounts[1].read_only);
  EXPECT_EQ(e.mounts[2].container_path, "/etc/ld.so.preload");
  EXPECT_TRUE(e.mounts[2].read_only);
}

TEST(K8sCdi, SpecIsVersion050JsonWithOneNamedDevice) {
  auto e = allocation_edits(layout(), "/h/sockets/k8s-abc");
  auto j = nlohmann::json::parse(cdi_spec_json("vgpu.io/gpu", "k8s-abc", e));
  EXPECT_EQ(j["cdiVersion"], "0.5.0");
  EXPECT_EQ(j["kind"], "vgpu.io/gpu");
  ASSERT_EQ(j["devices"].size(), 1u);
  auto& d = j["devices"][0];
  EXPECT_EQ(d["name"], "k8s-abc");
  EXPECT_EQ(d["containerEdits"]["env"][0], "VGPU_SOCKET=/run/vgpu/vgpud.sock");
  auto& m = d["containerEdits"]["mounts"];
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0]["hostPath"], "/h/sockets/k8s-abc");
  EXPECT_EQ(m[0]["containerPath"], "/run/vgpu");
  EXPECT_NE(std::find(m[1]["options"].begin(), m[1]["options"].end(), "ro"), m[1]["options"].end());
  EXPECT_NE(std::find(m[0]["options"].begin(), m[0]["options"].end(), "bind"), m[0]["options"].end());
  EXPECT_EQ(cdi_device_name("vgpu.io/gpu", "k8s-abc"), "vgpu.io/gpu=k8s-abc");
}

TEST(K8sCdi, SpecFileIsWrittenWholeAndRemoved) {
  TempDir dir;
  std::string cdi = dir.path() + "/cdi";  // created on demand
  auto e = allocation_edits(layout(), "/h/sockets/k8s-x");
  ASSERT_TRUE(write_cdi_spec(cdi, "vgpu.io/gpu", "k8s-x", e));
  std::string path = cdi_spec_path(cdi, "vgpu.io/gpu", "k8s-x");
  EXPECT_EQ(path, cdi + "/vgpu.io-gpu-k8s-x.json");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(), cdi_spec_json("vgpu.io/gpu", "k8s-x", e));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // No temp file left beside it.
  EXPECT_EQ(list_dir(cdi), std::vector<std::string>{"vgpu.io-gpu-k8s-x.json"});
  remove_cdi_spec(cdi, "vgpu.io/gpu", "k8s-x");
  EXPECT_NE(access(path.c_str(), F_OK), 0);
}

TEST(K8sCdi, PreloadFileNamesTheShimInTheContainer) {
  TempDir dir;
  HostLayout l{dir.path() + "/host"};
  ASSERT_TRUE(ensure_preload_file(l));
  std::ifstream in(l.preload_file());
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "/usr/lib/vgpu/libvgpu.so");
}

TEST(K8sOptions, DefaultsAndFlags) {
  bool help = false;
  auto d = parse_options({}, &help);
  ASSERT_TRUE(d) << d.error();
  EXPECT_EQ(d->kubelet_socket(), "/var/lib/kubelet/device-plugins/kubelet.sock");
  EXPECT_EQ(d->cdi_dir, "/var/run/cdi");
  EXPECT_EQ(d->memory_unit, 1ull << 30);
  EXPECT_EQ(d->resource_name(), "vgpu.io/gpu-memory");
  auto o = parse_options({"--kubelet-root", "/k", "--memory-unit=512Mi", "--domain", "example.com", "--cdi-dir", "/c",
                          "--host-dir", "/h", "--admin-socket", "/a.sock", "--kubeconfig", "/kc", "--nvidia-cdi-kind=",
                          "--nvidia-env", "false"},
                         &help);
  ASSERT_TRUE(o) << o.error();
  EXPECT_EQ(o->plugin_socket(), "/k/device-plugins/vgpu-example.com.sock");
  EXPECT_EQ(o->memory_unit, 512ull << 20);
  EXPECT_EQ(o->resource_name(), "example.com/gpu-memory");
  EXPECT_EQ(o->cdi_kind(), "example.com/gpu");
  EXPECT_TRUE(o->nvidia_cdi_kind.empty());
  EXPECT_FALSE(o->nvidia_env);
}

TEST(K8sOptions, BadFlagsNameTheFlag) {
  bool help = false;
  for (auto [args, flag] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--memory-unit", "lots"}, "--memory-unit"},
           {{"--memory-unit", "1k"}, "--memory-unit"},
           {{"--kubelet-root", "relative"}, "--kubelet-root"},
           {{"--domain", "Bad_Domain"}, "--domain"},
           {{"--bogus", "1"}, "--bogus"},
           {{"--cdi-dir"}, "--cdi-dir"}}) {
    auto o = parse_options(args, &help);
    ASSERT_FALSE(o) << flag;
    EXPECT_NE(o.error().find(flag), std::string::npos) << o.error();
  }
  EXPECT_FALSE(parse_options({"--help"}, &help));
  EXPECT_TRUE(help);
}

}  // namespace
}  // namespace vgpu::k8s
