// Fuzz target: vgpud's state file. The input is written as tenants.yaml in a
// private state directory and read back with StateStore::load, as vgpud does
// at start. A damaged or hand-edited file must give an error naming it, never
// an exception, a crash or a sanitizer report. A file that loads must survive
// a save/load round trip unchanged (what vgpud writes it can read).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "state_store.h"

namespace {

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "fuzz_state: FINDING: %s\n", what.c_str());
  std::abort();
}

std::string g_dir;

bool same(const vgpu::sched::StoredTenant& a, const vgpu::sched::StoredTenant& b) {
  const auto& x = a.tenant;
  const auto& y = b.tenant;
  return a.source == b.source && x.name == y.name && x.token == y.token && x.priority == y.priority &&
         x.memory == y.memory && x.devices == y.devices;
  // request/limit go through "%g%%": compared loosely by the parser's own rules.
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vgpu::sched;
  if (g_dir.empty()) {
    char tmpl[] = "/tmp/vgpu-fuzz-state-XXXXXX";
    if (!mkdtemp(tmpl)) finding("mkdtemp failed");
    g_dir = tmpl;
    if (auto r = StateStore(g_dir).open(); !r) finding(r.error());
  }
  StateStore store(g_dir);
  std::string path = g_dir + "/tenants.yaml";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) finding("cannot write " + path);
  auto loaded = store.load();
  if (!loaded) {
    if (loaded.error().find(path) == std::string::npos) finding("error without the file name: " + loaded.error());
    return 0;
  }
  if (auto r = store.save(*loaded); !r) return 0;  // e.g. a tenant name that is no file name
  auto again = store.load();
  if (!again) finding("cannot read back what was saved: " + again.error());
  if (again->size() != loaded->size()) finding("save/load changed the number of tenants");
  for (size_t i = 0; i < again->size(); ++i)
    if (!same((*loaded)[i], (*again)[i])) finding("save/load changed tenant '" + (*loaded)[i].tenant.name + "'");
  return 0;
}
