// Compute annotations (issue 10): the device plugin reads the pod of an
// allocation from a fake API server (tests/support/k8s_fake_apiserver.h,
// kubeconfig with a token), maps it through a fake PodResources server and
// sets the allocation tenant's compute request, limit and priority in a
// real vgpud: in PreStartContainer, live when the annotations change, with
// Warning events and defaults for bad values, and with defaults and retries
// while the API server is down.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <cmath>
#include <fstream>

#include "api_client.h"
#include "k8s_fake_apiserver.h"
#include "k8s_fake_kubelet.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::wait_until;
using vgpu::test::k8s::FakeApiServer;
using vgpu::test::k8s::FakePodResources;
using vgpu::test::k8s::K8sPlugin;
namespace api = vgpu::admin::v1;
namespace dp = v1beta1;

class K8sAnnotations : public K8sPlugin {
 protected:
  void SetUp() override {
    K8sPlugin::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(apiserver.start());
    kubeconfig = vgpud.dir() + "/kubeconfig";
    apiserver.write_kubeconfig(kubeconfig);
    pods_server = serve_pod_resources(pods);
    ASSERT_TRUE(pods_server);
  }
  void TearDown() override {
    K8sPlugin::TearDown();
    if (pods_server) pods_server->Shutdown(std::chrono::system_clock::now() + 1s);
    apiserver.stop();
  }
  // The plugin with the fake API server; `interval`: --annotation-interval.
  void restart_plugin(const std::string& interval) {
    plugin.reset();
    start_plugin({"--kubeconfig", kubeconfig, "--annotation-interval", interval});
  }
  void pre_start(const std::vector<std::string>& devs) {
    dp::PreStartContainerRequest req;
    for (auto& id : devs) req.add_devices_ids(id);
    dp::PreStartContainerResponse out;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    auto st = client()->PreStartContainer(&ctx, req, &out);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  // Allocates `devs` (container c0 of team-a/trainer-0 in PodResources).
  std::string allocate_listed(const std::vector<std::vector<std::string>>& containers) {
    pods.set(containers);
    for (auto& devs : containers) {
      dp::AllocateResponse resp;
      auto st = allocate({devs}, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
    }
    return vgpu::k8s::allocation_id(containers[0]);
  }
  api::TenantSpec spec(const std::string& alloc) {
    api::GetTenantRequest g;
    g.set_name(alloc);
    api::Tenant t;
    grpc::ClientContext ctx;
    EXPECT_TRUE(admin->GetTenant(&ctx, g, &t).ok()) << alloc;
    return t.spec();
  }
  bool has(const std::string& alloc, double request, double limit, const std::string& priority) {
    auto s = spec(alloc);
    return std::fabs(s.compute_request() - request) < 1e-9 && std::fabs(s.compute_limit() - limit) < 1e-9 &&
           s.priority() == priority;
  }
  std::string describe(const std::string& alloc) {
    auto s = spec(alloc);
    return "request " + std::to_string(s.compute_request()) + " limit " + std::to_string(s.compute_limit()) +
           " priority " + s.priority();
  }

  FakeApiServer apiserver;
  FakePodResources pods;
  std::unique_ptr<grpc::Server> pods_server;
  std::string kubeconfig;
};

TEST_F(K8sAnnotations, PreStartContainerAppliesTheAnnotationsContainerKeysWinning) {
  restart_plugin("0");  // no rounds: only PreStartContainer applies
  apiserver.set_pod("team-a", "trainer-0",
                    {{"vgpu.io/compute-request", "30%"},
                     {"vgpu.io/compute-limit", "80%"},
                     {"vgpu.io/compute-limit.c0", "0.6"},  // c0's own key wins
                     {"vgpu.io/compute-limit.other", "10%"},
                     {"vgpu.io/priority", "high"},
                     {"example.com/compute-request", "90%"}});  // another domain: ignored
  std::string alloc = allocate_listed({ids(0, {0, 1})});
  EXPECT_TRUE(has(alloc, 0, 1, "normal")) << "before PreStartContainer: " << describe(alloc);
  pre_start(ids(0, {0, 1}));
  EXPECT_TRUE(has(alloc, 0.3, 0.6, "high")) << describe(alloc);
  EXPECT_TRUE(apiserver.events().empty()) << apiserver.events()[0].dump();
  EXPECT_EQ(apiserver.unauthorized(), 0u) << "the kubeconfig's token was not sent";
}

TEST_F(K8sAnnotations, BadValuesKeepDefaultsAndAreReportedOnceAsAnEvent) {
  restart_plugin("100ms");
  apiserver.set_pod("team-a", "trainer-0",
                    {{"vgpu.io/compute-request", "lots"}, {"vgpu.io/compute-limit", "50%"}, {"vgpu.io/priority", "urgent"}});
  std::string alloc = allocate_listed({ids(0, {0})});
  pre_start(ids(0, {0}));
  EXPECT_TRUE(has(alloc, 0, 0.5, "normal")) << "the good value applies, the bad ones keep defaults: " << describe(alloc);
  ASSERT_TRUE(wait_until([&] { return !apiserver.events().empty(); }, 10s)) << "no event";
  auto e = apiserver.events()[0];
  EXPECT_EQ(e["reason"], "InvalidVgpuAnnotation");
  EXPECT_EQ(e["type"], "Warning");
  EXPECT_EQ(e["involvedObject"]["kind"], "Pod");
  EXPECT_EQ(e["involvedObject"]["name"], "trainer-0");
  EXPECT_EQ(e["involvedObject"]["namespace"], "team-a");
  EXPECT_EQ(e["involvedObject"]["uid"], "uid-team-a-trainer-0");
  std::string msg = e["message"];
  EXPECT_NE(msg.find("vgpu.io/compute-request: 'lots'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'urgent'"), std::string::npos) << msg;
  // Rounds go on reading the pod; the same problem is not reported again.
  size_t reads = apiserver.pod_reads();
  ASSERT_TRUE(wait_until([&] { return apiserver.pod_reads() >= reads + 3; }, 10s));
  EXPECT_EQ(apiserver.events().size(), 1u);

  // A request above the limit: no request, the limit applies.
  apiserver.set_pod("team-a", "trainer-0", {{"vgpu.io/compute-request", "70%"}, {"vgpu.io/compute-limit", "40%"}});
  EXPECT_TRUE(wait_until([&] { return has(alloc, 0, 0.4, "normal"); }, 10s)) << describe(alloc);
  ASSERT_TRUE(wait_until([&] { return apiserver.events().size() == 2u; }, 10s));
  std::string msg2 = apiserver.events()[1]["message"];
  EXPECT_NE(msg2.find("above the limit"), std::string::npos) << msg2;
}

TEST_F(K8sAnnotations, RequestsOverTheWholeGpuAreRefusedByVgpudAndReported) {
  restart_plugin("0");
  apiserver.set_pod("team-a", "trainer-0", {{"vgpu.io/compute-request", "60%"}, {"vgpu.io/priority", "low"}});
  auto c0 = ids(0, {0}), c1 = ids(0, {1});  // two containers of the pod on GPU 0: 120 %
  std::string a0 = allocate_listed({c0, c1}), a1 = vgpu::k8s::allocation_id(c1);
  pre_start(c0);
  pre_start(c1);
  EXPECT_TRUE(has(a0, 0.6, 1, "low")) << describe(a0);
  EXPECT_TRUE(has(a1, 0, 1, "low")) << "the second request does not fit: " << describe(a1);
  ASSERT_EQ(apiserver.events().size(), 1u);
  EXPECT_EQ(apiserver.events()[0]["involvedObject"]["fieldPath"], "spec.containers{c1}");
  std::string msg = apiserver.events()[0]["message"];
  EXPECT_NE(msg.find("60%"), std::string::npos) << msg;
}

TEST_F(K8sAnnotations, ARefusedRequestAppliesOnceItFits) {
  restart_plugin("100ms");
  apiserver.set_pod("team-a", "trainer-0", {{"vgpu.io/compute-request", "60%"}});
  auto c0 = ids(0, {0}), c1 = ids(0, {1});
  std::string a0 = allocate_listed({c0, c1}), a1 = vgpu::k8s::allocation_id(c1);
  pre_start(c0);
  pre_start(c1);
  // Rounds may have come first: one of the two has its 60 %, the other none.
  ASSERT_TRUE(wait_until([&] { return has(a0, 0.6, 1, "normal") != has(a1, 0.6, 1, "normal"); }, 10s))
      << describe(a0) << " / " << describe(a1);
  EXPECT_TRUE(has(a0, 0, 1, "normal") || has(a1, 0, 1, "normal"));
  ASSERT_TRUE(wait_until([&] { return apiserver.events().size() == 1u; }, 10s));
  // c0 asks less: both fit (30 % + 60 %), whichever was refused.
  apiserver.set_pod("team-a", "trainer-0", {{"vgpu.io/compute-request", "60%"}, {"vgpu.io/compute-request.c0", "30%"}});
  EXPECT_TRUE(wait_until([&] { return has(a0, 0.3, 1, "normal") && has(a1, 0.6, 1, "normal"); }, 10s))
      << describe(a0) << " / " << describe(a1);
  EXPECT_EQ(apiserver.events().size(), 1u);
}

TEST_F(K8sAnnotations, AnnotationChangesOnARunningPodApplyLive) {
  restart_plugin("100ms");
  apiserver.set_pod("team-a", "trainer-0", {{"vgpu.io/compute-request", "30%"}});
  std::string alloc = allocate_listed({ids(1, {0, 1})});
  pre_start(ids(1, {0, 1}));
  EXPECT_TRUE(has(alloc, 0.3, 1, "normal")) << describe(alloc);
  apiserver.set_pod("team-a", "trainer-0", {{"vgpu.io/compute-request", "50%"}, {"vgpu.io/priority.c0", "high"}});
  EXPECT_TRUE(wait_until([&] { return has(alloc, 0.5, 1, "high"); }, 10s)) << describe(alloc);
  // Annotations removed: back to the defaults.
  apiserver.set_pod("team-a", "trainer-0", {});
  EXPECT_TRUE(wait_until([&] { return has(alloc, 0, 1, "normal"); }, 10s)) << describe(alloc);
  EXPECT_TRUE(apiserver.events().empty());
}

TEST_F(K8sAnnotations, ApiServerDownKeepsDefaultsAndIsRetried) {
  int port = apiserver.port();
  apiserver.stop();  // connections to the kubeconfig's server are refused
  restart_plugin("100ms");
  apiserver.set_pod("team-a", "trainer-0", {{"vgpu.io/compute-request", "25%"}, {"vgpu.io/priority", "high"}});
  std::string alloc = allocate_listed({ids(0, {2})});
  pre_start(ids(0, {2}));  // the container starts anyway
  EXPECT_TRUE(has(alloc, 0, 1, "normal")) << describe(alloc);
  EXPECT_EQ(labels_of(alloc).pod(), "trainer-0") << "labels do not wait for the API server";
  EXPECT_TRUE(plugin->running());
  ASSERT_TRUE(apiserver.start(port));
  EXPECT_TRUE(wait_until([&] { return has(alloc, 0.25, 1, "high"); }, 10s)) << describe(alloc);
}

TEST_F(K8sAnnotations, APodTheApiServerNoLongerHasKeepsItsSettingsQuietly) {
  restart_plugin("100ms");
  apiserver.set_pod("team-a", "trainer-0", {{"vgpu.io/compute-limit", "70%"}});
  std::string alloc = allocate_listed({ids(1, {3})});
  pre_start(ids(1, {3}));
  EXPECT_TRUE(has(alloc, 0, 0.7, "normal")) << describe(alloc);
  apiserver.remove_pod("team-a", "trainer-0");  // deleted; PodResources still lists it for a moment
  size_t reads = apiserver.pod_reads();
  ASSERT_TRUE(wait_until([&] { return apiserver.pod_reads() >= reads + 3; }, 10s));
  EXPECT_TRUE(has(alloc, 0, 0.7, "normal")) << describe(alloc);
  EXPECT_EQ(plugin->errors().find("compute annotations not applied"), std::string::npos) << plugin->errors();
}

TEST_F(K8sAnnotations, AnUnusableKubeconfigStopsThePluginNamingTheKey) {
  plugin.reset();
  std::ofstream(kubeconfig) << "current-context: c\ncontexts:\n- name: c\n  context: {cluster: a, user: u}\n"
                               "clusters:\n- name: a\n  cluster: {server: 'https://127.0.0.1:1'}\n"
                               "users:\n- name: u\n  user: {client-key-data: '@@'}\n";
  Child bad({vgpu::test::bin_dir() + "/vgpu-device-plugin", "--kubelet-root", root, "--admin-socket",
             vgpud.admin_socket(), "--cdi-dir", cdi, "--host-dir", host, "--kubeconfig", kubeconfig},
            {});
  EXPECT_EQ(bad.wait(20s), 1);
  EXPECT_NE(bad.errors().find(kubeconfig + ": users[u].user.client-key-data: not base64"), std::string::npos)
      << bad.errors();
}

TEST(K8sApiClient, SendsTheTokenAndTellsUnreachableFromNotFound) {
  FakeApiServer server("s3cret");
  ASSERT_TRUE(server.start());
  server.set_pod("ns", "p", {{"a", "b"}});
  vgpu::k8s::ApiCredentials c;
  c.server = server.url();
  c.token = "s3cret";
  vgpu::k8s::ApiClient client(c, 5s);
  auto pod = client.get_pod("ns", "p");
  ASSERT_TRUE(pod) << pod.error();
  EXPECT_EQ((*pod)["metadata"]["annotations"]["a"], "b");
  bool gone = false;
  auto missing = client.get_pod("ns", "q", &gone);
  EXPECT_FALSE(missing);
  EXPECT_TRUE(gone);
  EXPECT_NE(missing.error().find("HTTP 404"), std::string::npos) << missing.error();
  EXPECT_FALSE(client.get_pod("ns", "../x")) << "a name that changes the path";

  c.token = "wrong";
  vgpu::k8s::ApiClient bad(c, 5s);
  auto refused = bad.get_pod("ns", "p", &gone);
  ASSERT_FALSE(refused);
  EXPECT_FALSE(gone);
  EXPECT_NE(refused.error().find("HTTP 401"), std::string::npos) << refused.error();
  EXPECT_NE(refused.error().find("Unauthorized"), std::string::npos) << refused.error();

  server.stop();
  auto down = client.get_pod("ns", "p", &gone);
  ASSERT_FALSE(down);
  EXPECT_FALSE(gone);
  EXPECT_NE(down.error().find("unreachable"), std::string::npos) << down.error();
}

}  // namespace
