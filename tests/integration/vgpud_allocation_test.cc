// Allocation tenants (issue 10): a tenant with a memory quota per GPU and a
// hook socket of its own, created through the admin API. A process that
// connects to that socket is that tenant without a token and gets exactly
// its quota; a token of another tenant there is refused; the allocation
// survives a restart of vgpud (socket re-created); deleting it removes the
// socket and its directory; bad requests create nothing.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <string>

#include "vgpu/atomic_file.h"
#include "admin.grpc.pb.h"
#include "state_store.h"
#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::program;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;
namespace api = vgpu::admin::v1;

constexpr uint64_t kMi = 1ull << 20;
const char* kTenants = "  - {name: other, token: other-tenant-token-1, memory: 1Gi}\n";

struct Admin {
  explicit Admin(const std::string& sock)
      : stub(api::Admin::NewStub(grpc::CreateChannel("unix:" + sock, grpc::InsecureChannelCredentials()))) {}
  template <class Req, class Resp, class M>
  grpc::Status call(M m, const Req& req, Resp* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    return ((*stub).*m)(&ctx, req, out);
  }
  std::vector<std::string> gpu_uuids() {
    api::NodeStatus st;
    EXPECT_TRUE(call(&api::Admin::Stub::GetStatus, api::GetStatusRequest(), &st).ok());
    std::vector<std::string> out;
    for (auto& g : st.gpus()) out.push_back(g.uuid());
    return out;
  }
  std::unique_ptr<api::Admin::Stub> stub;
};

api::CreateAllocationRequest request(const std::string& name, const std::vector<std::pair<std::string, uint64_t>>& q,
                                     const std::string& root) {
  api::CreateAllocationRequest r;
  r.mutable_spec()->set_name(name);
  r.mutable_spec()->set_socket_root(root);
  for (auto& [uuid, bytes] : q) {
    auto* x = r.mutable_spec()->add_quotas();
    x->set_gpu_uuid(uuid);
    x->set_memory_bytes(bytes);
  }
  return r;
}

// Environment of a hooked process that talks to `socket` with `token`.
std::map<std::string, std::string> env_for(VgpudFixture& f, const std::string& socket, const std::string& token) {
  auto env = f.tenant_env(token);
  env["VGPU_SOCKET"] = socket;
  return env;
}

class VgpudAllocation : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    ASSERT_TRUE(f.start(&why)) << why;
    admin = std::make_unique<Admin>(f.admin_socket());
    uuids = admin->gpu_uuids();
    ASSERT_EQ(uuids.size(), 2u);
    root = f.dir() + "/host/sockets";
  }
  VgpudFixture f{kTenants, {{"SIMGPU_DEVICES", "2"}, {"SIMGPU_MEMORY", "4Gi"}}};
  std::unique_ptr<Admin> admin;
  std::vector<std::string> uuids;
  std::string root;
};

TEST_F(VgpudAllocation, OwnSocketIsTheTenantAndEnforcesItsPerGpuQuota) {
  api::Allocation a;
  auto st = admin->call(&api::Admin::Stub::CreateAllocation, request("k8s-a1", {{uuids[0], 256 * kMi}, {uuids[1], 512 * kMi}}, root), &a);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_FALSE(a.existed());
  EXPECT_TRUE(a.listening());
  EXPECT_EQ(a.socket_dir(), root + "/k8s-a1");
  EXPECT_EQ(a.socket_path(), root + "/k8s-a1/vgpud.sock");
  struct stat s{};
  ASSERT_EQ(stat(a.socket_path().c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0666u);
  ASSERT_EQ(stat(a.socket_dir().c_str(), &s), 0);
  EXPECT_EQ(s.st_mode & 0777, 0755u);
  // A quota per GPU, not the largest everywhere.
  ASSERT_EQ(a.tenant().gpus_size(), 2);
  EXPECT_EQ(a.tenant().gpus(0).memory_limit_bytes(), 256 * kMi);
  EXPECT_EQ(a.tenant().gpus(1).memory_limit_bytes(), 512 * kMi);

  // No token: the socket is the identity. On GPU 0, 200 MiB fits, 300 MiB does not.
  auto env = env_for(f, a.socket_path(), "");
  vgpu::test::Child ok({program("vgpud_alloc_retry"), std::to_string(200 * kMi), "0", "3000"}, env);
  ASSERT_TRUE(vgpu::test::wait_until(
      [&] {
        api::ListProcessesResponse procs;
        api::ListProcessesRequest req;
        req.set_tenant("k8s-a1");
        return admin->call(&api::Admin::Stub::ListProcesses, req, &procs).ok() && procs.processes_size() == 1;
      },
      20s))
      << ok.errors();
  EXPECT_EQ(ok.wait(30s), 0) << ok.errors();
  vgpu::test::Child over({program("vgpud_alloc_retry"), std::to_string(300 * kMi), "0"}, env);
  EXPECT_EQ(over.wait(30s), 3) << "an allocation past the quota must be refused: " << over.output() << over.errors();
}

TEST_F(VgpudAllocation, AnotherTenantsTokenOnTheSocketIsRefused) {
  api::Allocation a;
  ASSERT_TRUE(admin->call(&api::Admin::Stub::CreateAllocation, request("k8s-a2", {{uuids[0], 1ull << 30}}, root), &a).ok());
  vgpu::test::Child p({program("vgpud_refusal_probe")}, env_for(f, a.socket_path(), "other-tenant-token-1"));
  ASSERT_EQ(p.wait(30s), 0) << p.errors();
  EXPECT_NE(p.output().find("alloc=2 "), std::string::npos) << "refused expected: " << p.output();
}

TEST_F(VgpudAllocation, ReplayIsIdempotentOtherQuotasAreNot) {
  api::Allocation a, b;
  auto req = request("k8s-a3", {{uuids[0], 512 * kMi}, {uuids[1], 256 * kMi}}, root);
  ASSERT_TRUE(admin->call(&api::Admin::Stub::CreateAllocation, req, &a).ok());
  ASSERT_TRUE(admin->call(&api::Admin::Stub::CreateAllocation, req, &b).ok());
  EXPECT_TRUE(b.existed());
  auto other = request("k8s-a3", {{uuids[0], 1ull << 30}}, root);
  auto st = admin->call(&api::Admin::Stub::CreateAllocation, other, &b);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  // A plain tenant's name is not an allocation.
  st = admin->call(&api::Admin::Stub::CreateAllocation, request("other", {{uuids[0], kMi}}, root), &b);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
}

TEST_F(VgpudAllocation, BadRequestsCreateNothing) {
  struct Case {
    api::CreateAllocationRequest req;
    const char* expect;
  };
  std::vector<Case> cases = {
      {request("k8s-b1", {{"GPU-00000000-0000-0000-0000-000000000000", kMi}}, root), "no GPU with UUID"},
      {request("k8s-b2", {{uuids[0], 0}}, root), "is 0"},
      {request("k8s-b3", {}, root), "at least one GPU"},
      {request("k8s-b4", {{uuids[0], kMi}, {uuids[0], kMi}}, root), "two quotas"},
      {request("k8s-b5", {{uuids[0], kMi}}, "relative/dir"), "not an absolute path"},
      {request("k8s-b6", {{uuids[0], kMi}}, "/tmp/../etc"), "'..'"},
      {request("k8s-b7", {{uuids[0], kMi}}, "/" + std::string(120, 'x')), "too long"},
      {request("Bad_Name", {{uuids[0], kMi}}, root), "not a valid name"},
      {request("k8s-b8", {{uuids[0], 64ull << 30}}, root), "above the memory"},
  };
  for (auto& c : cases) {
    api::Allocation a;
    auto st = admin->call(&api::Admin::Stub::CreateAllocation, c.req, &a);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.expect << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.expect), std::string::npos) << st.error_message();
    EXPECT_NE(access((root + "/" + c.req.spec().name()).c_str(), F_OK), 0) << "left a directory: " << c.expect;
  }
  api::ListAllocationsResponse all;
  ASSERT_TRUE(admin->call(&api::Admin::Stub::ListAllocations, api::ListAllocationsRequest(), &all).ok());
  EXPECT_EQ(all.allocations_size(), 0);
}

TEST_F(VgpudAllocation, SurvivesRestartAndDeleteRemovesTheSocket) {
  api::Allocation a;
  auto req = request("k8s-a4", {{uuids[0], 300 * kMi}}, root);
  req.mutable_spec()->mutable_labels()->set_namespace_("team-a");
  ASSERT_TRUE(admin->call(&api::Admin::Stub::CreateAllocation, req, &a).ok());
  api::SetAllocationLabelsRequest lr;
  lr.set_name("k8s-a4");
  lr.mutable_labels()->set_namespace_("team-a");
  lr.mutable_labels()->set_pod("trainer-0");
  lr.mutable_labels()->set_container("main");
  api::Allocation labeled;
  ASSERT_TRUE(admin->call(&api::Admin::Stub::SetAllocationLabels, lr, &labeled).ok());
  EXPECT_EQ(labeled.spec().labels().pod(), "trainer-0");
  lr.mutable_labels()->set_pod(std::string(300, 'p'));
  EXPECT_EQ(admin->call(&api::Admin::Stub::SetAllocationLabels, lr, &labeled).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  lr.set_name("other");
  EXPECT_EQ(admin->call(&api::Admin::Stub::SetAllocationLabels, lr, &labeled).error_code(), grpc::StatusCode::NOT_FOUND);
  f.kill_daemon();
  unlink(a.socket_path().c_str());  // as if the host's /run was cleared
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  // The killed vgpud's admin socket file may still be there until the new
  // one binds it: ask until it answers.
  api::ListAllocationsResponse all;
  grpc::Status listed;
  ASSERT_TRUE(wait_until(
      [&] {
        admin = std::make_unique<Admin>(f.admin_socket());  // a fresh channel, no reconnect backoff
        listed = admin->call(&api::Admin::Stub::ListAllocations, api::ListAllocationsRequest(), &all);
        return listed.ok();
      },
      20s))
      << listed.error_message();
  ASSERT_EQ(all.allocations_size(), 1);
  const auto& got = all.allocations(0);
  EXPECT_EQ(got.spec().name(), "k8s-a4");
  EXPECT_TRUE(got.listening());
  EXPECT_EQ(got.spec().labels().namespace_(), "team-a");
  EXPECT_EQ(got.spec().labels().pod(), "trainer-0");
  EXPECT_EQ(got.spec().labels().container(), "main");
  ASSERT_EQ(got.spec().quotas_size(), 1);
  EXPECT_EQ(got.spec().quotas(0).memory_bytes(), 300 * kMi);
  EXPECT_EQ(got.tenant().gpus(0).memory_limit_bytes(), 300 * kMi);
  EXPECT_EQ(got.tenant().source(), "allocation");
  EXPECT_EQ(got.tenant().kubernetes().pod(), "trainer-0");
  EXPECT_EQ(got.tenant().gpus(1).memory_limit_bytes(), 0u);
  EXPECT_EQ(access(a.socket_path().c_str(), F_OK), 0) << "socket not re-created";
  // The re-created socket is that tenant.
  vgpu::test::Child p({program("vgpud_refusal_probe")}, env_for(f, a.socket_path(), ""));
  ASSERT_EQ(p.wait(30s), 0) << p.output() << p.errors() << f.daemon_log();
  EXPECT_NE(p.output().find("alloc=0 "), std::string::npos) << p.output();

  // GPUs and quotas of an allocation are fixed; its compute may change.
  api::UpdateTenantRequest up;
  up.set_name("k8s-a4");
  up.set_memory_bytes(kMi);
  api::Tenant t;
  EXPECT_EQ(admin->call(&api::Admin::Stub::UpdateTenant, up, &t).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  api::UpdateTenantRequest compute;
  compute.set_name("k8s-a4");
  compute.set_compute_request(0.3);
  EXPECT_TRUE(admin->call(&api::Admin::Stub::UpdateTenant, compute, &t).ok());

  api::DeleteAllocationRequest del;
  del.set_name("k8s-a4");
  api::DeleteAllocationResponse none;
  ASSERT_TRUE(admin->call(&api::Admin::Stub::DeleteAllocation, del, &none).ok());
  EXPECT_NE(access(a.socket_path().c_str(), F_OK), 0);
  EXPECT_NE(access(a.socket_dir().c_str(), F_OK), 0);
  api::GetTenantRequest g;
  g.set_name("k8s-a4");
  EXPECT_EQ(admin->call(&api::Admin::Stub::GetTenant, g, &t).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(admin->call(&api::Admin::Stub::DeleteAllocation, del, &none).error_code(), grpc::StatusCode::NOT_FOUND);
  // A plain tenant cannot be deleted as an allocation.
  del.set_name("other");
  EXPECT_EQ(admin->call(&api::Admin::Stub::DeleteAllocation, del, &none).error_code(), grpc::StatusCode::NOT_FOUND);
}

// Metrics name the Kubernetes container of an allocation tenant (an info
// series to join on `tenant`), follow label changes and go with the tenant.
TEST(VgpudAllocationMetrics, InfoSeriesCarriesTheKubernetesNames) {
  int port = vgpu::test::free_port();
  VgpudFixture f(kTenants, {}, "metrics: 127.0.0.1:" + std::to_string(port) + "\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  Admin admin(f.admin_socket());
  auto uuids = admin.gpu_uuids();
  api::Allocation a;
  auto req = request("k8s-m1", {{uuids[0], kMi}}, f.dir() + "/s");
  req.mutable_spec()->mutable_labels()->set_namespace_("team-a");
  req.mutable_spec()->mutable_labels()->set_pod("trainer-0");
  ASSERT_TRUE(admin.call(&api::Admin::Stub::CreateAllocation, req, &a).ok());
  auto has = [&](const std::string& part) {
    std::string m = vgpu::test::scrape_metrics(port);
    for (size_t at = m.find("\nvgpu_tenant_info{"); at != std::string::npos; at = m.find("\nvgpu_tenant_info{", at + 1)) {
      std::string line = m.substr(at + 1, m.find('\n', at + 1) - at - 1);
      if (line.find(part) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(wait_until([&] { return has("pod=\"trainer-0\""); }, 10s));
  EXPECT_TRUE(has("namespace=\"team-a\""));
  EXPECT_FALSE(has("tenant=\"other\"")) << "a plain tenant has no info series";

  api::SetAllocationLabelsRequest lr;
  lr.set_name("k8s-m1");
  lr.mutable_labels()->set_namespace_("team-a");
  lr.mutable_labels()->set_pod("trainer-1");
  lr.mutable_labels()->set_container("main");
  ASSERT_TRUE(admin.call(&api::Admin::Stub::SetAllocationLabels, lr, &a).ok());
  EXPECT_TRUE(wait_until([&] { return has("pod=\"trainer-1\"") && !has("pod=\"trainer-0\""); }, 10s));

  api::DeleteAllocationRequest del;
  del.set_name("k8s-m1");
  api::DeleteAllocationResponse none;
  ASSERT_TRUE(admin.call(&api::Admin::Stub::DeleteAllocation, del, &none).ok());
  EXPECT_TRUE(wait_until([&] { return !has("tenant=\"k8s-m1\""); }, 10s));
}

// An allocation whose GPU is gone does not keep vgpud from starting: it is
// kept in the state file, not served, and can be deleted.
TEST(VgpudAllocationState, MissingGpuLeavesTheAllocationDormantNotVgpudDown) {
  VgpudFixture f(kTenants);
  std::string state = f.dir() + "/state";
  ASSERT_EQ(mkdir(state.c_str(), 0700), 0);
  vgpu::sched::StoredTenant gone;
  gone.tenant.name = "k8s-gone";
  gone.tenant.token = "0123456789abcdef0123456789abcdef";
  const std::string missing = "GPU-00000000-0000-0000-0000-000000000000";
  gone.tenant.device_memory = {{missing, kMi}};
  gone.tenant.devices = {missing};
  gone.tenant.memory = kMi;
  gone.source = vgpu::sched::Source::kApi;
  gone.allocation = vgpu::sched::AllocationRecord{f.dir() + "/s", "team-a", "p", "c"};
  ASSERT_TRUE(vgpu::write_file_atomically(state + "/tenants.yaml", vgpu::sched::format_state({gone}), 0600));
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  EXPECT_NE(f.daemon_log().find("allocation 'k8s-gone' is kept but not served"), std::string::npos) << f.daemon_log();
  Admin admin(f.admin_socket());
  api::ListAllocationsResponse all;
  ASSERT_TRUE(admin.call(&api::Admin::Stub::ListAllocations, api::ListAllocationsRequest(), &all).ok());
  EXPECT_EQ(all.allocations_size(), 0);
  EXPECT_NE(vgpu::test::read_file(state + "/tenants.yaml").find("k8s-gone"), std::string::npos) << "dropped";
  api::Allocation a;
  auto uuids = admin.gpu_uuids();
  EXPECT_EQ(admin.call(&api::Admin::Stub::CreateAllocation, request("k8s-gone", {{uuids[0], kMi}}, f.dir() + "/s"), &a)
                .error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  api::DeleteAllocationRequest del;
  del.set_name("k8s-gone");
  api::DeleteAllocationResponse none;
  ASSERT_TRUE(admin.call(&api::Admin::Stub::DeleteAllocation, del, &none).ok());
  EXPECT_EQ(vgpu::test::read_file(state + "/tenants.yaml").find("k8s-gone"), std::string::npos);
}

// A connection (no Hello) to `path`; -1 if connect failed.
int raw_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// True if vgpud closed `fd` within 300 ms (well inside the Hello timeout).
bool closed_soon(int fd) {
  timeval tv{0, 300'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char b[64];
  return recv(fd, b, sizeof b, 0) == 0;
}

// The node's socket and the allocations' sockets share one Admission: a uid
// at its connection cap on one is refused on the other.
TEST(VgpudAllocationLimits, OwnSocketsShareTheConnectionCaps) {
  VgpudFixture f(kTenants, {}, "limits: {max_connections_per_uid: 2, hello_timeout: 5s}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  Admin admin(f.admin_socket());
  api::Allocation a;
  auto uuids = admin.gpu_uuids();
  ASSERT_TRUE(admin.call(&api::Admin::Stub::CreateAllocation, request("k8s-c1", {{uuids[0], kMi}}, f.dir() + "/s"), &a).ok());
  int first = raw_connect(f.socket());
  ASSERT_GE(first, 0);
  int own = raw_connect(a.socket_path());
  ASSERT_GE(own, 0);
  EXPECT_FALSE(closed_soon(own)) << "within the cap, the connection must stay";
  int over = raw_connect(a.socket_path());  // the third of this uid
  ASSERT_GE(over, 0);
  EXPECT_TRUE(closed_soon(over)) << "over the per-uid cap on the allocation's socket";
  close(own);
  EXPECT_TRUE(wait_until(
      [&] {
        int again = raw_connect(a.socket_path());
        bool kept = again >= 0 && !closed_soon(again);
        if (again >= 0) close(again);
        return kept;
      },
      5s))
      << "a slot freed on one socket counts for the other";
  close(first);
  close(over);
}

}  // namespace
