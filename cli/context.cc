#include "context.h"

namespace vgpu::cli {

int Context::print(const Json& doc, const TableText& to_table) const {
  *out << render(doc, output_format(), to_table, !no_headers);
  out->flush();
  return kExitOk;
}

int Context::fail(const std::string& message) const {
  *err << "vgpuctl: " << message << "\n";
  return kExitFailure;
}

int Context::usage_error(const std::string& command_path, const std::string& message) const {
  *err << "vgpuctl: " << message << "\n"
       << "Run '" << command_path << " --help' for usage.\n";
  return kExitUsage;
}

}  // namespace vgpu::cli
