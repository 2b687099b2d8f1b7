// vgpuctl's shared output: aligned tables, YAML rendered from the JSON model,
// human units.
#include <gtest/gtest.h>

#include "output.h"

namespace {

using vgpu::cli::Json;

TEST(CliOutput, TableColumnsAreAlignedWithoutTrailingSpaces) {
  vgpu::cli::Table t{{"NAME", "MEMORY", "X"}, {{"inference", "8Gi", ""}, {"nb", "512Mi", "z"}}};
  EXPECT_EQ(vgpu::cli::render_table(t),
            "NAME       MEMORY  X\n"
            "inference  8Gi\n"
            "nb         512Mi   z\n");
}

TEST(CliOutput, TableWithNoRowsPrintsItsHeader) {
  EXPECT_EQ(vgpu::cli::render_table({{"PID", "TENANT"}, {}}), "PID  TENANT\n");
}

TEST(CliOutput, YamlOfNestedObjectsAndLists) {
  Json doc = {{"tenants", Json::array({Json{{"name", "a"}, {"devices", Json::array({"0", "GPU-1"})},
                                           {"gpus", Json::array({Json{{"index", 0}, {"share", 0.25}}})}},
                                      Json{{"name", "b"}, {"devices", Json::array()}, {"gpus", Json::array()}}})},
              {"empty", Json::object()}};
  EXPECT_EQ(vgpu::cli::render_yaml(doc),
            "tenants:\n"
            "  - name: a\n"
            "    devices:\n"
            "      - \"0\"\n"
            "      - GPU-1\n"
            "    gpus:\n"
            "      - index: 0\n"
            "        share: 0.25\n"
            "  - name: b\n"
            "    devices: []\n"
            "    gpus: []\n"
            "empty: {}\n");
}

TEST(CliOutput, YamlQuotesStringsThatWouldReadBackAsOtherTypes) {
  Json doc = {{"a", "yes"}, {"b", ""}, {"c", "12"}, {"d", "x: y"}, {"e", "null"}, {"f", "-x"}, {"g", "a\"b"},
              {"h", true}, {"i", 3}, {"j", "/run/x.sock"}};
  EXPECT_EQ(vgpu::cli::render_yaml(doc),
            "a: \"yes\"\nb: \"\"\nc: \"12\"\nd: \"x: y\"\ne: \"null\"\nf: \"-x\"\ng: \"a\\\"b\"\n"
            "h: true\ni: 3\nj: /run/x.sock\n");
}

TEST(CliOutput, RenderPicksTheFormat) {
  Json doc = {{"deleted", "a"}};
  auto table = [](const Json& d, const vgpu::cli::TableStyle&) { return "deleted " + d["deleted"].get<std::string>() + "\n"; };
  EXPECT_EQ(vgpu::cli::render(doc, vgpu::cli::Format::kTable, table), "deleted a\n");
  EXPECT_EQ(vgpu::cli::render(doc, vgpu::cli::Format::kJson, table), "{\n  \"deleted\": \"a\"\n}\n");
  EXPECT_EQ(vgpu::cli::render(doc, vgpu::cli::Format::kYaml, table), "deleted: a\n");
  EXPECT_EQ(Json::parse(vgpu::cli::render(doc, vgpu::cli::Format::kJson, table)), doc);
}

TEST(CliOutput, ParseFormat) {
  EXPECT_EQ(vgpu::cli::parse_format("yaml"), vgpu::cli::Format::kYaml);
  EXPECT_EQ(vgpu::cli::parse_format("table"), vgpu::cli::Format::kTable);
  EXPECT_FALSE(vgpu::cli::parse_format("xml").has_value());
}

TEST(CliOutput, HumanUnits) {
  EXPECT_EQ(vgpu::cli::human_bytes(8ull << 30), "8Gi");
  EXPECT_EQ(vgpu::cli::human_bytes(1536ull << 20), "1.5Gi");
  EXPECT_EQ(vgpu::cli::human_bytes(0), "0");
  EXPECT_EQ(vgpu::cli::human_percent(0.3), "30.0%");
  EXPECT_EQ(vgpu::cli::human_percent(1.0), "100.0%");
  EXPECT_EQ(vgpu::cli::human_percent(0.12345), "12.3%");
  EXPECT_EQ(vgpu::cli::human_duration(0), "0");
  EXPECT_EQ(vgpu::cli::human_duration(500), "500ns");
  EXPECT_EQ(vgpu::cli::human_duration(20'000'000), "20ms");
  EXPECT_EQ(vgpu::cli::human_duration(1'500'000'000), "1.5s");
  EXPECT_EQ(vgpu::cli::human_duration(125'000'000'000), "2m5s");
  EXPECT_EQ(vgpu::cli::human_duration(7'380'000'000'000), "2h3m");
}

TEST(CliOutput, WideOnlyColumnsAndNoHeaders) {
  vgpu::cli::Table t{{"NAME", "UUID", "PIDS"}, {{"a", "GPU-1", "7,8"}}, {2}};
  EXPECT_EQ(vgpu::cli::render_table(t), "NAME  UUID\na     GPU-1\n");
  EXPECT_EQ(vgpu::cli::render_table(t, {true, true}), "NAME  UUID   PIDS\na     GPU-1  7,8\n");
  // Without headers, columns are as wide as the data only.
  EXPECT_EQ(vgpu::cli::render_table(t, {false, false}), "a  GPU-1\n");
  EXPECT_EQ(vgpu::cli::render_table(t, {true, false}), "a  GPU-1  7,8\n");
}

TEST(CliOutput, ShortUuids) {
  EXPECT_EQ(vgpu::cli::short_uuid("GPU-f1160f32-7c3b-4a46-a1c6-4b4c0e2d9a1e"), "GPU-f1160f32");
  EXPECT_EQ(vgpu::cli::short_uuid("MIG-0e3b9b1a-1111-5555-9999-abcdefabcdef"), "MIG-0e3b9b1a");
  EXPECT_EQ(vgpu::cli::short_uuid("MIG-GPU-ab12cd34-aaaa-bbbb-cccc-dddddddddddd/1/0"), "MIG-GPU-ab12cd34");
  EXPECT_EQ(vgpu::cli::short_uuid("GPU-0"), "GPU-0");  // too short to cut
  EXPECT_EQ(vgpu::cli::short_uuid("0"), "0");
  EXPECT_EQ(vgpu::cli::table_uuid("GPU-f1160f32-7c3b", {true, true}), "GPU-f1160f32-7c3b");
  EXPECT_EQ(vgpu::cli::table_uuid("GPU-f1160f32-7c3b", {false, true}), "GPU-f1160f32");
}

TEST(CliOutput, WideIsAFormat) {
  EXPECT_EQ(vgpu::cli::parse_format("wide"), vgpu::cli::Format::kWide);
  Json doc = {{"x", 1}};
  auto table = [](const Json&, const vgpu::cli::TableStyle& st) {
    return std::string(st.wide ? "wide" : "normal") + (st.headers ? "+headers" : "") + "\n";
  };
  EXPECT_EQ(vgpu::cli::render(doc, vgpu::cli::Format::kWide, table), "wide+headers\n");
  EXPECT_EQ(vgpu::cli::render(doc, vgpu::cli::Format::kTable, table, /*headers=*/false), "normal\n");
}

// yaml-cpp emits the document; numbers keep JSON's shortest form and
// strings that would read back as another type stay quoted.
TEST(CliOutput, YamlNumbersAndSpecialStrings) {
  Json doc = {{"share", 0.3}, {"limit", 1.0}, {"big", 18446744073709551615ull}, {"neg", -1}, {"none", nullptr},
              {"on", "on"}, {"float", "1.5"}, {"multi", "a\nb"}, {"colon", "key: value"}};
  EXPECT_EQ(vgpu::cli::render_yaml(doc),
            "share: 0.3\nlimit: 1.0\nbig: 18446744073709551615\nneg: -1\nnone: ~\n\"on\": \"on\"\nfloat: \"1.5\"\n"
            "multi: \"a\\nb\"\ncolon: \"key: value\"\n");
  EXPECT_EQ(vgpu::cli::render_yaml(Json::array({1, "x"})), "- 1\n- x\n");
  EXPECT_EQ(vgpu::cli::render_yaml(Json::object()), "{}\n");
}

}  // namespace
