#include "command_tree.h"

#include "suggest.h"

namespace vgpu::cli {

namespace {

// CLI11 shows a checked option's type as "FORMAT:{table,json}"; the part
// after ':' in braces is the IsMember set.
void split_type(const std::string& type, OptionInfo* info) {
  size_t colon = type.find(":{");
  info->value = type.substr(0, colon);
  if (colon == std::string::npos || type.back() != '}') return;
  std::string set = type.substr(colon + 2, type.size() - colon - 3);
  for (size_t start = 0; start <= set.size();) {
    size_t comma = set.find(',', start);
    if (comma == std::string::npos) comma = set.size();
    if (comma > start) info->choices.push_back(set.substr(start, comma - start));
    start = comma + 1;
  }
}

OptionInfo info_of(const CLI::Option& o) {
  OptionInfo info;
  for (const auto& s : o.get_snames()) info.names.push_back("-" + s);
  for (const auto& l : o.get_lnames()) info.names.push_back("--" + l);
  bool positional = info.names.empty();
  if (positional) info.names.push_back(o.get_name(true));
  if (o.get_items_expected_max() > 0) split_type(o.get_type_name(), &info);
  if (positional) info.value.clear();  // "NAME", not "NAME TEXT"
  info.path = info.value == "PATH" || info.value == "DIR";
  info.required = o.get_required();
  info.description = o.get_description();
  return info;
}

void walk(const CLI::App& app, std::vector<std::string>& path, std::vector<std::vector<std::string>>* out) {
  for (const CLI::App* sub : subcommands_of(app)) {
    path.push_back(sub->get_name());
    out->push_back(path);
    walk(*sub, path, out);
    path.pop_back();
  }
}

}  // namespace

std::vector<OptionInfo> named_options(const CLI::App& app) {
  std::vector<OptionInfo> out;
  for (const CLI::Option* o : app.get_options())
    if (o->nonpositional()) out.push_back(info_of(*o));
  return out;
}

std::vector<OptionInfo> positionals(const CLI::App& app) {
  std::vector<OptionInfo> out;
  for (const CLI::Option* o : app.get_options())
    if (!o->nonpositional()) out.push_back(info_of(*o));
  return out;
}

std::vector<std::vector<std::string>> command_paths(const CLI::App& root) {
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> path;
  walk(root, path, &out);
  return out;
}

const CLI::App* command_at(const CLI::App& root, const std::vector<std::string>& path) {
  const CLI::App* at = &root;
  for (const auto& name : path) {
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : subcommands_of(*at))
      if (sub->get_name() == name) next = sub;
    if (next == nullptr) return nullptr;
    at = next;
  }
  return at;
}

std::string join(const std::vector<std::string>& words, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? sep : "") + words[i];
  return out;
}

}  // namespace vgpu::cli
