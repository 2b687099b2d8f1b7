// The deployment in k8s/deploy/ runs (issue 10), with no cluster and no
// network: the image the DaemonSet names is built with k8s/deploy/Dockerfile,
// unchanged, from the project's Debian packages (cpack -G DEB) on a stand-in
// debian:bookworm-slim assembled from this machine's own packages
// (tests/k8s/host_base_image.py: no apt sources, so the Dockerfile's
// `apt-get update` has nothing to fetch and `apt-get install ./*.deb` finds
// every dependency installed). Then the DaemonSet's pod runs as the manifest
// says -- command, env, securityContext, volumeMounts, hostPID, read from
// daemonset.yaml and configmap.yaml here, so a change there changes what runs:
//   the init container installs the shim into the host dir;
//   vgpud reads the ConfigMap's vgpud.yaml where the manifest mounts it, on
//     simgpu (bind-mounted as libcuda.so.1/libnvidia-ml.so.1 where the image's
//     loader looks, into containers that ask NVIDIA's runtime for GPUs), and
//     answers `vgpuctl status` from the host through the shared /run/vgpu;
//     its /metrics answers in the pod's network (the liveness probe);
//   the device plugin registers vgpu.io/gpu-memory with a fake kubelet on the
//     kubelet dir, lists the GPUs' memory units, and an Allocate makes a
//     tenant in vgpud, a CDI spec in the CDI dir and an allocation socket in
//     the host dir, naming the shim the init container installed.
// hostPath volumes are directories under the test's own directory; podman
// (Debian's 4.3, runc, cgroupfs, as root) has private storage and
// configuration. Skips, with the reason, when not root or podman, runc,
// python3 or cpack is missing.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "k8s_fake_kubelet.h"
#include "k8s_podman.h"

namespace vgpu::test::k8s {
namespace {

const std::string kDeploy = std::string(VGPU_TREE_DIR) + "/k8s/deploy";

// One container of the pod spec in daemonset.yaml.
struct Container {
  std::string name;
  YAML::Node spec;
};

class K8sDeployImage : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "podman runs the DaemonSet's privileged containers as root only here; not root";
    for (const char* tool : {"podman", "runc", "python3", "cpack", "dpkg-deb"})
      if (on_path(tool).empty()) GTEST_SKIP() << tool << " is not installed (scripts/install-deps.sh installs it)";
    for (const char* bin : {"vgpud", "vgpuctl", "vgpu-device-plugin"})
      ASSERT_EQ(access((bin_dir() + "/" + bin).c_str(), X_OK), 0) << "build " << bin << " first";
    char tmpl[] = "/tmp/vgpu-k8s-image-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    work = tmpl;
    std::ofstream(work + "/containers.conf") << "[engine]\nevents_logger = \"file\"\nevents_logfile_path = \""
                                              << work << "/events.log\"\n";
    ds = YAML::LoadFile(kDeploy + "/daemonset.yaml");
    prefix = "pod" + std::to_string(getpid()) + "-";
  }

  void TearDown() override {
    if (work.empty()) return;
    for (auto& name : started) {
      if (HasFailure()) std::fprintf(stderr, "--- %s ---\n%s\n", name.c_str(), capture(pm() + " logs " + name).c_str());
      sh(pm() + " rm -f -t 0 " + name + " >/dev/null 2>&1");
    }
    if (kubelet_server) kubelet_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    if (pods_server) pods_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    // Anything podman left mounted under the test's directory, then the directory.
    sh("grep -o ' " + work + "[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null");
    sh("rm -rf " + quote(work));
  }

  // Podman with private storage, runtime directory and configuration.
  std::string pm() const {
    return "CONTAINERS_CONF=" + quote(work + "/containers.conf") + " timeout 300 podman --root " +
           quote(work + "/storage") + " --runroot " + quote(work + "/run") + " --tmpdir " + quote(work + "/tmp") +
           " --storage-driver vfs --cgroup-manager=cgroupfs --runtime runc";
  }

  static std::string capture(const std::string& cmd) {
    std::string out;
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
    return out;
  }

  // A hostPath of the manifest, under the test's directory.
  std::string host(const std::string& path) const { return work + "/host" + path; }

  YAML::Node pod() const { return ds["spec"]["template"]["spec"]; }

  Container container(const char* list, const std::string& name) const {
    for (const auto& c : pod()[list])
      if (c["name"].as<std::string>() == name) return {name, c};
    ADD_FAILURE() << "daemonset.yaml: no " << list << " entry named " << name;
    return {name, YAML::Node()};
  }

  // The volume the manifest names, as a host directory (created, as the
  // kubelet does for DirectoryOrCreate and as it has for its own Directory
  // volumes); a configMap volume becomes a directory with its items.
  std::string volume_source(const std::string& name) {
    for (const auto& v : pod()["volumes"]) {
      if (v["name"].as<std::string>() != name) continue;
      if (v["hostPath"]) {
        std::string dir = host(v["hostPath"]["path"].as<std::string>());
        EXPECT_EQ(sh("mkdir -p " + quote(dir)), 0);
        return dir;
      }
      if (v["configMap"]) {
        YAML::Node cm = YAML::LoadFile(kDeploy + "/configmap.yaml");
        EXPECT_EQ(cm["metadata"]["name"].as<std::string>(), v["configMap"]["name"].as<std::string>());
        std::string dir = work + "/configmap-" + name;
        EXPECT_EQ(sh("mkdir -p " + quote(dir)), 0);
        for (const auto& item : v["configMap"]["items"]) {
          std::string data = cm["data"][item["key"].as<std::string>()].as<std::string>();
          std::ofstream(dir + "/" + item["path"].as<std::string>()) << data;
        }
        return dir;
      }
      ADD_FAILURE() << "daemonset.yaml: volume " << name << " is neither hostPath nor configMap (unsupported here)";
    }
    ADD_FAILURE() << "daemonset.yaml: no volume " << name;
    return work + "/missing";
  }

  // `podman run` for a container of the pod as the manifest specifies it.
  // The first long-running container owns the pod's network namespace (no
  // network: the machine has none); the later ones join it, as a pod's
  // containers share one. The init container, which ends, has its own.
  std::string run_command(const Container& c, bool detach) {
    const YAML::Node& s = c.spec;
    std::string name = prefix + c.name;
    std::string cmd = pm() + " run --name " + name + (detach ? " -d" : "");
    cmd += pod_network.empty() || !detach ? std::string(" --network none") : " --network container:" + pod_network;
    if (pod()["hostPID"] && pod()["hostPID"].as<bool>()) cmd += " --pid host";
    // The runtime may not raise limits past ours (no CAP_SYS_RESOURCE in
    // some sandboxes): the container gets ours, capped at podman's defaults.
    struct rlimit nofile{}, nproc{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    getrlimit(RLIMIT_NPROC, &nproc);
    cmd += " --ulimit nofile=" + std::to_string(std::min<rlim_t>(nofile.rlim_max, 1048576)) + ":" +
           std::to_string(std::min<rlim_t>(nofile.rlim_max, 1048576)) + " --ulimit nproc=" +
           std::to_string(std::min<rlim_t>(nproc.rlim_max, 32768)) + ":" +
           std::to_string(std::min<rlim_t>(nproc.rlim_max, 32768));
    bool wants_gpus = false;
    for (const auto& e : s["env"]) {
      std::string key = e["name"].as<std::string>(), value;
      if (e["value"]) {
        value = e["value"].as<std::string>();
      } else if (e["valueFrom"] && e["valueFrom"]["fieldRef"] &&
                 e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>("") == "spec.nodeName") {
        value = "test-node";
      } else {
        ADD_FAILURE() << "daemonset.yaml: " << c.name << " env " << key << ": unsupported here";
      }
      cmd += " -e " + quote(key + "=" + value);
      if (key == "NVIDIA_VISIBLE_DEVICES" && !value.empty() && value != "void" && value != "none") wants_gpus = true;
    }
    if (wants_gpus) {
      // What NVIDIA's runtime injects, here simgpu: the driver libraries
      // where the loader finds them, and the node's simulated GPUs.
      std::string lib = "/usr/lib/x86_64-linux-gnu/";
      cmd += " -v " + quote(simgpu_dir() + "/libcuda.so.1") + ":" + lib + "libcuda.so.1:ro";
      cmd += " -v " + quote(simgpu_dir() + "/libnvidia-ml.so.1") + ":" + lib + "libnvidia-ml.so.1:ro";
      cmd += " -e SIMGPU_STATE=k8s-image-" + std::to_string(getpid()) + " -e SIMGPU_DEVICES=2 -e SIMGPU_MEMORY=4Gi,2Gi";
    }
    if (const YAML::Node sc = s["securityContext"]) {
      if (sc["privileged"] && sc["privileged"].as<bool>()) cmd += " --privileged";
      if (sc["runAsUser"]) cmd += " --user " + sc["runAsUser"].as<std::string>();
      if (sc["allowPrivilegeEscalation"] && !sc["allowPrivilegeEscalation"].as<bool>())
        cmd += " --security-opt no-new-privileges";
    }
    for (const auto& m : s["volumeMounts"]) {
      EXPECT_FALSE(m["subPath"]) << c.name << ": subPath is not supported here";
      cmd += " -v " + quote(volume_source(m["name"].as<std::string>()) + ":" + m["mountPath"].as<std::string>() +
                            (m["readOnly"] && m["readOnly"].as<bool>() ? ":ro" : ""));
    }
    // command replaces the image's entrypoint, args its cmd; the image has
    // neither (checked in build_image), so both are the arguments of run.
    std::vector<std::string> argv;
    for (const auto& a : s["command"]) argv.push_back(a.as<std::string>());
    for (const auto& a : s["args"]) argv.push_back(a.as<std::string>());
    cmd += " " + quote(s["image"].as<std::string>());
    for (auto& a : argv) cmd += " " + quote(a);
    started.push_back(name);
    if (pod_network.empty() && detach) pod_network = name;
    return cmd;
  }

  void build_image(std::string* image) {
    std::string debs = work + "/debs";
    ASSERT_EQ(sh("cd " + quote(build_dir()) + " && cpack -G DEB -B " + quote(debs) + " >" + quote(work + "/cpack.log") +
                 " 2>&1"),
              0)
        << read_file(work + "/cpack.log");
    // The build context holds the .debs only, as the Dockerfile's header says.
    std::string context = work + "/context";
    ASSERT_EQ(sh("mkdir -p " + quote(context) + " && cp " + quote(debs) + "/*.deb " + quote(context + "/")),
              0);
    std::string base_tar = work + "/base.tar";
    ASSERT_EQ(sh("python3 " + quote(std::string(VGPU_TREE_DIR) + "/tests/k8s/host_base_image.py") + " " +
                 quote(base_tar) + " " + quote(work) + "/context/*.deb"),
              0);
    std::string from = capture("sed -n 's/^FROM //p' " + quote(kDeploy + "/Dockerfile"));
    from = from.substr(0, from.find('\n'));
    ASSERT_EQ(from, "debian:bookworm-slim");
    ASSERT_EQ(sh(pm() + " import -q " + quote(base_tar) + " " + from + " >/dev/null"), 0);
    // The image name the DaemonSet's containers use.
    *image = container("containers", "vgpud").spec["image"].as<std::string>();
    std::string log = work + "/build.log";
    int rc = sh(pm() + " build --network none --pull=never -f " + quote(kDeploy + "/Dockerfile") + " -t " +
                quote(*image) + " " + quote(work + "/context") + " >" + quote(log) + " 2>&1");
    ASSERT_EQ(rc, 0) << "podman build of k8s/deploy/Dockerfile:\n" << read_file(log);
    EXPECT_EQ(capture(pm() + " image inspect -f '{{.Config.Entrypoint}}{{.Config.Cmd}}' " + quote(*image)), "[][]\n");
  }

  std::string work, prefix, pod_network;
  YAML::Node ds;
  std::vector<std::string> started;
  FakeKubelet kubelet;
  FakePodResources pods;
  std::unique_ptr<grpc::Server> kubelet_server, pods_server;
};

TEST_F(K8sDeployImage, DaemonSetPodRunsFromTheImageBuiltOffline) {
  std::string image;
  ASSERT_NO_FATAL_FAILURE(build_image(&image));
  for (const char* name : {"install-shim", "vgpud", "device-plugin"}) {
    const char* list = std::string(name) == "install-shim" ? "initContainers" : "containers";
    EXPECT_EQ(container(list, name).spec["image"].as<std::string>(), image) << name;
  }

  // 1. The init container installs the shim into the host dir: the image's
  //    files, from the vgpu package.
  std::string shim = host("/var/lib/vgpu/k8s/lib");
  ASSERT_EQ(sh(run_command(container("initContainers", "install-shim"), false) + " >" + quote(work + "/init.log") +
               " 2>&1"),
            0)
      << read_file(work + "/init.log");
  ASSERT_EQ(sh("mkdir -p " + quote(work + "/pkg") + " && dpkg-deb -x " + quote(work) + "/context/vgpu_*.deb " +
               quote(work + "/pkg")),
            0);
  for (const char* f : {"libvgpu.so", "libvgpu-core.so"})
    EXPECT_EQ(sh("cmp -s " + quote(work + "/pkg/usr/lib/vgpu/" + f) + " " + quote(shim + "/" + f)), 0)
        << f << " is not the package's file in the host dir";

  // 2. vgpud, with the ConfigMap's vgpud.yaml, answers on the shared /run/vgpu.
  ASSERT_EQ(sh(run_command(container("containers", "vgpud"), true) + " >/dev/null"), 0);
  std::string admin_sock = host("/run/vgpu/vgpud-admin.sock");
  std::string vgpuctl = bin_dir() + "/vgpuctl --socket " + quote(admin_sock) + " status";
  ASSERT_TRUE(wait_until([&] { return sh(vgpuctl + " >/dev/null 2>&1") == 0; }, std::chrono::seconds(60)))
      << "vgpud's admin API does not answer at " << admin_sock;
  auto admin = api::Admin::NewStub(grpc::CreateChannel("unix:" + admin_sock, grpc::InsecureChannelCredentials()));
  {
    api::NodeStatus st;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->GetStatus(&ctx, {}, &st).ok());
    EXPECT_EQ(st.gpus_size(), 2) << "vgpud in the container does not see simgpu's two GPUs";
  }
  // The liveness probe: GET /metrics on the named port, in the pod's network.
  std::string pid = capture(pm() + " inspect -f '{{.State.Pid}}' " + pod_network);
  pid = pid.substr(0, pid.find('\n'));
  const YAML::Node vgpud = container("containers", "vgpud").spec;
  const YAML::Node get = vgpud["livenessProbe"]["httpGet"];
  int port = 0;
  for (const auto& p : vgpud["ports"])
    if (p["name"].as<std::string>() == get["port"].as<std::string>()) port = p["containerPort"].as<int>();
  ASSERT_GT(port, 0) << "the liveness probe's port is not a named port of vgpud";
  std::string probe = "nsenter -t " + pid + " -n python3 -c " +
                      quote("import urllib.request as u; r = u.urlopen('http://127.0.0.1:" + std::to_string(port) +
                            get["path"].as<std::string>() +
                            "', timeout=5); print(r.status); print(r.read().decode())");
  std::string metrics = capture(probe);
  EXPECT_EQ(metrics.rfind("200\n", 0), 0u) << probe << ":\n" << metrics.substr(0, 2000);

  // 3. The device plugin registers with the kubelet on the kubelet dir.
  std::string plugins = volume_source("device-plugins");
  {
    grpc::ServerBuilder b;
    b.AddListeningPort("unix://" + plugins + "/kubelet.sock", grpc::InsecureServerCredentials());
    b.RegisterService(&kubelet);
    kubelet_server = b.BuildAndStart();
    ASSERT_TRUE(kubelet_server);
    grpc::ServerBuilder pb;
    pb.AddListeningPort("unix://" + volume_source("pod-resources") + "/kubelet.sock",
                        grpc::InsecureServerCredentials());
    pb.RegisterService(&pods);
    pods_server = pb.BuildAndStart();
    ASSERT_TRUE(pods_server);
  }
  ASSERT_EQ(sh(run_command(container("containers", "device-plugin"), true) + " >/dev/null"), 0);
  ASSERT_TRUE(wait_until([&] { return kubelet.count() > 0; }, std::chrono::seconds(60)))
      << "the device plugin did not register with the fake kubelet";
  dp::RegisterRequest reg = kubelet.last();
  EXPECT_EQ(reg.resource_name(), "vgpu.io/gpu-memory");
  EXPECT_EQ(reg.version(), "v1beta1");
  std::string endpoint = plugins + "/" + reg.endpoint();
  struct stat st{};
  ASSERT_EQ(stat(endpoint.c_str(), &st), 0) << endpoint;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));

  // 4. As the kubelet: the devices (1 GiB units of 4 GiB + 2 GiB), then an allocation.
  auto plugin =
      dp::DevicePlugin::NewStub(grpc::CreateChannel("unix://" + endpoint, grpc::InsecureChannelCredentials()));
  dp::ListAndWatchResponse devices;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stream = plugin->ListAndWatch(&ctx, dp::Empty{});
    ASSERT_TRUE(stream->Read(&devices));
    ctx.TryCancel();
  }
  ASSERT_EQ(devices.devices_size(), 6);
  for (const auto& d : devices.devices()) EXPECT_EQ(d.health(), "Healthy") << d.id();
  dp::PreferredAllocationRequest pref_req;
  auto* want = pref_req.add_container_requests();
  for (const auto& d : devices.devices()) want->add_available_deviceids(d.id());
  want->set_allocation_size(2);
  dp::PreferredAllocationResponse pref;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(plugin->GetPreferredAllocation(&ctx, pref_req, &pref).ok());
  }
  ASSERT_EQ(pref.container_responses_size(), 1);
  dp::AllocateRequest req;
  auto* creq = req.add_container_requests();
  for (const auto& id : pref.container_responses(0).deviceids()) creq->add_devices_ids(id);
  dp::AllocateResponse resp;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::Status s = plugin->Allocate(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_EQ(resp.container_responses_size(), 1);
  const auto& alloc = resp.container_responses(0);
  // Every host path the response names exists on the "host": the shim the
  // init container installed, the socket vgpud created in the host dir.
  ASSERT_GT(alloc.mounts_size(), 0);
  for (const auto& m : alloc.mounts())
    EXPECT_EQ(access(host(m.host_path()).c_str(), F_OK), 0)
        << m.host_path() << " (mounted at " << m.container_path() << ")";
  ASSERT_GT(alloc.cdi_devices_size(), 0);
  EXPECT_NE(capture("ls " + quote(volume_source("cdi"))).find(".json"), std::string::npos)
      << "no CDI spec in the CDI dir";
  // vgpud, asked through the shared /run/vgpu, holds the allocation's tenant.
  api::ListAllocationsResponse all;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->ListAllocations(&ctx, {}, &all).ok());
  }
  EXPECT_EQ(all.allocations_size(), 1);

  // 5. The pod ends cleanly: vgpud stops on SIGTERM and removes its sockets.
  EXPECT_EQ(sh(pm() + " stop -t 20 " + prefix + "device-plugin " + pod_network + " >/dev/null 2>&1"), 0);
  EXPECT_EQ(capture(pm() + " inspect -f '{{.State.ExitCode}}' " + pod_network), "0\n");
  EXPECT_NE(access(admin_sock.c_str(), F_OK), 0) << "the admin socket is left after vgpud's stop";
}

}  // namespace
}  // namespace vgpu::test::k8s
