#include "terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace vgpu::cli {

size_t terminal_columns(int fd) {
  winsize ws{};
  if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  const char* env = std::getenv("COLUMNS");
  if (env == nullptr) return 0;
  char* end = nullptr;
  long n = std::strtol(env, &end, 10);
  return end != env && *end == '\0' && n > 0 && n < 100000 ? static_cast<size_t>(n) : 0;
}

std::string fit_width(const std::string& text, size_t width) {
  if (width == 0) return text;
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string::npos ? text.size() : nl;
    out.append(text, start, std::min(end - start, width));
    if (nl == std::string::npos) break;
    out += '\n';
    start = nl + 1;
  }
  return out;
}

size_t widest_line(const std::string& text) {
  size_t widest = 0, start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    size_t end = nl == std::string::npos ? text.size() : nl;
    widest = std::max(widest, end - start);
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return widest;
}

}  // namespace vgpu::cli
