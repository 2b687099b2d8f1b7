// A small PTX reader: enough to find each kernel entry and the sizes of its
// parameters, which is all simgpu needs to launch it.
#include <cctype>
#include <cstdlib>

#include "module.h"

namespace simgpu {
namespace {

size_t scalar_size(std::string_view type) {
  // .u8 .s8 .b8 / .u16 .f16 ... / .u32 .f32 / .u64 .f64
  size_t digits = type.find_first_of("0123456789");
  if (digits == std::string_view::npos) return 0;
  int bits = std::atoi(std::string(type.substr(digits)).c_str());
  return bits >= 8 && bits % 8 == 0 ? static_cast<size_t>(bits / 8) : 0;
}

std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (std::isspace(static_cast<unsigned char>(s[i])) || s[i] == ',')) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j])) && s[j] != ',') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

// One parameter declaration: ".param .u64 name" or ".param .align 8 .b8 name[16]".
bool parse_param(std::string_view decl, KernelParam* p, size_t* align) {
  auto t = tokens(decl);
  size_t i = 0, a = 0;
  if (i < t.size() && t[i] == ".param") ++i;
  if (i + 1 < t.size() && t[i] == ".align") {
    a = std::strtoul(std::string(t[i + 1]).c_str(), nullptr, 10);
    i += 2;
  }
  while (i < t.size() && (t[i] == ".ptr" || t[i] == ".global" || t[i] == ".const")) ++i;
  if (i + 1 >= t.size()) return false;
  size_t elem = scalar_size(t[i]);
  if (elem == 0) return false;
  std::string_view name = t[i + 1];
  size_t count = 1, lb = name.find('[');
  if (lb != std::string_view::npos) count = std::strtoul(std::string(name.substr(lb + 1)).c_str(), nullptr, 10);
  p->size = elem * count;
  *align = a ? a : elem;
  return p->size > 0;
}

}  // namespace

vgpu::Result<std::vector<KernelDecl>> parse_ptx(std::string_view ptx) {
  if (ptx.find(".version") == std::string_view::npos || ptx.find(".target") == std::string_view::npos)
    return vgpu::make_error("not PTX text (no .version/.target directive)");
  std::vector<KernelDecl> out;
  for (size_t pos = ptx.find(".entry"); pos != std::string_view::npos; pos = ptx.find(".entry", pos + 6)) {
    size_t name_start = pos + 6;
    while (name_start < ptx.size() && std::isspace(static_cast<unsigned char>(ptx[name_start]))) ++name_start;
    size_t name_end = name_start;
    while (name_end < ptx.size() && (std::isalnum(static_cast<unsigned char>(ptx[name_end])) ||
                                     ptx[name_end] == '_' || ptx[name_end] == '$'))
      ++name_end;
    KernelDecl k;
    k.name = std::string(ptx.substr(name_start, name_end - name_start));
    if (k.name.empty()) return vgpu::make_error("malformed .entry directive");
    size_t open = ptx.find_first_not_of(" \t\r\n", name_end);
    if (open != std::string_view::npos && ptx[open] == '(') {
      size_t close = ptx.find(')', open);
      if (close == std::string_view::npos) return vgpu::make_error("unterminated parameter list of " + k.name);
      std::string_view list = ptx.substr(open + 1, close - open - 1);
      for (size_t s = 0; s < list.size();) {
        size_t next = list.find(".param", s + 1);
        std::string_view one = list.substr(s, next == std::string_view::npos ? list.npos : next - s);
        KernelParam p;
        size_t align = 1;
        if (one.find(".param") != std::string_view::npos) {
          if (!parse_param(one, &p, &align)) return vgpu::make_error("unreadable parameter of " + k.name);
          p.offset = (k.param_bytes + align - 1) / align * align;
          k.param_bytes = p.offset + p.size;
          k.params.push_back(p);
        }
        if (next == std::string_view::npos) break;
        s = next;
      }
    }
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace simgpu
