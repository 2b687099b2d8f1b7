#include "output.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include <yaml-cpp/yaml.h>

#include "vgpu/units.h"

namespace vgpu::cli {

std::optional<Format> parse_format(const std::string& name) {
  if (name == "table") return Format::kTable;
  if (name == "wide") return Format::kWide;
  if (name == "json") return Format::kJson;
  if (name == "yaml") return Format::kYaml;
  return std::nullopt;
}

std::string render_table(const Table& table, const TableStyle& style) {
  std::vector<size_t> shown;
  for (size_t i = 0; i < table.header.size(); ++i)
    if (style.wide || std::find(table.wide_only.begin(), table.wide_only.end(), i) == table.wide_only.end())
      shown.push_back(i);
  std::vector<size_t> width(shown.size(), 0);
  auto cell = [](const std::vector<std::string>& row, size_t i) { return i < row.size() ? row[i] : std::string(); };
  auto widen = [&](const std::vector<std::string>& row) {
    for (size_t k = 0; k < shown.size(); ++k) width[k] = std::max(width[k], cell(row, shown[k]).size());
  };
  if (style.headers) widen(table.header);
  for (const auto& row : table.rows) widen(row);
  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t k = 0; k < shown.size(); ++k) {
      std::string c = cell(row, shown[k]);
      line += c;
      if (k + 1 < shown.size()) line += std::string(width[k] - c.size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  if (style.headers) emit(table.header);
  for (const auto& row : table.rows) emit(row);
  return out;
}

std::string short_uuid(const std::string& uuid) {
  for (const char* prefix : {"MIG-GPU-", "GPU-", "MIG-"}) {
    std::string p = prefix;
    if (uuid.rfind(p, 0) != 0) continue;
    size_t hex = 0;
    while (p.size() + hex < uuid.size() && hex < 8 && std::isxdigit(static_cast<unsigned char>(uuid[p.size() + hex])))
      ++hex;
    return hex == 8 ? uuid.substr(0, p.size() + 8) : uuid;
  }
  return uuid;
}

std::string table_uuid(const std::string& uuid, const TableStyle& style) {
  return style.wide ? uuid : short_uuid(uuid);
}

namespace {

// Plain YAML scalars that a YAML 1.1 or 1.2 reader would not take for a
// string. yaml-cpp leaves "yes" or "12" plain, so vgpuctl decides the quoting.
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

void emit_string(YAML::Emitter& e, const std::string& s) {
  if (plain_safe(s)) e << s;
  else e << YAML::DoubleQuoted << s;
}

void emit_node(YAML::Emitter& e, const Json& v) {
  if (v.is_object()) {
    if (v.empty()) e << YAML::Flow;
    e << YAML::BeginMap;
    for (const auto& [key, value] : v.items()) {
      e << YAML::Key;
      emit_string(e, key);
      e << YAML::Value;
      emit_node(e, value);
    }
    e << YAML::EndMap;
  } else if (v.is_array()) {
    if (v.empty()) e << YAML::Flow;
    e << YAML::BeginSeq;
    for (const auto& item : v) emit_node(e, item);
    e << YAML::EndSeq;
  } else if (v.is_string()) {
    emit_string(e, v.get_ref<const std::string&>());
  } else if (v.is_null()) {
    e << YAML::Null;
  } else if (v.is_boolean()) {
    e << YAML::TrueFalseBool << YAML::LowerCase << v.get<bool>();
  } else {
    // Numbers, booleans and null as JSON writes them: yaml-cpp's own double
    // formatting would print 0.3 as 0.29999999999999999.
    e << v.dump();
  }
}

}  // namespace

std::string render_yaml(const Json& doc) {
  YAML::Emitter e;
  e.SetIndent(2);
  e.SetSeqFormat(YAML::Block);
  e.SetMapFormat(YAML::Block);
  emit_node(e, doc);
  return std::string(e.c_str()) + "\n";
}

std::string render(const Json& doc, Format format, const TableText& to_table, bool headers) {
  switch (format) {
    case Format::kJson: return doc.dump(2) + "\n";
    case Format::kYaml: return render_yaml(doc);
    case Format::kWide: return to_table(doc, TableStyle{true, headers});
    case Format::kTable: break;
  }
  return to_table(doc, TableStyle{false, headers});
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
