// Module-scope variables of a PTX text: the .global and .const declarations
// whose storage the driver allocates in device memory when the module loads,
// e.g.
//   .visible .global .align 4 .b8 table[1048576];
//   .const .align 8 .u64 coeffs[4][16] = {...};
// Only top-level statements count (outside every {...} and (...)), so kernel
// parameters (`.param .ptr .global`) and instructions (`ld.global`) never do.
#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "module.h"

namespace simgpu {
namespace {

constexpr uint64_t kSaturated = UINT64_MAX;

uint64_t mul_sat(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kSaturated / b ? kSaturated : a * b;
}

uint64_t add_sat(uint64_t a, uint64_t b) { return a > kSaturated - b ? kSaturated : a + b; }

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t j = i;
    while (j < s.size() && !std::isspace(static_cast<unsigned char>(s[j]))) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

uint64_t scalar_bytes(std::string_view type) {
  if (type == ".pred") return 1;
  size_t digits = type.find_first_of("0123456789");
  if (digits == std::string_view::npos || type.size() < 2) return 0;
  uint64_t bits = std::strtoull(std::string(type.substr(digits)).c_str(), nullptr, 10);
  // .v2/.v4 vector prefixes are handled by the caller; .b8 .. .b64, .f16x2 (32 bits).
  if (type.find('x') != std::string_view::npos) bits *= 2;
  return bits >= 8 && bits % 8 == 0 ? bits / 8 : 0;
}

// Elements of `name[4][8]` (1 without brackets). An empty `[]` counts the
// initializer's elements, which the caller passes in `init_count`.
uint64_t element_count(std::string_view decl, uint64_t init_count) {
  uint64_t n = 1;
  for (size_t lb = decl.find('['); lb != std::string_view::npos; lb = decl.find('[', lb + 1)) {
    size_t rb = decl.find(']', lb);
    if (rb == std::string_view::npos) return 0;
    std::string dim(decl.substr(lb + 1, rb - lb - 1));
    uint64_t d = dim.empty() ? init_count : std::strtoull(dim.c_str(), nullptr, 10);
    if (!dim.empty() && dim.find_first_not_of("0123456789 ") != std::string::npos) return 0;
    n = mul_sat(n, d);
  }
  return n;
}

// One top-level statement; appends it to `out` if it declares a variable in
// the global or constant state space.
void take_statement(std::string_view st, std::vector<GlobalDecl>* out, uint64_t* end) {
  size_t eq = st.find('=');
  std::string_view decl = st.substr(0, eq);
  uint64_t init_count = 0;
  if (eq != std::string_view::npos) {
    init_count = 1;
    for (char ch : st.substr(eq)) init_count += ch == ',';
  }
  // Directives without a ';' (.version, .target, .address_size) may precede
  // the declaration in the same statement text: find its state space.
  auto w = words(decl);
  size_t i = 0;
  while (i < w.size() && w[i] != ".global" && w[i] != ".const") ++i;
  if (i >= w.size()) return;
  for (size_t k = i; k > 0 && (w[k - 1] == ".visible" || w[k - 1] == ".weak" || w[k - 1] == ".common" ||
                               w[k - 1] == ".extern");
       --k)
    if (w[k - 1] == ".extern") return;  // declared elsewhere: no storage here
  ++i;
  uint64_t align = 0, vec = 1, elem = 0;
  for (; i + 1 < w.size(); ++i) {
    if (w[i] == ".align" && i + 2 < w.size()) {
      align = std::strtoull(std::string(w[++i]).c_str(), nullptr, 10);
    } else if (w[i] == ".v2" || w[i] == ".v4" || w[i] == ".v8") {
      vec = w[i][2] - '0';
    } else if (w[i].substr(0, 1) == ".") {
      elem = scalar_bytes(w[i]);
    } else {
      break;
    }
  }
  if (i >= w.size() || elem == 0) return;
  std::string_view name = w[i];
  uint64_t size = mul_sat(mul_sat(elem, vec), element_count(name, init_count));
  if (size == 0) return;
  if (align == 0 || (align & (align - 1)) != 0) align = elem * vec;
  uint64_t offset = *end % align ? add_sat(*end, align - *end % align) : *end;
  GlobalDecl g;
  g.name = std::string(name.substr(0, name.find('[')));
  g.offset = offset;
  g.size = size;
  out->push_back(std::move(g));
  *end = add_sat(offset, size);
}

// `ptx` with its comments blanked out, so they can never hold a declaration.
std::string without_comments(std::string_view ptx) {
  std::string out(ptx);
  for (size_t i = 0; i + 1 < out.size(); ++i) {
    if (out[i] != '/' || (out[i + 1] != '/' && out[i + 1] != '*')) continue;
    size_t end = out[i + 1] == '/' ? out.find('\n', i) : out.find("*/", i + 2);
    end = end == std::string::npos ? out.size() : end + (out[i + 1] == '*' ? 2 : 0);
    for (size_t j = i; j < end; ++j) out[j] = ' ';
    i = end > 0 ? end - 1 : 0;
  }
  return out;
}

}  // namespace

std::vector<GlobalDecl> parse_ptx_globals(std::string_view text) {
  std::vector<GlobalDecl> out;
  std::string ptx = without_comments(text);
  uint64_t end = 0;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < ptx.size(); ++i) {
    char c = ptx[i];
    if (c == '{' || c == '(') {
      // A '{' at the top level opens a function body or an initializer; the
      // statement it belongs to is complete only at its ';'.
      ++depth;
    } else if (c == '}' || c == ')') {
      if (depth > 0) --depth;
      size_t next = ptx.find_first_not_of(" \t\r\n", i + 1);
      if (depth == 0 && c == '}' && (next == std::string::npos || ptx[next] != ';'))
        start = i + 1;  // end of a function body: no ';' follows
    } else if (c == ';' && depth == 0) {
      take_statement(std::string_view(ptx).substr(start, i - start), &out, &end);
      start = i + 1;
    }
  }
  return out;
}

uint64_t globals_extent(const std::vector<GlobalDecl>& globals) {
  uint64_t end = 0;
  for (const GlobalDecl& g : globals) end = std::max(end, add_sat(g.offset, g.size));
  return end;
}

}  // namespace simgpu
