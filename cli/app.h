// vgpuctl as a function: parses `args` (without the program name), runs the
// chosen command and returns the exit code (context.h). Output goes to `out`,
// errors (one line each) to `err`. main.cc and the unit tests call it.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace vgpu::cli {

int run_vgpuctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace vgpu::cli
