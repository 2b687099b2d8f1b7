// The admin API (gRPC) of a real vgpud, called directly: tenants created,
// changed and deleted at run time take effect on running processes and
// survive a restart; callers other than root (or the admin group) are refused.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin.grpc.pb.h"
#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
namespace pb = vgpu::admin::v1;
using vgpu::test::bin_dir;
using vgpu::test::json_number;
using vgpu::test::VgpudFixture;

std::unique_ptr<pb::Admin::Stub> connect(const VgpudFixture& f) {
  // A channel of its own: a restarted vgpud must not be reached through a
  // connection gRPC pooled for the previous one.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return pb::Admin::NewStub(
      grpc::CreateCustomChannel("unix:" + f.admin_socket(), grpc::InsecureChannelCredentials(), args));
}

grpc::ClientContext* deadline(grpc::ClientContext* c) {
  c->set_deadline(std::chrono::system_clock::now() + 10s);
  return c;
}

const char* kTenants = "  - {name: base, token: base-tenant-token-1, memory: 1Gi, compute: {request: 20%}}\n";

TEST(VgpudAdmin, CreateUpdateDeleteTenantsAtRunTime) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto api = connect(f);
  pb::CreateTenantRequest create;
  create.mutable_spec()->set_name("newbie");
  create.mutable_spec()->set_memory_bytes(512ull << 20);
  create.mutable_spec()->set_compute_request(0.3);
  pb::TenantWithToken created;
  grpc::ClientContext c1;
  ASSERT_TRUE(api->CreateTenant(deadline(&c1), create, &created).ok());
  EXPECT_EQ(created.token().size(), 32u);
  EXPECT_EQ(created.tenant().source(), "api");

  // The new tenant's process is admitted with the returned token.
  auto w = f.run({bin_dir() + "/vgpu-workload", "--count", "3", "--alloc-size", "512Mi", "--json"}, created.token());
  ASSERT_EQ(w->wait(60s), 0) << w->errors();
  EXPECT_EQ(json_number(w->output(), "ok"), 1) << w->output();

  // Requests over 100% are refused with the reason.
  pb::UpdateTenantRequest bad;
  bad.set_name("newbie");
  bad.set_compute_request(0.9);
  pb::Tenant out;
  grpc::ClientContext c2;
  grpc::Status st = api->UpdateTenant(deadline(&c2), bad, &out);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("100%"), std::string::npos) << st.error_message();

  pb::UpdateTenantRequest raise;
  raise.set_name("newbie");
  raise.set_memory_bytes(2ull << 30);
  grpc::ClientContext c3;
  ASSERT_TRUE(api->UpdateTenant(deadline(&c3), raise, &out).ok());
  EXPECT_EQ(out.spec().memory_bytes(), 2ull << 30);

  pb::GetTenantRequest get;
  get.set_name("nobody-here");
  grpc::ClientContext c4;
  EXPECT_EQ(api->GetTenant(deadline(&c4), get, &out).error_code(), grpc::StatusCode::NOT_FOUND);

  // A restart keeps the runtime tenant and its change.
  f.stop_daemon();
  ASSERT_TRUE(f.start(&why)) << why;
  api = connect(f);
  get.set_name("newbie");
  grpc::ClientContext c5;
  grpc::Status st5 = api->GetTenant(deadline(&c5), get, &out);
  ASSERT_TRUE(st5.ok()) << st5.error_message() << "\n" << f.daemon_log();
  EXPECT_EQ(out.spec().memory_bytes(), 2ull << 30);

  pb::DeleteTenantRequest del;
  del.set_name("newbie");
  pb::DeleteTenantResponse none;
  grpc::ClientContext c6;
  ASSERT_TRUE(api->DeleteTenant(deadline(&c6), del, &none).ok());
  auto gone = f.run({bin_dir() + "/vgpu-workload", "--count", "3", "--alloc-size", "1Mi", "--json"}, created.token());
  gone->wait(60s);
  EXPECT_EQ(json_number(gone->output(), "ok"), 0) << gone->output();
}

TEST(VgpudAdmin, LoweringAQuotaDeniesNewAllocationsAndKeepsOldOnes) {
  VgpudFixture f(kTenants);
  ASSERT_TRUE(f.start());
  auto holder = f.run({bin_dir() + "/vgpu-workload", "--duration", "3", "--alloc-size", "768Mi", "--hold", "--json"},
                      "base-tenant-token-1");
  ASSERT_TRUE(vgpu::test::wait_until([&] { return holder->errors().find("launching") != std::string::npos; }, 20s));
  auto api = connect(f);
  pb::UpdateTenantRequest lower;
  lower.set_name("base");
  lower.set_memory_bytes(512ull << 20);
  pb::Tenant out;
  grpc::ClientContext c;
  ASSERT_TRUE(api->UpdateTenant(deadline(&c), lower, &out).ok());
  EXPECT_EQ(out.gpus(0).memory_used_bytes(), 768ull << 20);  // kept
  auto late = f.run({bin_dir() + "/vgpu-workload", "--count", "1", "--alloc-size", "1Mi", "--json"}, "base-tenant-token-1");
  ASSERT_EQ(late->wait(60s), 0);
  EXPECT_EQ(json_number(late->output(), "failed"), 1) << late->output();  // over the new quota
  EXPECT_EQ(holder->wait(60s), 0) << holder->errors();
}

TEST(VgpudAdmin, ComputeLimitChangeReachesARunningTenant) {
  VgpudFixture f(kTenants, {}, "scheduler: {quantum: 5ms}\n");
  ASSERT_TRUE(f.start());
  auto w = f.run({bin_dir() + "/vgpu-workload", "--duration", "4", "--json"}, "base-tenant-token-1");
  ASSERT_TRUE(vgpu::test::wait_until([&] { return w->errors().find("launching") != std::string::npos; }, 20s));
  auto api = connect(f);
  pb::UpdateTenantRequest cap;
  cap.set_name("base");
  cap.set_compute_limit(0.2);
  pb::Tenant out;
  grpc::ClientContext c;
  ASSERT_TRUE(api->UpdateTenant(deadline(&c), cap, &out).ok());
  ASSERT_EQ(w->wait(60s), 0) << w->errors();
  // Alone it would get ~0.95 of the GPU; capped at 20% for ~3.9 of 4 s it
  // gets far less (generous bound: the window needs time to fill).
  EXPECT_LT(json_number(w->output(), "work_share"), 0.5) << w->output();
}

TEST(VgpudAdmin, NonRootCallerIsRefusedEvenIfTheSocketIsOpen) {
  VgpudFixture f(kTenants);
  ASSERT_TRUE(f.start());
  // The refusal must come from SO_PEERCRED, not from file modes.
  ASSERT_EQ(chmod(f.dir().c_str(), 0755), 0);
  ASSERT_EQ(chmod(f.admin_socket().c_str(), 0666), 0);
  pid_t pid = fork();
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
    auto api = connect(f);
    pb::GetStatusRequest req;
    pb::NodeStatus out;
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + 5s);
    _exit(api->GetStatus(&c, req, &out).ok() ? 1 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "a non-root caller got an answer";
  auto api = connect(f);  // root still can
  pb::GetStatusRequest req;
  pb::NodeStatus out;
  grpc::ClientContext c;
  ASSERT_TRUE(api->GetStatus(deadline(&c), req, &out).ok());
  EXPECT_EQ(out.gpus_size(), 1);
  EXPECT_EQ(out.tenants(), 1u);
}

}  // namespace
