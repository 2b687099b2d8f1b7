// vgpud configuration: valid files load; every invalid one names file, line, key.
#include "config.h"

#include <gtest/gtest.h>

#include <cmath>

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
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    token: short\n",
                "f.yaml:4: tenants[0].token: a token must be 16 to 127 characters"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    token: fifteen-chars-x\n", "16 to 127 characters"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    token: \"sixteen chars xxx\"\n",
                "tenants[0].token: a token may not contain whitespace"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    token: \"sixteen-chars-xx\\t\"\n", "may not contain whitespace"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    token: \"sixteen-chars-xx\\x01\"\n", "control"},
        // Non-finite numbers: the number parser reads them, every bound check passes them.
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    compute: {request: nan}\n",
                "f.yaml:4: tenants[0].compute.request: 'nan' is not a percentage"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    compute: {limit: inf%}\n", "tenants[0].compute.limit"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    compute: {request: -nan%}\n", "compute.request"},
        BadCase{"tenants:\n  - name: a\n    memory: nan\n", "tenants[0].memory: 'nan' is not a size"},
        BadCase{"tenants:\n  - name: a\n    memory: inf\n", "tenants[0].memory"},
        BadCase{"scheduler: {quantum: nan}\n", "scheduler.quantum"},
        BadCase{"enforcement: {tolerance: infMi}\n", "enforcement.tolerance"},
        // Duplicate keys, which YAML parsers resolve silently (the first wins).
        BadCase{"socket: /a\nsocket: /b\n", "f.yaml:2: socket: duplicate key (first on line 1)"},
        BadCase{"tenants:\n  - name: a\n    memory: 1Gi\n    memory: 80Gi\n",
                "f.yaml:4: tenants[0].memory: duplicate key (first on line 3)"},
        BadCase{"tenants:\n  - {name: a, memory: 1Gi, compute: {request: 10%, request: 90%}}\n",
                "f.yaml:2: tenants[0].compute.request: duplicate key"},
        BadCase{"enforcement:\n  policy: report\nenforcement:\n  policy: kill\n", "f.yaml:3: enforcement: duplicate key"},
        // Enforcement and limits.
        BadCase{"enforcement: {policy: maim}\n", "f.yaml:1: enforcement.policy: 'maim' is not one of kill, report"},
        BadCase{"enforcement: {poll_interval: 5ms}\n", "enforcement.poll_interval: must be between 10ms and 10s"},
        BadCase{"enforcement: {poll_interval: 11s}\n", "enforcement.poll_interval: must be between 10ms and 10s"},
        BadCase{"enforcement: {revoke_deadline: 0}\n", "enforcement.revoke_deadline"},
        BadCase{"enforcement: {bpf: maybe}\n", "enforcement.bpf: 'maybe' is not one of auto, off, required"},
        BadCase{"enforcement: {context_overhead: 65Gi}\n", "f.yaml:1: enforcement.context_overhead: must be at most 64Gi"},
        BadCase{"enforcement: {context_overhead: lots}\n", "enforcement.context_overhead"},
        BadCase{"enforcement: {overcommit: yes-please}\n", "enforcement.overcommit: must be true or false"},
        BadCase{"enforcement: {allowlist: nvidia-smi}\n", "enforcement.allowlist: must be a list"},
        BadCase{"enforcement: {allowlist: [dcgm-exporter, bin/x]}\n",
                "f.yaml:1: enforcement.allowlist[1]: 'bin/x' is neither a process name (no '/') nor an absolute path"},
        BadCase{"enforcement: {allowlist: [\"a b\"]}\n", "enforcement.allowlist[0]: must be a process name"},
        BadCase{"enforcement: {allowlist: [\"\"]}\n", "enforcement.allowlist[0]"},
        BadCase{"enforcement: {colour: red}\n", "enforcement.colour: unknown key"},
        BadCase{"limits: {hello_timeout: 1us}\n", "limits.hello_timeout: must be between 10ms and 60s"},
        BadCase{"limits: {max_connections: 0}\n", "limits.max_connections: must be a whole number from 1"},
        BadCase{"limits: {max_connections: -5}\n", "limits.max_connections"},
        BadCase{"limits: {max_connections: 99999999999999999999999}\n", "limits.max_connections"},
        BadCase{"limits: {max_connections: 10, max_connections_per_uid: 20}\n",
                "limits.max_connections_per_uid: is above limits.max_connections (10)"},
        BadCase{"limits: {messages_per_second: 1.5}\n", "limits.messages_per_second"},
        BadCase{"tenants:\n  - {name: a, memory: 1Gi, enforcement: lenient}\n",
                "f.yaml:2: tenants[0].enforcement: 'lenient' is not one of kill, report"}));

TEST(Config, EnforcementAndLimitsDefaults) {
  auto c = parse_config("tenants: []\n", "f.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->enforcement.policy, EnforcePolicy::kKill);
  EXPECT_EQ(c->enforcement.poll_interval_ns, 200'000'000u);
  EXPECT_EQ(c->enforcement.tolerance, 64ull << 20);
  EXPECT_EQ(c->enforcement.grace_ns, 500'000'000u);
  EXPECT_EQ(c->enforcement.startup_grace_ns, 10'000'000'000u);
  EXPECT_EQ(c->enforcement.allowlist,
            (std::vector<std::string>{"nvidia-persistenced", "nv-hostengine", "dcgm-exporter"}));
  EXPECT_FALSE(c->enforcement.overcommit);
  EXPECT_EQ(c->enforcement.revoke_deadline_ns, 100'000'000u);
  EXPECT_EQ(c->enforcement.bpf, "auto");
  EXPECT_EQ(c->enforcement.context_overhead, 0u);
  EXPECT_EQ(c->limits.hello_timeout_ns, 1'000'000'000u);
  EXPECT_EQ(c->limits.max_connections, 4096u);
  EXPECT_EQ(c->limits.max_connections_per_uid, 256u);
  EXPECT_EQ(c->limits.messages_per_second, 5000u);
}

TEST(Config, EnforcementAndLimitsAreRead) {
  auto c = parse_config(R"(enforcement:
  policy: report
  poll_interval: 50ms
  tolerance: 128Mi
  grace: 1s
  startup_grace: 30s
  allowlist: [dcgm-exporter, /usr/bin/nv-hostengine]
  overcommit: true
  revoke_deadline: 250ms
  bpf: required
  context_overhead: 300Mi
limits:
  hello_timeout: 2s
  max_connections: 100
  max_connections_per_uid: 10
  messages_per_second: 700
tenants:
  - {name: x, memory: 1Gi, enforcement: report}
  - {name: y, memory: 1Gi, enforcement: kill}
  - {name: z, memory: 1Gi}
)",
                        "f.yaml");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->enforcement.policy, EnforcePolicy::kReport);
  EXPECT_EQ(c->enforcement.poll_interval_ns, 50'000'000u);
  EXPECT_EQ(c->enforcement.tolerance, 128ull << 20);
  EXPECT_EQ(c->enforcement.grace_ns, 1'000'000'000u);
  EXPECT_EQ(c->enforcement.startup_grace_ns, 30'000'000'000u);
  EXPECT_EQ(c->enforcement.allowlist, (std::vector<std::string>{"dcgm-exporter", "/usr/bin/nv-hostengine"}));
  EXPECT_TRUE(c->enforcement.overcommit);
  EXPECT_EQ(c->enforcement.revoke_deadline_ns, 250'000'000u);
  EXPECT_EQ(c->enforcement.bpf, "required");
  EXPECT_EQ(c->enforcement.context_overhead, 300ull << 20);
  EXPECT_EQ(c->limits.hello_timeout_ns, 2'000'000'000u);
  EXPECT_EQ(c->limits.max_connections, 100u);
  EXPECT_EQ(c->limits.max_connections_per_uid, 10u);
  EXPECT_EQ(c->limits.messages_per_second, 700u);
  ASSERT_EQ(c->tenants.size(), 3u);
  EXPECT_EQ(c->tenants[0].enforcement, EnforcePolicy::kReport);
  EXPECT_EQ(c->tenants[1].enforcement, EnforcePolicy::kKill);
  EXPECT_FALSE(c->tenants[2].enforcement.has_value());
}

TEST(Config, TokenRules) {
  EXPECT_TRUE(validate_token("0123456789abcdef"));
  EXPECT_TRUE(validate_token(std::string(127, 'k')));
  EXPECT_FALSE(validate_token(std::string(128, 'k')));
  EXPECT_FALSE(validate_token("0123456789abcde"));
  EXPECT_FALSE(validate_token("0123456789 abcdef"));
  EXPECT_FALSE(validate_token(std::string("0123456789abcdef\0", 17)));
  EXPECT_FALSE(validate_token("0123456789abcdef\n"));
  EXPECT_FALSE(validate_token("0123456789abcdef\x7f"));
}

// YAML is UTF-8 text. yaml-cpp reads stray bytes as they are but writes them
// back replaced (U+FFFD), so a tenant persisted from such a file would change
// at the next load (found by fuzz_state: a device "\xD8").
TEST(Config, TextThatIsNotUtf8IsRefusedWithItsLine) {
  const std::string head = "tenants:\n  - {name: a, memory: 1Gi, devices: [\"";
  for (const char* bad : {"\xD8", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"}) {
    auto c = parse_config(head + bad + "\"]}\n", "f.yaml");
    ASSERT_FALSE(c) << "accepted " << bad;
    EXPECT_EQ(c.error().rfind("f.yaml:2: not UTF-8 text (byte 0x", 0), 0u) << c.error();
  }
  // Real UTF-8 (2, 3 and 4 bytes) is fine wherever YAML allows it.
  auto c = parse_config("# caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\ntenants: []\n", "f.yaml");
  EXPECT_TRUE(c) << c.error();
}

TEST(Config, NonFiniteSharesAreInvalidTenants) {
  TenantConfig t;
  t.name = "a";
  t.request = std::nan("");
  EXPECT_FALSE(validate_tenant(t));
  t.request = 0;
  t.limit = std::nan("");
  EXPECT_FALSE(validate_tenant(t));
  t.limit = INFINITY;
  EXPECT_FALSE(validate_tenant(t));
  t.limit = 1;
  EXPECT_TRUE(validate_tenant(t));
}

TEST(Config, QuotaAboveGpuMemoryNeedsOvercommit) {
  std::vector<Gpu> gpus(2);
  gpus[0].index = 0;
  gpus[0].uuid = "GPU-00000000-0000-0000-0000-000000000000";
  gpus[0].memory = 80ull << 30;
  gpus[1].index = 1;
  gpus[1].uuid = "GPU-11111111-0000-0000-0000-000000000000";
  gpus[1].memory = 40ull << 30;
  TenantConfig t;
  t.name = "big";
  t.memory = 60ull << 30;
  auto r = validate_quota(t, gpus, false);  // all GPUs: GPU 1 is too small
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("above the memory of GPU 1 (40Gi)"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("enforcement.overcommit"), std::string::npos) << r.error();
  EXPECT_TRUE(validate_quota(t, gpus, true));
  t.devices = {"0"};
  EXPECT_TRUE(validate_quota(t, gpus, false));
  t.memory = 80ull << 30;  // exactly the GPU
  EXPECT_TRUE(validate_quota(t, gpus, false));
  t.memory = (80ull << 30) + 1;
  EXPECT_FALSE(validate_quota(t, gpus, false));
}

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
