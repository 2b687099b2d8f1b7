// Fuzz target: vgpud's configuration parser, vgpu::sched::parse_config, on
// the input as YAML text. It must return a value or an error naming the
// place; an exception escaping it, a crash or a sanitizer report is a
// finding. An accepted configuration must also satisfy the rules the parser
// promises (validate_tenant / validate_requests, values in range), so a
// parser that lets a bad value through is a finding too.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "config.h"

namespace {

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz_config: FINDING: %s\n", what.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vgpu::sched;
  std::string text(reinterpret_cast<const char*>(data), size);
  auto cfg = parse_config(text, "fuzz.yaml");
  if (!cfg) {
    // Errors name the file (and, where known, the line and key).
    if (cfg.error().find("fuzz.yaml") == std::string::npos) finding("error without the file name: " + cfg.error());
    return 0;
  }
  for (const TenantConfig& t : cfg->tenants) {
    if (auto ok = validate_tenant(t); !ok) finding("accepted an invalid tenant: " + ok.error());
    if (!(t.request >= 0 && t.request <= 1) || !(t.limit >= 0 && t.limit <= 1))
      finding("accepted a share outside 0..1 for tenant '" + t.name + "'");
  }
  if (auto ok = validate_requests(cfg->tenants); !ok) finding("accepted requests above 100%: " + ok.error());
  return 0;
}
