// vgpud configuration: valid files load; every invalid one names file, line, key.
#include "config.h"

#include <gtest/gtest.h>

namespace vgpu::sched {
namespace {

const char* kGood = R"(socket: /tmp/x/vgpud.sock
state_dir: /tmp/x/state
scheduler: {quantum: 5ms}
tenants:
  - name: inference
    token: s3cret-inference
    priority: high
    memory: 8Gi
    compute: {request: 30%, limit: 100%}
    devices: [0]
  - name: training-a
    memory: 512Mi
    compute: {request: 70%}
)";

TEST(Config, ValidFileLoads) {
  auto c = parse_config(kGood, "vgpud.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->socket, "/tmp/x/vgpud.sock");
  EXPECT_EQ(c->scheduler.quantum_ns, 5'000'000u);
  ASSERT_EQ(c->tenants.size(), 2u);
  EXPECT_EQ(c->tenants[0].priority, Priority::kHigh);
  EXPECT_EQ(c->tenants[0].memory, 8ull << 30);
  EXPECT_DOUBLE_EQ(c->tenants[0].request, 0.3);
  EXPECT_EQ(c->tenants[0].devices, std::vector<std::string>{"0"});
  EXPECT_EQ(c->tenants[1].memory, 512ull << 20);
  EXPECT_DOUBLE_EQ(c->tenants[1].limit, 1.0);
  EXPECT_TRUE(c->tenants[1].token.empty());
}

struct BadCase {
  const char* yaml;
  const char* expected;  // substring of the error
};

class BadConfig : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfig, IsRefusedWithFileLineAndKey) {
  auto c = parse_config(GetParam().yaml, "f.yaml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().find(GetParam().expected), std::string::npos) << c.error();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfig,
    ::testing::Values(
        BadCase{"tenants:\n  - name: a\n    memory: 8Gx\n", "f.yaml:3: tenants[0].memory: '8Gx' is not a size"},
        BadCase{"sockett: /x\n", "f.yaml:1: sockett: unknown key"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    colour: red\n", "f.yaml:4: tenants[0].colour: unknown key"},
        BadCase{"tenants:\n  - name: a\n", "tenants[0].memory: is required"},
        BadCase{"tenants:\n  - name: A_b\n    memory: 1Gi\n", "f.yaml:2: tenants[0].name: 'A_b' is not a valid name"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    priority: urgent\n",
                "f.yaml:4: tenants[0].priority: 'urgent' is not one of high, normal, low"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    compute: {request: 130%}\n",
                "tenants[0].compute.request: '130%' is not a percentage"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    compute: {request: 50%, limit: 20%}\n",
                "tenants[0].compute: request (50%) is above limit (20%)"},
        BadCase{"tenants:\n  - {name: a, memory: 1Gi, compute: {request: 60%}}\n"
                "  - {name: b, memory: 1Gi, compute: {request: 60%}}\n",
                "guarantees cannot exceed 100%"},
        BadCase{"tenants:\n  - {name: a, memory: 1Gi}\n  - {name: a, memory: 1Gi}\n",
                "f.yaml:3: tenants[1].name: duplicate tenant 'a'"},
        BadCase{"scheduler: {quantum: 1h}\n", "scheduler.quantum"},
        BadCase{"tenants: [\n", "f.yaml:"},
        BadCase{"", "the file is empty"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    token: short\n", "tenants[0].token: must be 8 to 127"}));

TEST(Config, MissingFileIsAClearError) {
  auto c = load_config("/nonexistent/vgpud.yaml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().find("/nonexistent/vgpud.yaml: cannot read"), std::string::npos);
}

}  // namespace
}  // namespace vgpu::sched

namespace vgpu::sched {
namespace {
TEST(Config, ShippedExampleIsValid) {
  auto c = load_config(std::string(VGPU_TEST_SOURCE_DIR) + "/config/vgpud.example.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->tenants.size(), 2u);
}
}  // namespace
}  // namespace vgpu::sched
