#include "suggest.h"

#include <algorithm>

namespace vgpu::cli {

size_t edit_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment: three rows of the dynamic programme.
  std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) cur[j] = std::min(cur[j], prev2[j - 2] + 1);
    }
    prev2 = prev;
    prev = cur;
  }
  return prev[b.size()];
}

std::vector<std::string> suggestions(const std::string& word, const std::vector<std::string>& candidates) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    bool prefix = word.size() >= 2 && c.rfind(word, 0) == 0;
    if (d <= 2 || prefix) scored.emplace_back(prefix ? 0 : d, c);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<std::string> out;
  for (auto& s : scored) out.push_back(s.second);
  return out;
}

std::string UnknownCommand::message() const {
  std::string m = "unknown command '" + word + "' for '" + parent + "'";
  if (suggestions.empty()) return m;
  m += " (did you mean ";
  for (size_t i = 0; i < suggestions.size(); ++i)
    m += (i == 0 ? "" : i + 1 == suggestions.size() ? " or " : ", ") + ("'" + suggestions[i] + "'");
  return m + "?)";
}

std::vector<const CLI::App*> subcommands_of(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App*) { return true; });
}

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* s : subcommands_of(app)) names.push_back(s->get_name());
  return names;
}

namespace {

// The option `name` ("--socket", "-o") of `app` or of a parent (global
// options fall through); nullptr if none.
const CLI::Option* find_option(const CLI::App* app, const std::string& name) {
  for (; app != nullptr; app = app->get_parent())
    for (const CLI::Option* o : app->get_options())
      if (o->check_name(name)) return o;
  return nullptr;
}

}  // namespace

std::optional<UnknownCommand> find_unknown_command(const CLI::App& root, const std::vector<std::string>& args) {
  const CLI::App* at = &root;
  std::string path = root.get_name();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.size() > 1 && a[0] == '-') {
      if (a.find('=') != std::string::npos) continue;                  // --socket=PATH
      if (a[1] != '-' && a.size() > 2) continue;                       // -ojson
      const CLI::Option* o = find_option(at, a);
      if (o != nullptr && o->get_items_expected_max() > 0) ++i;  // its value
      continue;
    }
    std::vector<std::string> names = subcommand_names(*at);
    if (names.empty()) return std::nullopt;  // positional arguments of a leaf command
    auto sub = std::find(names.begin(), names.end(), a);
    if (sub == names.end()) return UnknownCommand{path, a, suggestions(a, names)};
    at = subcommands_of(*at)[sub - names.begin()];
    path += " " + a;
  }
  return std::nullopt;
}

}  // namespace vgpu::cli
