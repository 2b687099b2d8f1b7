// Allocation tenants in vgpud (scheduler/allocation_record.h) and their place
// in the state file (format 3): the record's rules, the per-GPU quotas, a
// round trip, every truncation refused, and format 2 still loading but not
// carrying allocations.
#include "allocation_record.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "sha256.h"
#include "state_store.h"

namespace vgpu::sched {
namespace {

const std::string kA = "GPU-11111111-2222-3333-4444-555555555555";
const std::string kB = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

TenantConfig alloc_tenant() {
  TenantConfig t;
  t.name = "k8s-0123456789abcdef0123";
  t.token = "0123456789abcdef0123456789abcdef";
  t.device_memory = {{kA, 3ull << 30}, {kB, 1ull << 30}};
  t.devices = {kA, kB};
  t.memory = 3ull << 30;
  return t;
}

TEST(AllocationRecord, PathsAndValidation) {
  AllocationRecord r{"/var/lib/vgpu/k8s/sockets", "", "", ""};
  EXPECT_EQ(socket_dir(r, "k8s-x"), "/var/lib/vgpu/k8s/sockets/k8s-x");
  EXPECT_EQ(socket_path(r, "k8s-x"), "/var/lib/vgpu/k8s/sockets/k8s-x/vgpud.sock");
  EXPECT_TRUE(validate_allocation(r, "k8s-x"));
  for (std::string bad : std::vector<std::string>{"", "relative", "/a/../b", "/a/./b", "/a//b", "/a/", "/a\nb", "/" + std::string(100, 'x')}) {
    AllocationRecord b{bad, "", "", ""};
    EXPECT_FALSE(validate_allocation(b, "k8s-x")) << bad;
  }
  AllocationRecord labels{"/r", std::string(254, 'n'), "", ""};
  EXPECT_FALSE(validate_allocation(labels, "k8s-x"));
  labels.ns = "team\x01";
  EXPECT_FALSE(validate_allocation(labels, "k8s-x"));
}

TEST(AllocationRecord, QuotasMustMatchDevicesAndMemoryIsTheLargest) {
  EXPECT_TRUE(validate_allocation_quotas(alloc_tenant()));
  auto t = alloc_tenant();
  t.memory = 1ull << 30;
  EXPECT_FALSE(validate_allocation_quotas(t));
  t = alloc_tenant();
  t.devices = {kA};
  EXPECT_FALSE(validate_allocation_quotas(t));
  t = alloc_tenant();
  t.device_memory[kB] = 0;
  EXPECT_FALSE(validate_allocation_quotas(t));
  t = alloc_tenant();
  t.device_memory.clear();
  t.devices.clear();
  EXPECT_FALSE(validate_allocation_quotas(t));
}

TEST(AllocationRecord, QuotaCheckIsPerGpu) {
  // 3Gi on a 4Gi GPU and 1Gi on a 2Gi GPU fit, though the largest (3Gi)
  // would not fit the second GPU.
  std::vector<Gpu> gpus(2);
  gpus[0].index = 0;
  gpus[0].uuid = kA;
  gpus[0].memory = 4ull << 30;
  gpus[1].index = 1;
  gpus[1].uuid = kB;
  gpus[1].memory = 2ull << 30;
  EXPECT_TRUE(validate_quota(alloc_tenant(), gpus, false));
  auto t = alloc_tenant();
  t.device_memory[kB] = 3ull << 30;
  EXPECT_FALSE(validate_quota(t, gpus, false));
}

std::vector<StoredTenant> sample() {
  std::vector<StoredTenant> v(2);
  v[0].tenant.name = "plain";
  v[0].tenant.token = "ffffffffffffffffffffffffffffffff";
  v[0].tenant.memory = 1ull << 30;
  v[0].source = Source::kApi;
  v[1].tenant = alloc_tenant();
  v[1].source = Source::kApi;
  v[1].allocation = AllocationRecord{"/host/sockets", "team-a", "trainer-0", "main"};
  return v;
}

TEST(AllocationState, RoundTripsExactly) {
  std::string text = format_state(sample());
  auto back = parse_state(text, "t.yaml");
  ASSERT_TRUE(back) << back.error() << "\n" << text;
  ASSERT_EQ(back->size(), 2u);
  EXPECT_FALSE((*back)[0].allocation.has_value());
  ASSERT_TRUE((*back)[1].allocation.has_value());
  EXPECT_EQ(*(*back)[1].allocation, *sample()[1].allocation);
  EXPECT_EQ((*back)[1].tenant.device_memory, alloc_tenant().device_memory);
  EXPECT_EQ(format_state(*back), text);
}

TEST(AllocationState, EveryTruncationIsRefused) {
  std::string text = format_state(sample());
  for (size_t n = 0; n < text.size(); ++n) ASSERT_FALSE(parse_state(text.substr(0, n), "st.yaml")) << n;
}

std::string with_header(const std::string& body, int format) {
  return "# vgpud-state format " + std::to_string(format) + " sha256 " + sha256_hex(body) + "\n" + body;
}

const char* kTenantKeys =
    "name: k8s-a, source: api, token: \"0123456789abcdef\", priority: normal, memory: \"1024\", "
    "compute: {request: 0%, limit: 100%}, devices: [\"GPU-1\"]";

TEST(AllocationState, Format2LoadsButHasNoAllocations) {
  std::string plain = std::string("format: 2\ntenants:\n  - {") + kTenantKeys + "}\n";
  EXPECT_TRUE(parse_state(with_header(plain, 2), "st.yaml"));
  std::string with_alloc = std::string("format: 2\ntenants:\n  - {") + kTenantKeys +
                           ", allocation: {socket_root: \"/r\", namespace: \"\", pod: \"\", container: \"\", "
                           "memory: {\"GPU-1\": \"1024\"}}}\n";
  auto r = parse_state(with_header(with_alloc, 2), "st.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("allocation"), std::string::npos) << r.error();
}

TEST(AllocationState, BadAllocationFieldsNameTheKey) {
  struct Case {
    std::string alloc;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"5", "allocation: not a mapping"},
      {"{namespace: \"\", pod: \"\", container: \"\", memory: {\"GPU-1\": \"1\"}}", "allocation.socket_root"},
      {"{socket_root: \"/r\", namespace: \"\", pod: \"\", container: \"\"}", "allocation.memory"},
      {"{socket_root: \"/r\", namespace: \"\", pod: \"\", container: \"\", memory: {\"GPU-1\": \"-1\"}}",
       "allocation.memory.GPU-1"},
      {"{socket_root: \"/r\", namespace: \"\", pod: \"\", container: \"\", memory: {\"GPU-1\": \"1\"}, x: 1}",
       "allocation.x: unknown key"},
  };
  for (auto& c : cases) {
    std::string body = std::string("format: 3\ntenants:\n  - {") + kTenantKeys + ", allocation: " + c.alloc + "}\n";
    auto r = parse_state(with_header(body, 3), "st.yaml");
    ASSERT_FALSE(r) << c.alloc;
    EXPECT_NE(r.error().find(c.expect), std::string::npos) << r.error();
  }
}

// The fuzzer's seed of an allocation state file stays a valid file.
TEST(AllocationState, FuzzSeedIsValid) {
  std::ifstream in(std::string(VGPU_TEST_SOURCE_DIR) + "/fuzz/corpus/fuzz_state/format3_allocation.yaml");
  std::stringstream text;
  text << in.rdbuf();
  auto r = parse_state(text.str(), "seed");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 2u);
  ASSERT_TRUE((*r)[1].allocation.has_value());
  EXPECT_EQ((*r)[1].allocation->pod, "trainer-0");
  EXPECT_EQ((*r)[1].tenant.device_memory.size(), 2u);
  EXPECT_TRUE(validate_allocation_quotas((*r)[1].tenant));
}

}  // namespace
}  // namespace vgpu::sched
