#include "uuid_text.h"

#include <cctype>
#include <cstring>

namespace vgpu::hook {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

}  // namespace

bool parse_uuid_text(const char* text, unsigned char out[16]) {
  if (!text) return false;
  if (std::strncmp(text, "GPU-", 4) == 0 || std::strncmp(text, "MIG-", 4) == 0) text += 4;
  int nibbles = 0;
  for (; *text && nibbles < 32; ++text) {
    if (*text == '-') continue;
    int v = hex_value(*text);
    if (v < 0) return false;
    if (nibbles % 2 == 0) out[nibbles / 2] = static_cast<unsigned char>(v << 4);
    else out[nibbles / 2] |= static_cast<unsigned char>(v);
    ++nibbles;
  }
  return nibbles == 32 && *text == '\0';
}

}  // namespace vgpu::hook
