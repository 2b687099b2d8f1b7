// Option parsing: units, aliases, per-device limits, fail-closed typos, and
// the agreement of docs/configuration.md with the option table.
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "array_size.h"
#include "uuid_text.h"
#include "options.h"
#include "test_support.h"

namespace vgpu::hook {
namespace {

HookConfig parse(std::map<std::string, std::string> env) {
  return parse_config([&env](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(HookOptions, DefaultsAreUnlimited) {
  HookConfig c = parse({});
  EXPECT_EQ(c.memory_limit[0], kUnlimited);
  EXPECT_EQ(c.memory_limit[kMaxDevices - 1], kUnlimited);
  EXPECT_TRUE(c.charge_managed);
  EXPECT_EQ(c.context_overhead, 0u);
  EXPECT_EQ(c.log_level, LogLevel::kWarn);
  EXPECT_TRUE(c.problems.empty());
}

TEST(HookOptions, UnitsAndPerDeviceOverrides) {
  HookConfig c = parse({{"VGPU_MEMORY_LIMIT", "4Gi"}, {"VGPU_MEMORY_LIMIT_1", "512Mi"}, {"VGPU_MEMORY_LIMIT_2", "1048576"}});
  EXPECT_EQ(c.memory_limit[0], 4ull << 30);
  EXPECT_EQ(c.memory_limit[1], 512ull << 20);
  EXPECT_EQ(c.memory_limit[2], 1048576u);
  EXPECT_EQ(c.memory_limit[3], 4ull << 30);
}

TEST(HookOptions, HamiAliasesWithTheirSuffixes) {
  HookConfig c = parse({{"CUDA_DEVICE_MEMORY_LIMIT", "4g"}, {"CUDA_DEVICE_MEMORY_LIMIT_1", "512m"},
                        {"LIBCUDA_LOG_LEVEL", "3"}});
  EXPECT_EQ(c.memory_limit[0], 4ull << 30);
  EXPECT_EQ(c.memory_limit[1], 512ull << 20);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
}

TEST(HookOptions, VgpuNamesWinOverAliases) {
  HookConfig c = parse({{"CUDA_DEVICE_MEMORY_LIMIT", "4g"}, {"VGPU_MEMORY_LIMIT", "1Gi"}});
  EXPECT_EQ(c.memory_limit[0], 1ull << 30);
}

TEST(HookOptions, MalformedLimitFailsClosedAndIsReported) {
  HookConfig c = parse({{"VGPU_MEMORY_LIMIT", "4GG"}});
  EXPECT_EQ(c.memory_limit[0], 0u);
  EXPECT_EQ(c.memory_limit[5], 0u);
  ASSERT_EQ(c.problems.size(), 1u);
  EXPECT_NE(c.problems[0].find("VGPU_MEMORY_LIMIT"), std::string::npos);
  HookConfig d = parse({{"VGPU_MEMORY_LIMIT", "4Gi"}, {"CUDA_DEVICE_MEMORY_LIMIT_1", "lots"}});
  EXPECT_EQ(d.memory_limit[0], 4ull << 30);
  EXPECT_EQ(d.memory_limit[1], 0u);
}

TEST(HookOptions, OtherMalformedValuesKeepDefaults) {
  HookConfig c = parse({{"VGPU_CHARGE_MANAGED", "maybe"}, {"VGPU_LOG_LEVEL", "loud"}, {"VGPU_CONTEXT_OVERHEAD", "x"}});
  EXPECT_TRUE(c.charge_managed);
  EXPECT_EQ(c.log_level, LogLevel::kWarn);
  EXPECT_EQ(c.context_overhead, 0u);
  EXPECT_EQ(c.problems.size(), 3u);
  EXPECT_FALSE(parse({{"VGPU_CHARGE_MANAGED", "0"}}).charge_managed);
  EXPECT_EQ(parse({{"VGPU_CONTEXT_OVERHEAD", "300Mi"}}).context_overhead, 300ull << 20);
}

TEST(HookOptions, DocumentationListsEveryOption) {
  std::string doc = test::read_file(std::string(VGPU_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_FALSE(doc.empty()) << "docs/configuration.md is missing";
  for (const OptionSpec& o : option_table()) {
    std::string row = std::string("| `") + o.name + "` |";
    EXPECT_NE(doc.find(row), std::string::npos) << "docs/configuration.md lacks the row of " << o.name;
    if (*o.alias) {
      EXPECT_NE(doc.find(std::string("`") + o.alias + "`"), std::string::npos) << o.alias;
    }
    EXPECT_NE(doc.find(o.default_text), std::string::npos) << o.name << " default";
  }
}

TEST(HookUuid, ParsesNvmlText) {
  unsigned char u[16];
  ASSERT_TRUE(parse_uuid_text("GPU-1307b00a-6c26-4ed0-b7da-7062b5cebc62", u));
  EXPECT_EQ(u[0], 0x13);
  EXPECT_EQ(u[15], 0x62);
  EXPECT_FALSE(parse_uuid_text("GPU-1307", u));
  EXPECT_FALSE(parse_uuid_text("GPU-zz07b00a-6c26-4ed0-b7da-7062b5cebc62", u));
}

TEST(HookArraySize, FromDescriptors) {
  CUDA_ARRAY_DESCRIPTOR d2 = {1024, 768, CU_AD_FORMAT_FLOAT, 4};
  EXPECT_EQ(array_bytes(d2), 1024u * 768 * 16);
  CUDA_ARRAY_DESCRIPTOR d1 = {1000, 0, CU_AD_FORMAT_UNSIGNED_INT8, 1};  // 1D
  EXPECT_EQ(array_bytes(d1), 1000u);
  CUDA_ARRAY3D_DESCRIPTOR d3 = {64, 64, 10, CU_AD_FORMAT_HALF, 2, 0};
  EXPECT_EQ(array_bytes(d3), 64u * 64 * 10 * 4);
  CUDA_ARRAY3D_DESCRIPTOR bc = {256, 256, 0, CU_AD_FORMAT_BC1_UNORM, 4, 0};
  EXPECT_EQ(array_bytes(bc), 256u * 256 / 2);
  CUDA_ARRAY3D_DESCRIPTOR mip = {8, 8, 0, CU_AD_FORMAT_UNSIGNED_INT8, 1, 0};
  EXPECT_EQ(mipmapped_array_bytes(mip, 4), 64u + 16 + 4 + 1);
  CUDA_ARRAY3D_DESCRIPTOR layered = {8, 8, 3, CU_AD_FORMAT_UNSIGNED_INT8, 1, CUDA_ARRAY3D_LAYERED};
  EXPECT_EQ(mipmapped_array_bytes(layered, 2), 3u * (64 + 16));
}

}  // namespace
}  // namespace vgpu::hook
