// The terminal vgpuctl writes to, for `top`: whether stdout is one, how wide
// it is (TIOCGWINSZ, read again for every frame so that resizing works), and
// fitting text to a width without the terminal wrapping it.
// Pure functions except terminal_columns (a syscall); thread-safe.
#pragma once

#include <cstddef>
#include <string>

namespace vgpu::cli {

// Columns of the terminal on `fd`; else $COLUMNS if it is a number; else 0
// (unknown: do not cut).
size_t terminal_columns(int fd);

// Every line of `text` cut to at most `width` characters (0: unchanged).
// vgpuctl's tables are ASCII, so characters are bytes.
std::string fit_width(const std::string& text, size_t width);

// The widest line of `text`.
size_t widest_line(const std::string& text);

}  // namespace vgpu::cli
