// Tenant flags to admin API requests: units, defaults, and "only the given
// flags change" on update.
#include <gtest/gtest.h>

#include "tenant_flags.h"

namespace {

using vgpu::cli::TenantFlags;

TEST(CliTenantFlags, CreateConvertsUnitsAndAppliesDefaults) {
  TenantFlags f;
  f.name = "infer";
  f.memory = "8Gi";
  f.request = "30%";
  auto req = vgpu::cli::make_create_request(f);
  ASSERT_TRUE(req) << req.error();
  EXPECT_EQ(req->spec().name(), "infer");
  EXPECT_EQ(req->spec().memory_bytes(), 8ull << 30);
  EXPECT_DOUBLE_EQ(req->spec().compute_request(), 0.30);
  EXPECT_DOUBLE_EQ(req->spec().compute_limit(), 1.0);
  EXPECT_EQ(req->spec().priority(), "normal");
  EXPECT_EQ(req->spec().devices_size(), 0);
  EXPECT_EQ(req->token(), "");
}

TEST(CliTenantFlags, CreateCarriesEveryFlag) {
  TenantFlags f;
  f.name = "train";
  f.memory = "512Mi";
  f.limit = "50%";
  f.priority = "low";
  f.devices = std::vector<std::string>{"0", "GPU-abc"};
  f.token = "secret-token-1";
  auto req = vgpu::cli::make_create_request(f);
  ASSERT_TRUE(req) << req.error();
  EXPECT_EQ(req->spec().memory_bytes(), 512ull << 20);
  EXPECT_DOUBLE_EQ(req->spec().compute_limit(), 0.5);
  EXPECT_EQ(req->spec().priority(), "low");
  ASSERT_EQ(req->spec().devices_size(), 2);
  EXPECT_EQ(req->spec().devices(1), "GPU-abc");
  EXPECT_EQ(req->token(), "secret-token-1");
}

TEST(CliTenantFlags, CreateNeedsMemoryAndValidUnits) {
  TenantFlags f;
  f.name = "x";
  EXPECT_FALSE(vgpu::cli::make_create_request(f));
  f.memory = "8Gx";
  auto bad = vgpu::cli::make_create_request(f);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("--memory"), std::string::npos) << bad.error();
  f.memory = "1Gi";
  f.request = "120%";
  EXPECT_FALSE(vgpu::cli::make_create_request(f));
}

TEST(CliTenantFlags, UpdateSetsOnlyTheGivenFields) {
  TenantFlags f;
  f.name = "infer";
  f.memory = "4Gi";
  auto req = vgpu::cli::make_update_request(f);
  ASSERT_TRUE(req) << req.error();
  EXPECT_EQ(req->name(), "infer");
  ASSERT_TRUE(req->has_memory_bytes());
  EXPECT_EQ(req->memory_bytes(), 4ull << 30);
  EXPECT_FALSE(req->has_compute_request());
  EXPECT_FALSE(req->has_compute_limit());
  EXPECT_FALSE(req->has_priority());
  EXPECT_FALSE(req->set_devices());
}

TEST(CliTenantFlags, UpdateDevicesAllClearsTheList) {
  TenantFlags f;
  f.name = "infer";
  f.devices = std::vector<std::string>{"all"};
  auto req = vgpu::cli::make_update_request(f);
  ASSERT_TRUE(req) << req.error();
  EXPECT_TRUE(req->set_devices());
  EXPECT_EQ(req->devices_size(), 0);
  f.devices = std::vector<std::string>{"1"};
  req = vgpu::cli::make_update_request(f);
  ASSERT_TRUE(req);
  ASSERT_EQ(req->devices_size(), 1);
  EXPECT_EQ(req->devices(0), "1");
}

TEST(CliTenantFlags, UpdateSharesAreFractions) {
  TenantFlags f;
  f.name = "infer";
  f.request = "12.5%";
  f.limit = "80";
  auto req = vgpu::cli::make_update_request(f);
  ASSERT_TRUE(req) << req.error();
  EXPECT_DOUBLE_EQ(req->compute_request(), 0.125);
  EXPECT_DOUBLE_EQ(req->compute_limit(), 0.8);
}

// --enforcement: "default" is the API's "" (the node's policy); unset on
// create is the node's policy too, and on update leaves the field alone.
TEST(CliTenantFlags, EnforcementPolicy) {
  TenantFlags f;
  f.name = "infer";
  f.memory = "1Gi";
  auto plain = vgpu::cli::make_create_request(f);
  ASSERT_TRUE(plain) << plain.error();
  EXPECT_EQ(plain->spec().enforcement(), "");
  f.enforcement = "report";
  auto report = vgpu::cli::make_create_request(f);
  ASSERT_TRUE(report) << report.error();
  EXPECT_EQ(report->spec().enforcement(), "report");

  TenantFlags u;
  u.name = "infer";
  u.memory = "2Gi";
  auto untouched = vgpu::cli::make_update_request(u);
  ASSERT_TRUE(untouched) << untouched.error();
  EXPECT_FALSE(untouched->has_enforcement());
  TenantFlags only;
  only.name = "infer";
  only.enforcement = "default";
  auto reset = vgpu::cli::make_update_request(only);
  ASSERT_TRUE(reset) << reset.error() << " (--enforcement alone is a change)";
  ASSERT_TRUE(reset->has_enforcement());
  EXPECT_EQ(reset->enforcement(), "");
  only.enforcement = "kill";
  EXPECT_EQ(vgpu::cli::make_update_request(only)->enforcement(), "kill");
}

TEST(CliTenantFlags, UpdateWithNothingToChangeIsAnError) {
  TenantFlags f;
  f.name = "infer";
  auto req = vgpu::cli::make_update_request(f);
  ASSERT_FALSE(req);
  EXPECT_NE(req.error().find("nothing to change"), std::string::npos);
}

}  // namespace
