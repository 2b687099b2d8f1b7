// Output of vgpuctl: every command builds one JSON document (its stable,
// documented model, see docs/cli.md) and renders it as a table, JSON or YAML.
// Tables are built from the same document by a per-command function, so the
// three formats can never disagree. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace vgpu::cli {

// Insertion-ordered so that the JSON and YAML keep the documented field order.
using Json = nlohmann::ordered_json;

// kWide is a table with extra columns (full UUIDs, PIDs, ...), as kubectl's -o wide.
enum class Format { kTable, kWide, kJson, kYaml };

// "table" | "wide" | "json" | "yaml"; nullopt for anything else.
std::optional<Format> parse_format(const std::string& name);

// How tables are drawn: `wide` adds the columns marked wide-only and shows
// full UUIDs; `headers` false (--no-headers) leaves out header rows and
// summary lines so that scripts get data rows only.
struct TableStyle {
  bool wide = false;
  bool headers = true;
};

// A text table: a header row and data rows, rendered with columns aligned
// (left-aligned, two spaces between columns, no trailing spaces). Columns
// whose index is in `wide_only` are shown only in the wide style.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> wide_only = {};
};
std::string render_table(const Table& table, const TableStyle& style = {});

// "GPU-f1160f32" for "GPU-f1160f32-7c3b-...": the prefix and the first 8 hex
// digits, as people read nvidia-smi -L; anything else is returned unchanged.
std::string short_uuid(const std::string& uuid);
// The UUID as a table shows it in `style`: short, or full when wide.
std::string table_uuid(const std::string& uuid, const TableStyle& style);

// Block-style YAML of a JSON tree, emitted by yaml-cpp (strings quoted when
// a plain scalar would be read back as something else; numbers as JSON
// writes them, shortest round-trip). Ends with a newline.
std::string render_yaml(const Json& doc);

// Renders `doc` in `format`; `to_table` turns the document into the human
// text used for the table formats (it may join several tables and lines).
using TableText = std::function<std::string(const Json& doc, const TableStyle& style)>;
std::string render(const Json& doc, Format format, const TableText& to_table, bool headers = true);

// Human units for tables: "8Gi" (format_bytes), "30.0%" (a fraction 0..1),
// "1.5s"/"20ms" (nanoseconds), "2h3m" (uptime).
std::string human_bytes(uint64_t bytes);
std::string human_percent(double fraction);
std::string human_duration(uint64_t ns);

}  // namespace vgpu::cli
