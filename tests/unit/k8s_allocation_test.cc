// The device plugin's device model (k8s/allocation.h): IDs, the advertised
// list, Allocate plans (bad input refused by ID), allocation ids, and
// GetPreferredAllocation's best fit.
#include "allocation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace vgpu::k8s {
namespace {

constexpr uint64_t kGi = 1ull << 30;
const std::string kA = "GPU-11111111-2222-3333-4444-555555555555";
const std::string kB = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

std::vector<GpuView> node() { return {{0, kA, 16 * kGi + 100, true}, {1, kB, 8 * kGi, true}}; }

TEST(K8sDeviceIds, RoundTripAndFitIn63Characters) {
  std::string id = device_id(kA, 79);
  EXPECT_EQ(id, kA + "-m79");
  EXPECT_LE(id.size(), kMaxDeviceIdLength);
  auto r = parse_device_id(id);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->gpu_uuid, kA);
  EXPECT_EQ(r->chunk, 79u);
  auto mig = parse_device_id("MIG-11111111-2222-3333-4444-555555555555-m0");
  ASSERT_TRUE(mig);
  EXPECT_EQ(mig->chunk, 0u);
}

TEST(K8sDeviceIds, MalformedIdsAreRefusedWithTheId) {
  std::vector<std::string> bad = {"", "m3", kA, kA + "-m", kA + "-mx", kA + "-m01", kA + "-m-1",
                                  "-m3", "GPU/x-m1", std::string(61, 'a') + "-m1", kA + "-m99999999999999999999"};
  for (const std::string& id : bad) {
    auto r = parse_device_id(id);
    ASSERT_FALSE(r) << id;
    EXPECT_NE(r.error().find("device ID"), std::string::npos) << r.error();
  }
}

TEST(K8sAdvertise, OneDevicePerWholeUnitPerGpu) {
  auto d = advertise(node(), kGi);
  ASSERT_EQ(d.size(), 24u);  // 16 (the 100 spare bytes are no unit) + 8
  EXPECT_EQ(d.front().id, kA + "-m0");
  EXPECT_EQ(d[15].id, kA + "-m15");
  EXPECT_EQ(d.back().id, kB + "-m7");
  std::set<std::string> unique;
  for (auto& x : d) unique.insert(x.id);
  EXPECT_EQ(unique.size(), d.size());
  EXPECT_EQ(advertise(node(), 4 * kGi).size(), 6u);
}

TEST(K8sAdvertise, UnhealthyGpuMakesItsDevicesUnhealthy) {
  auto gpus = node();
  gpus[1].healthy = false;
  for (auto& d : advertise(gpus, kGi)) EXPECT_EQ(d.healthy, d.gpu_uuid == kA) << d.id;
}

TEST(K8sAdvertise, OverlongUuidIsSkippedNotTruncated) {
  std::vector<GpuView> gpus{{0, std::string(70, 'x'), 2 * kGi, true}};
  std::vector<std::string> skipped;
  EXPECT_TRUE(advertise(gpus, kGi, &skipped).empty());
  EXPECT_EQ(skipped.size(), 1u);
}

TEST(K8sPlan, QuotaPerGpuIsChunksTimesUnit) {
  auto p = plan_allocation({kA + "-m3", kB + "-m0", kA + "-m4", kA + "-m5"}, node(), kGi);
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->quota_bytes.at(kA), 3 * kGi);
  EXPECT_EQ(p->quota_bytes.at(kB), 1 * kGi);
  EXPECT_EQ(p->device_ids.size(), 4u);
  EXPECT_EQ(p->id.rfind("k8s-", 0), 0u);
}

TEST(K8sPlan, BadRequestsNameTheProblem) {
  struct Case {
    std::vector<std::string> ids;
    const char* expect;
  };
  std::vector<Case> cases = {
      {{}, "no device IDs"},
      {{"junk"}, "'junk'"},
      {{"GPU-00000000-0000-0000-0000-000000000000-m0"}, "no GPU"},
      {{kB + "-m8"}, "not advertised"},
      {{kA + "-m1", kA + "-m1"}, "appears twice"},
  };
  for (auto& c : cases) {
    auto p = plan_allocation(c.ids, node(), kGi);
    ASSERT_FALSE(p) << c.expect;
    EXPECT_NE(p.error().find(c.expect), std::string::npos) << p.error();
  }
}

TEST(K8sAllocationId, DependsOnTheSetOfIdsOnly) {
  std::string a = allocation_id({kA + "-m1", kA + "-m2"});
  EXPECT_EQ(a, allocation_id({kA + "-m2", kA + "-m1"}));
  EXPECT_NE(a, allocation_id({kA + "-m1", kA + "-m3"}));
  EXPECT_NE(a, allocation_id({kA + "-m1"}));
  EXPECT_EQ(a.size(), 24u);
  // A valid vgpud tenant name: lower-case hex, digits and '-'.
  for (char c : a) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') << a;
}

std::vector<std::string> ids_of(const std::string& uuid, std::initializer_list<int> chunks) {
  std::vector<std::string> v;
  for (int c : chunks) v.push_back(device_id(uuid, static_cast<uint64_t>(c)));
  return v;
}

TEST(K8sPreferred, BestFitPicksTheFullestGpuThatHolds) {
  // A has 6 free, B has 3 free: a request of 3 goes to B (tightest fit) ...
  auto avail = ids_of(kA, {0, 1, 2, 3, 4, 5});
  auto b = ids_of(kB, {5, 2, 7});
  avail.insert(avail.end(), b.begin(), b.end());
  auto got = preferred_allocation(avail, {}, 3);
  EXPECT_EQ(got, ids_of(kB, {2, 5, 7}));
  // ... a request of 4 only fits on A: lowest chunks first.
  EXPECT_EQ(preferred_allocation(avail, {}, 4), ids_of(kA, {0, 1, 2, 3}));
}

TEST(K8sPreferred, SpreadsOverFewestGpusWhenNoneHolds) {
  auto avail = ids_of(kA, {0, 1, 2});
  auto b = ids_of(kB, {0, 1});
  avail.insert(avail.end(), b.begin(), b.end());
  auto got = preferred_allocation(avail, {}, 4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(std::count_if(got.begin(), got.end(), [](auto& s) { return s.rfind(kA, 0) == 0; }), 3);
  EXPECT_EQ(preferred_allocation(avail, {}, 9).size(), 5u);  // no more than there is
}

TEST(K8sPreferred, MustIncludeComesFirstAndCounts) {
  auto avail = ids_of(kA, {0, 1, 2, 3});
  auto got = preferred_allocation(avail, {kA + "-m3"}, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], kA + "-m3");
  EXPECT_EQ(got[1], kA + "-m0");
}

}  // namespace
}  // namespace vgpu::k8s
