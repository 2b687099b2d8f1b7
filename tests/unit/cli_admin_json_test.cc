// The JSON model of vgpuctl's output (docs/cli.md): field names, order and
// units (bytes as integers, shares as fractions, durations in ns) are a stable
// interface for scripts; this test pins them.
#include <gtest/gtest.h>

#include "admin_json.h"
#include "commands.h"

namespace {

namespace api = vgpu::admin::v1;
using vgpu::cli::Json;

api::Tenant sample_tenant() {
  api::Tenant t;
  auto* s = t.mutable_spec();
  s->set_name("infer");
  s->set_priority("high");
  s->set_memory_bytes(8ull << 30);
  s->set_compute_request(0.3);
  s->set_compute_limit(1.0);
  s->add_devices("0");
  s->set_enforcement("report");
  t.set_source("api");
  t.set_processes(2);
  auto* g = t.add_gpus();
  g->set_gpu_index(0);
  g->set_gpu_uuid("GPU-0");
  g->set_allowed(true);
  g->set_memory_used_bytes(3ull << 30);
  g->set_memory_limit_bytes(8ull << 30);
  g->set_allocations_denied(4);
  g->set_share_target(0.3);
  g->set_share_achieved(0.29);
  g->set_share_effective(0.5);
  g->set_holds_lease(true);
  g->set_leases_granted(10);
  g->set_lease_wait_ns(20'000'000);
  return t;
}

std::vector<std::string> keys(const Json& j) {
  std::vector<std::string> out;
  for (const auto& [k, v] : j.items()) out.push_back(k);
  return out;
}

TEST(CliAdminJson, TenantShape) {
  Json t = vgpu::cli::tenant_json(sample_tenant());
  EXPECT_EQ(keys(t), (std::vector<std::string>{"name", "priority", "memory_bytes", "compute_request",
                                                "compute_limit", "devices", "source", "processes", "gpus",
                                                "enforcement"}));
  EXPECT_EQ(t["enforcement"], "report");
  EXPECT_EQ(t["memory_bytes"].get<uint64_t>(), 8ull << 30);
  EXPECT_DOUBLE_EQ(t["compute_request"].get<double>(), 0.3);
  EXPECT_EQ(t["devices"], Json::array({"0"}));
  EXPECT_EQ(keys(t["gpus"][0]),
            (std::vector<std::string>{"index", "uuid", "allowed", "memory_used_bytes", "memory_limit_bytes",
                                      "allocations_denied", "share_target", "share_achieved", "share_effective",
                                      "holds_lease",
                                      "waiting", "leases_granted", "leases_preempted", "lease_wait_ns"}));
  EXPECT_EQ(t["gpus"][0]["lease_wait_ns"].get<uint64_t>(), 20'000'000u);
}

TEST(CliAdminJson, AllocationTenantCarriesItsKubernetesNames) {
  EXPECT_FALSE(vgpu::cli::tenant_json(sample_tenant()).contains("kubernetes"));  // only allocations
  api::Tenant t = sample_tenant();
  t.set_source("allocation");
  t.mutable_kubernetes()->set_namespace_("team-a");
  t.mutable_kubernetes()->set_pod("trainer-0");
  t.mutable_kubernetes()->set_container("main");
  Json j = vgpu::cli::tenant_json(t);
  EXPECT_EQ(keys(j).back(), "kubernetes");
  EXPECT_EQ(j["kubernetes"], (Json{{"namespace", "team-a"}, {"pod", "trainer-0"}, {"container", "main"}}));
  std::string text = vgpu::cli::tenant_with_token_text(Json{{"tenant", j}, {"token", "t"}});
  EXPECT_NE(text.find("team-a/trainer-0/main"), std::string::npos) << text;
  t.mutable_kubernetes()->Clear();
  t.mutable_kubernetes();  // present but empty: not known yet
  text = vgpu::cli::tenant_with_token_text(Json{{"tenant", vgpu::cli::tenant_json(t)}, {"token", "t"}});
  EXPECT_NE(text.find("(not known yet)"), std::string::npos) << text;
}

TEST(CliAdminJson, TenantTablesUseHumanUnits) {
  Json list = Json::array({vgpu::cli::tenant_json(sample_tenant())});
  std::string table = vgpu::cli::tenants_table(list);
  EXPECT_NE(table.find("NAME   PRIORITY  MEMORY  USED  REQUEST  LIMIT   DEVICES  PROCESSES  SOURCE"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("infer  high      8Gi     3Gi   30.0%    100.0%  0        2          api"), std::string::npos)
      << table;
  std::string gpus = vgpu::cli::tenant_gpus_table(list);
  // REQUEST is the configured share, TARGET what the policy gives it now.
  EXPECT_NE(gpus.find("REQUEST  TARGET  ACHIEVED"), std::string::npos) << gpus;
  EXPECT_NE(gpus.find("infer   0    3Gi   8Gi    4       30.0%    50.0%   29.0%     holding  10"), std::string::npos)
      << gpus;
  EXPECT_NE(gpus.find("20ms"), std::string::npos) << gpus;
}

TEST(CliAdminJson, StatusAndProcessesShape) {
  api::NodeStatus s;
  s.set_version("0.1.0");
  s.set_uptime_ns(5'000'000'000);
  s.set_tenants(1);
  auto* g = s.add_gpus();
  g->set_index(0);
  g->set_name("Sim H100");
  g->set_memory_total_bytes(80ull << 30);
  g->set_busy_fraction(0.5);
  g->add_waiting("train");
  Json j = vgpu::cli::status_json(s);
  EXPECT_EQ(keys(j), (std::vector<std::string>{"version", "uptime_ns", "tenants", "processes", "gpus"}));
  EXPECT_EQ(keys(j["gpus"][0]),
            (std::vector<std::string>{"index", "uuid", "name", "memory_total_bytes", "memory_used_bytes",
                                      "memory_allocated_bytes", "memory_quota_bytes", "busy_fraction",
                                      "lease_holder", "waiting", "healthy", "health_detail"}));
  std::string table = vgpu::cli::status_table(j);
  EXPECT_NE(table.find("up 5.0s"), std::string::npos) << table;
  EXPECT_NE(table.find("80Gi"), std::string::npos) << table;
  EXPECT_NE(table.find("50.0%"), std::string::npos) << table;

  api::Process p;
  p.set_pid(42);
  p.set_tenant("infer");
  auto* pg = p.add_gpus();
  pg->set_gpu_index(0);
  pg->set_memory_bytes(1ull << 30);
  pg->set_lease("waiting");
  pg->set_physical_bytes(1536ull << 20);
  p.set_managed(true);
  Json pj = vgpu::cli::process_json(p);
  EXPECT_EQ(pj.dump(),
            R"({"pid":42,"tenant":"infer","gpus":[{"index":0,"memory_bytes":1073741824,"lease":"waiting",)"
            R"("physical_bytes":1610612736}],"managed":true})");
  EXPECT_EQ(vgpu::cli::processes_table(Json::array({pj})),
            "PID  TENANT  GPU  MEMORY  PHYSICAL  LEASE\n42   infer   0    1Gi     1.5Gi     waiting\n");
}

// A process the backstop saw on a GPU without a registration: no tenant, no
// ledger, no lease; only what NVML says it holds.
TEST(CliAdminJson, PsTableShowsUnmanagedProcesses) {
  api::Process p;
  p.set_pid(77);
  auto* g = p.add_gpus();
  g->set_gpu_index(1);
  g->set_lease("none");
  g->set_physical_bytes(64ull << 20);
  api::Process idle;
  idle.set_pid(78);
  Json procs = Json::array({vgpu::cli::process_json(p), vgpu::cli::process_json(idle)});
  EXPECT_EQ(procs[0]["managed"], false);
  EXPECT_EQ(procs[0]["tenant"], "");
  EXPECT_EQ(vgpu::cli::processes_table(procs),
            "PID  TENANT       GPU  MEMORY  PHYSICAL  LEASE\n"
            "77   (unmanaged)  1    -       64Mi      -\n"
            "78   (unmanaged)  -    -       0         -\n");
}

TEST(CliAdminJson, EventsShapeAndTable) {
  api::ListEventsResponse r;
  auto* e = r.add_events();
  e->set_unix_ns(1'700'000'000'123'456'789ull);
  e->set_reason("unregistered");
  e->set_action("reported");
  e->set_pid(4242);
  e->set_gpu_index(0);
  e->set_detail("holds 64Mi on GPU 0 without registering");
  auto* k = r.add_events();
  k->set_unix_ns(1'700'000'060'000'000'000ull);
  k->set_reason("over_quota");
  k->set_action("killed");
  k->set_pid(7);
  k->set_tenant("train");
  k->set_gpu_index(-1);
  Json j = vgpu::cli::events_json(r.events());
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(keys(j[0]), (std::vector<std::string>{"unix_ns", "reason", "action", "pid", "tenant", "gpu", "detail"}));
  EXPECT_EQ(j[0]["unix_ns"].get<uint64_t>(), 1'700'000'000'123'456'789ull);
  EXPECT_EQ(j[0]["tenant"], "");
  EXPECT_EQ(j[1]["gpu"], -1);
  EXPECT_EQ(vgpu::cli::events_table(j),
            "TIME                      REASON        ACTION    PID   TENANT  GPU  DETAIL\n"
            "2023-11-14T22:13:20.123Z  unregistered  reported  4242  -       0    holds 64Mi on GPU 0 without registering\n"
            "2023-11-14T22:14:20.000Z  over_quota    killed    7     train   -\n");
  EXPECT_EQ(vgpu::cli::iso8601_utc(0), "1970-01-01T00:00:00.000Z");
}

TEST(CliAdminJson, PsTableLeavesOutGpusAProcessDoesNotUse) {
  Json procs = Json::array(
      {Json{{"pid", 7}, {"tenant", "a"},
            {"gpus", Json::array({Json{{"index", 0}, {"memory_bytes", 0}, {"lease", "idle"}},
                                  Json{{"index", 1}, {"memory_bytes", 0}, {"lease", "holding"}}})}},
       Json{{"pid", 8}, {"tenant", "b"}, {"gpus", Json::array({Json{{"index", 0}, {"memory_bytes", 0}, {"lease", "idle"}}})}}});
  EXPECT_EQ(vgpu::cli::processes_table(procs),
            "PID  TENANT  GPU  MEMORY  PHYSICAL  LEASE\n"
            "7    a       1    0       0         holding\n"
            "8    b       -    0       0         idle\n");
}

// The whole document, byte for byte: protobuf's JSON printer underneath must
// not change names, order or types (integers stay integers, shares doubles).
TEST(CliAdminJson, TenantDocumentIsStable) {
  api::Tenant t = sample_tenant();
  t.mutable_spec()->set_compute_limit(1.0);
  EXPECT_EQ(vgpu::cli::tenant_json(t).dump(),
            R"({"name":"infer","priority":"high","memory_bytes":8589934592,"compute_request":0.3,)"
            R"("compute_limit":1.0,"devices":["0"],"source":"api","processes":2,"gpus":[{"index":0,"uuid":"GPU-0",)"
            R"("allowed":true,"memory_used_bytes":3221225472,"memory_limit_bytes":8589934592,"allocations_denied":4,)"
            R"("share_target":0.3,"share_achieved":0.29,"share_effective":0.5,"holds_lease":true,"waiting":false,"leases_granted":10,)"
            R"("leases_preempted":0,"lease_wait_ns":20000000}],"enforcement":"report"})");
  // A tenant without a spec still has every key, with defaults.
  Json empty = vgpu::cli::tenant_json(api::Tenant());
  EXPECT_EQ(keys(empty), (std::vector<std::string>{"name", "priority", "memory_bytes", "compute_request",
                                                    "compute_limit", "devices", "source", "processes", "gpus",
                                                    "enforcement"}));
  EXPECT_TRUE(empty["memory_bytes"].is_number_unsigned());
  EXPECT_TRUE(empty["compute_limit"].is_number_float());
  EXPECT_EQ(vgpu::cli::tenant_with_token_json(api::TenantWithToken()).dump().rfind(R"({"tenant":{"name":"")", 0), 0u);
}

TEST(CliAdminJson, EventAndSnapshotKeys) {
  api::Event e;
  e.set_unix_ns(18'000'000'000'000'000'000ull);  // above 2^63: stays an unsigned integer
  e.set_gpu_index(-1);
  Json j = vgpu::cli::event_json(e);
  EXPECT_EQ(j["unix_ns"].get<uint64_t>(), 18'000'000'000'000'000'000ull);
  EXPECT_EQ(j["gpu"], -1);
  api::Snapshot snap;
  snap.add_tenants()->mutable_spec()->set_name("a");
  Json sj = vgpu::cli::snapshot_json(snap);
  EXPECT_EQ(keys(sj), (std::vector<std::string>{"status", "tenants", "processes"}));
  EXPECT_EQ(keys(sj["status"]), (std::vector<std::string>{"version", "uptime_ns", "tenants", "processes", "gpus"}));
  EXPECT_EQ(sj["tenants"][0]["name"], "a");
}

api::NodeStatus overcommitted_status() {
  api::NodeStatus s;
  s.set_version("vgpud 0.1.0");
  auto* g = s.add_gpus();
  g->set_index(0);
  g->set_uuid("GPU-f1160f32-7c3b-4a46-a1c6-4b4c0e2d9a1e");
  g->set_name("Sim");
  g->set_memory_total_bytes(8ull << 30);
  g->set_memory_quota_bytes(12ull << 30);
  g->set_lease_holder("infer");
  g->add_waiting("infer");
  g->add_waiting("train");
  return s;
}

TEST(CliAdminJson, StatusMarksOvercommitAndLeavesTheHolderOutOfTheWaiters) {
  Json j = vgpu::cli::status_json(overcommitted_status());
  EXPECT_EQ(j["gpus"][0]["waiting"], Json::array({"train"}));
  std::string table = vgpu::cli::status_table(j);
  EXPECT_NE(table.find("12Gi (overcommit)"), std::string::npos) << table;
  EXPECT_NE(table.find("infer  train\n"), std::string::npos) << table;
  EXPECT_NE(table.find("GPU-f1160f32  "), std::string::npos) << table;
  EXPECT_EQ(table.find("GPU-f1160f32-"), std::string::npos) << table;
  // Wide: the full UUID; no headers: data rows only, no summary line.
  std::string wide = vgpu::cli::status_table(j, {true, true});
  EXPECT_NE(wide.find("GPU-f1160f32-7c3b-4a46-a1c6-4b4c0e2d9a1e"), std::string::npos) << wide;
  std::string bare = vgpu::cli::status_table(j, {false, false});
  EXPECT_EQ(bare.find("vgpud"), std::string::npos) << bare;
  EXPECT_EQ(bare.find("GPU  NAME"), std::string::npos) << bare;
  EXPECT_EQ(bare.rfind("0  Sim  GPU-f1160f32", 0), 0u) << bare;
  // Quotas within the GPU carry no mark.
  api::NodeStatus fits = overcommitted_status();
  fits.mutable_gpus(0)->set_memory_quota_bytes(8ull << 30);
  EXPECT_EQ(vgpu::cli::status_table(vgpu::cli::status_json(fits)).find("overcommit"), std::string::npos);
}

TEST(CliAdminJson, UsageAboveALoweredQuotaIsMarked) {
  api::Tenant t = sample_tenant();
  t.mutable_gpus(0)->set_memory_limit_bytes(2ull << 30);  // quota lowered below the 3Gi in use
  Json list = Json::array({vgpu::cli::tenant_json(t)});
  std::string tenants = vgpu::cli::tenants_table(list);
  EXPECT_NE(tenants.find("3Gi (over quota)"), std::string::npos) << tenants;
  std::string gpus = vgpu::cli::tenant_gpus_table(list);
  EXPECT_NE(gpus.find("infer   0    3Gi (over quota)  2Gi"), std::string::npos) << gpus;
  EXPECT_EQ(vgpu::cli::tenants_table(Json::array({vgpu::cli::tenant_json(sample_tenant())})).find("over quota"),
            std::string::npos);
}

TEST(CliAdminJson, WideTablesAddColumns) {
  Json list = Json::array({vgpu::cli::tenant_json(sample_tenant())});
  Json procs = Json::array({Json{{"pid", 42}, {"tenant", "infer"},
                                 {"gpus", Json::array({Json{{"index", 0}, {"memory_bytes", 1}, {"lease", "idle"}}})},
                                 {"managed", true}}});
  std::string normal = vgpu::cli::tenant_gpus_table(list, {}, procs);
  EXPECT_EQ(normal.find("PIDS"), std::string::npos) << normal;
  std::string wide = vgpu::cli::tenant_gpus_table(list, {true, true}, procs);
  EXPECT_NE(wide.find("UUID   PIDS"), std::string::npos) << wide;
  EXPECT_NE(wide.find("GPU-0  42\n"), std::string::npos) << wide;
  std::string tenants = vgpu::cli::tenants_table(list, {true, true});
  EXPECT_NE(tenants.find("SOURCE  ENFORCEMENT  DENIED"), std::string::npos) << tenants;
  EXPECT_NE(tenants.find("api     report       4"), std::string::npos) << tenants;
  EXPECT_EQ(vgpu::cli::processes_table(procs, {true, false}), "42  infer  0  1  0  idle  yes\n");
  EXPECT_EQ(vgpu::cli::tenants_table(list, {false, false}).find("NAME"), std::string::npos);
}

}  // namespace
