#include "output.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "vgpu/units.h"

namespace vgpu::cli {

std::optional<Format> parse_format(const std::string& name) {
  if (name == "table") return Format::kTable;
  if (name == "json") return Format::kJson;
  if (name == "yaml") return Format::kYaml;
  return std::nullopt;
}

std::string render_table(const Table& table) {
  std::vector<size_t> width(table.header.size(), 0);
  auto widen = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
  };
  widen(table.header);
  for (const auto& row : table.rows) widen(row);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < width.size(); ++i) {
      std::string cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < width.size()) line += std::string(width[i] - cell.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  emit(table.header);
  for (const auto& row : table.rows) emit(row);
  return out;
}

namespace {

// Plain YAML scalars that a YAML 1.1 or 1.2 reader would not take for a string.
bool looks_special(const std::string& s) {
  static const char* kWords[] = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"};
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* w : kWords)
    if (lower == w) return true;
  return false;
}

// A string may stay unquoted if it starts with a letter or '/' and holds only
// characters that have no meaning in YAML's plain style.
bool plain_safe(const std::string& s) {
  if (s.empty() || looks_special(s)) return false;
  if (!std::isalpha(static_cast<unsigned char>(s[0])) && s[0] != '/') return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '/';
  });
}

// A JSON double-quoted string is also a valid YAML double-quoted string.
std::string yaml_scalar(const Json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    return plain_safe(s) ? s : v.dump();
  }
  if (v.is_object()) return "{}";
  if (v.is_array()) return "[]";
  return v.dump();
}

bool is_block(const Json& v) { return (v.is_object() || v.is_array()) && !v.empty(); }

void emit_yaml(const Json& node, int indent, std::string* out);

// A sequence item: rendered as if it were a block two columns deeper, then
// its first line's indentation is replaced by "- ".
void emit_item(const Json& item, int indent, std::string* out) {
  std::string pad(indent, ' ');
  if (!is_block(item)) {
    *out += pad + "- " + yaml_scalar(item) + "\n";
    return;
  }
  std::string nested;
  emit_yaml(item, indent + 2, &nested);
  *out += pad + "- " + nested.substr(indent + 2);
}

void emit_yaml(const Json& node, int indent, std::string* out) {
  std::string pad(indent, ' ');
  if (node.is_array()) {
    for (const auto& item : node) emit_item(item, indent, out);
    return;
  }
  for (const auto& [key, value] : node.items()) {
    std::string k = plain_safe(key) ? key : Json(key).dump();
    if (!is_block(value)) {
      *out += pad + k + ": " + yaml_scalar(value) + "\n";
    } else {
      *out += pad + k + ":\n";
      emit_yaml(value, indent + 2, out);
    }
  }
}

}  // namespace

std::string render_yaml(const Json& doc) {
  if (!is_block(doc)) return yaml_scalar(doc) + "\n";
  std::string out;
  emit_yaml(doc, 0, &out);
  return out;
}

std::string render(const Json& doc, Format format, const TableText& to_table) {
  switch (format) {
    case Format::kJson: return doc.dump(2) + "\n";
    case Format::kYaml: return render_yaml(doc);
    case Format::kTable: break;
  }
  return to_table(doc);
}

std::string human_bytes(uint64_t bytes) { return format_bytes(bytes); }

std::string human_percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", fraction * 100.0);
  return buf;
}

std::string human_duration(uint64_t ns) {
  char buf[48];
  if (ns == 0) return "0";
  if (ns < 1'000) std::snprintf(buf, sizeof buf, "%lluns", static_cast<unsigned long long>(ns));
  else if (ns < 1'000'000) std::snprintf(buf, sizeof buf, "%.0fus", ns / 1e3);
  else if (ns < 1'000'000'000) std::snprintf(buf, sizeof buf, "%.0fms", ns / 1e6);
  else if (ns < 60'000'000'000ull) std::snprintf(buf, sizeof buf, "%.1fs", ns / 1e9);
  else {
    uint64_t s = ns / 1'000'000'000ull;
    if (s < 3600) std::snprintf(buf, sizeof buf, "%llum%llus", (unsigned long long)(s / 60), (unsigned long long)(s % 60));
    else std::snprintf(buf, sizeof buf, "%lluh%llum", (unsigned long long)(s / 3600), (unsigned long long)(s / 60 % 60));
  }
  return buf;
}

}  // namespace vgpu::cli
