// Compute annotations (k8s/annotations.h): the values, the container key
// winning over the pod key, the domain, and defaults with a named problem
// for every bad value.
#include <gtest/gtest.h>

#include "annotations.h"

namespace {

using vgpu::k8s::compute_from_annotations;
using vgpu::k8s::ComputeSettings;
using vgpu::k8s::parse_share;

TEST(K8sAnnotationValues, SharesArePercentOrFraction) {
  EXPECT_DOUBLE_EQ(*parse_share("30%"), 0.3);
  EXPECT_DOUBLE_EQ(*parse_share("12.5%"), 0.125);
  EXPECT_DOUBLE_EQ(*parse_share(" 100% "), 1.0);
  EXPECT_DOUBLE_EQ(*parse_share("0%"), 0.0);
  EXPECT_DOUBLE_EQ(*parse_share("0.3"), 0.3);
  EXPECT_DOUBLE_EQ(*parse_share("1"), 1.0);
  for (const char* bad : {"", "%", "lots", "-5%", "101%", "30", "1.5", "3e-1", "0x1", "nan", "inf%", "1.2.3%", "30 %%"})
    EXPECT_FALSE(parse_share(bad)) << bad;
  EXPECT_NE(parse_share("30").error().find("write 30%"), std::string::npos);
}

TEST(K8sAnnotationValues, ContainerKeysWinAndOtherDomainsAreIgnored) {
  std::map<std::string, std::string> a = {{"vgpu.io/compute-request", "10%"},
                                          {"vgpu.io/compute-request.main", "30%"},
                                          {"vgpu.io/compute-limit", "90%"},
                                          {"vgpu.io/priority.sidecar", "low"},
                                          {"example.com/priority", "high"}};
  auto main = compute_from_annotations(a, "vgpu.io", "main");
  EXPECT_TRUE(main.problems.empty());
  EXPECT_TRUE(main.any);
  EXPECT_EQ(main.settings, (ComputeSettings{0.3, 0.9, "normal"}));
  auto side = compute_from_annotations(a, "vgpu.io", "sidecar");
  EXPECT_EQ(side.settings, (ComputeSettings{0.1, 0.9, "low"}));
  auto other = compute_from_annotations(a, "example.com", "main");
  EXPECT_EQ(other.settings, (ComputeSettings{0, 1, "high"}));
  auto none = compute_from_annotations({}, "vgpu.io", "main");
  EXPECT_FALSE(none.any);
  EXPECT_EQ(none.settings, ComputeSettings{});
}

TEST(K8sAnnotationValues, BadValuesKeepDefaultsAndAreNamed) {
  auto r = compute_from_annotations({{"vgpu.io/compute-request.main", "lots"},
                                     {"vgpu.io/compute-limit", "0%"},
                                     {"vgpu.io/priority", "urgent\n"}},
                                    "vgpu.io", "main");
  EXPECT_EQ(r.settings, ComputeSettings{});
  ASSERT_EQ(r.problems.size(), 3u);
  EXPECT_NE(r.problems[0].find("vgpu.io/compute-request.main: 'lots' not a share"), std::string::npos) << r.problems[0];
  EXPECT_NE(r.problems[1].find("vgpu.io/compute-limit: '0%' must be above 0%"), std::string::npos) << r.problems[1];
  EXPECT_NE(r.problems[2].find("'urgent?' is not one of high, normal, low"), std::string::npos) << r.problems[2];

  // Request above the limit: no request, the limit stays.
  auto over = compute_from_annotations({{"vgpu.io/compute-request", "70%"}, {"vgpu.io/compute-limit", "40%"}},
                                       "vgpu.io", "c");
  EXPECT_EQ(over.settings, (ComputeSettings{0, 0.4, "normal"}));
  ASSERT_EQ(over.problems.size(), 1u);
  EXPECT_NE(over.problems[0].find("70% is above the limit 40%"), std::string::npos) << over.problems[0];

  // A long value is cut short in the message.
  auto longv = compute_from_annotations({{"vgpu.io/priority", std::string(500, 'x')}}, "vgpu.io", "c");
  ASSERT_EQ(longv.problems.size(), 1u);
  EXPECT_LT(longv.problems[0].size(), 200u);
}

}  // namespace
