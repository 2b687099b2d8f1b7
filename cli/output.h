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

enum class Format { kTable, kJson, kYaml };

// "table" | "json" | "yaml"; nullopt for anything else.
std::optional<Format> parse_format(const std::string& name);

// A text table: a header row and data rows, rendered with columns aligned
// (left-aligned, two spaces between columns, no trailing spaces).
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};
std::string render_table(const Table& table);

// Block-style YAML of a JSON tree (strings quoted when a plain scalar would
// be read back as something else). Ends with a newline.
std::string render_yaml(const Json& doc);

// Renders `doc` in `format`; `to_table` turns the document into the human
// text used for Format::kTable (it may join several tables and lines).
using TableText = std::function<std::string(const Json& doc)>;
std::string render(const Json& doc, Format format, const TableText& to_table);

// Human units for tables: "8Gi" (format_bytes), "30.0%" (a fraction 0..1),
// "1.5s"/"20ms" (nanoseconds), "2h3m" (uptime).
std::string human_bytes(uint64_t bytes);
std::string human_percent(double fraction);
std::string human_duration(uint64_t ns);

}  // namespace vgpu::cli
