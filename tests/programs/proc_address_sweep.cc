// Asks the libcuda.so.1 on LD_LIBRARY_PATH (dlopened by that name: NVIDIA's
// real driver or simgpu) for every base name of the entry-point table, and a
// few names no driver has, at a range of CUDA versions and flags, through
// cuGetProcAddress_v2 and the legacy cuGetProcAddress, and prints one line
// per lookup, so simgpu_real_driver_test can compare the two drivers'
// answers line by line. Pointers are printed as the name of the export they
// equal ("null", "untouched" when *pfn was not written, "?" when the pointer
// is no export of the table).
//
// Output: "VERSION <cuDriverGetVersion>", then
//   <name> <version> <flags> rc=<rc> st=<status|untouched> p=<export> legacy rc=<rc> p=<export>
// NULL symbol or pfn are not asked: the real driver dereferences them.
// Usage: proc_address_sweep
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <string>

namespace {

struct Row {
  const char* symbol;
  const char* base;
};
const Row kRows[] = {
#define VGPU_DRIVER_API(sym, base, version, suffix) {#sym, #base},
#include "driver_api.inc"
#undef VGPU_DRIVER_API
};

using GetProcV2 = int (*)(const char*, void**, int, uint64_t, int*);
using GetProcV1 = int (*)(const char*, void**, int, uint64_t);
using DriverGetVersion = int (*)(int*);

void* const kUntouched = reinterpret_cast<void*>(0x1);
constexpr int kStatusUntouched = 77;

}  // namespace

int main() {
  void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    std::fprintf(stderr, "proc_address_sweep: %s\n", dlerror());
    return 1;
  }
  auto v2 = reinterpret_cast<GetProcV2>(dlsym(h, "cuGetProcAddress_v2"));
  auto v1 = reinterpret_cast<GetProcV1>(dlsym(h, "cuGetProcAddress"));
  auto version = reinterpret_cast<DriverGetVersion>(dlsym(h, "cuDriverGetVersion"));
  int driver = 0;
  if (!v2 || !v1 || !version || version(&driver) != 0) {
    std::fprintf(stderr, "proc_address_sweep: the driver lacks cuGetProcAddress(_v2) or cuDriverGetVersion\n");
    return 1;
  }
  std::printf("VERSION %d\n", driver);
  // Exports by address (aliases joined with '='), names to ask.
  std::map<void*, std::string> exports;
  std::set<std::string> names = {"cuNoSuchFunction", "cuMemAlloc_v2", "cuLaunchKernel_ptsz", "cuGraphAddNode_v2", ""};
  for (const Row& r : kRows) {
    names.insert(r.base);
    if (void* p = dlsym(h, r.symbol)) {
      std::string& n = exports[p];
      n += (n.empty() ? "" : "=") + std::string(r.symbol);
    }
  }
  auto name_of = [&](void* p) -> std::string {
    if (p == kUntouched) return "untouched";
    if (!p) return "null";
    auto it = exports.find(p);
    return it == exports.end() ? "?" : it->second;
  };
  const int versions[] = {-1,    0,     1000,  2000,  3000,  3020,  4000,  6050,  7000,  9020,
                          10000, 11000, 11020, 11030, 11040, 11060, 11070, 11080, 12000, 12010,
                          12020, 12021, 12030, 12040, 12050, 12080, 13000, 99999};
  const uint64_t flags[] = {0, 1, 2, 3, 4, 0x80};
  for (const std::string& n : names)
    for (int v : versions)
      for (uint64_t f : flags) {
        void* p = kUntouched;
        int st = kStatusUntouched;
        int rc = v2(n.c_str(), &p, v, f, &st);
        void* q = kUntouched;
        int rc1 = v1(n.c_str(), &q, v, f);
        std::printf("%s %d %llu rc=%d st=%s p=%s legacy rc=%d p=%s\n", n.empty() ? "<empty>" : n.c_str(), v,
                    static_cast<unsigned long long>(f), rc,
                    st == kStatusUntouched ? "untouched" : std::to_string(st).c_str(), name_of(p).c_str(), rc1,
                    name_of(q).c_str());
      }
  return 0;
}
