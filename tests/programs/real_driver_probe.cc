// Facts about libvgpu.so over NVIDIA's real libcuda.so.1 (no GPU needed),
// printed one per line for hook_real_driver_test to judge.
//
// Usage: real_driver_probe rows LIBVGPU        (under LD_PRELOAD=LIBVGPU)
//   For each row of libhook/hooks.inc, in table order:
//     ROW <symbol> exact=<0|1> resolved=<name|none|?> default=<0|1>
//   exact: the driver exports <symbol>; resolved: the driver export the row
//   forwards to (read from the hook's resolution table vgpu::hook::g_real
//   found in LIBVGPU's ELF symbol table: the only place that shows it
//   without a GPU); default: dlsym(RTLD_DEFAULT, symbol) is non-null.
// Usage: real_driver_probe procaddr            (under LD_PRELOAD)
//   For each row's base name and per-thread flag, at CUDA 11.0 .. 13.0:
//     GPA <base> <version> <flags> real=<name|none|rc> hook=<name|none|rc>
//   real: what the driver's cuGetProcAddress_v2 gives; hook: what the hook's
//   gives (a libvgpu.so wrapper's name with "@hook", or the driver
//   function's name); rc<n> when the lookup fails.
// Usage: real_driver_probe call before|after real|hook LIBVGPU NAME...
//   Calls each NAME with zero/null arguments in its own forked child (after
//   cuInit(0) for "after"): from the driver's handle (real) or the hook's
//   (hook). Prints CALL <name> init=<rc> rc=<rc> | absent | signal=<n> |
//   timeout.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

struct Row {
  const char* symbol;
  const char* base;
  bool per_thread;
};
// The hook's rows in the hook's own order (its table is indexed the same way).
#define VGPU_HOOK(sym, base, version, suffix) {#sym, #base, sizeof(#suffix) > 1},
const Row kRows[] = {
#include "hooks.inc"
};
#undef VGPU_HOOK
constexpr int kRowCount = sizeof(kRows) / sizeof(kRows[0]);

using Dlsym = void* (*)(void*, const char*);
// glibc's dlsym: the hook exports its own dlsym, which this probe must bypass.
Dlsym libc_dlsym() {
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void* p = libc ? dlvsym(libc, "dlsym", "GLIBC_2.34") : nullptr;
  if (!p && libc) p = dlvsym(libc, "dlsym", "GLIBC_2.2.5");
  return reinterpret_cast<Dlsym>(p);
}

void* driver() { return dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD); }

// The exported name defined exactly at `fn`, "none" for null, "?" otherwise.
std::string name_of(void* fn) {
  if (!fn) return "none";
  Dl_info info;
  if (dladdr(fn, &info) && info.dli_sname && info.dli_saddr == fn) return info.dli_sname;
  return "?";
}

// Offset of symbol `want` in the ELF file's .symtab, or 0.
uint64_t symtab_offset(const std::string& path, const char* want) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> img((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (img.size() < sizeof(Elf64_Ehdr)) return 0;
  auto* eh = reinterpret_cast<const Elf64_Ehdr*>(img.data());
  if (eh->e_shoff + uint64_t(eh->e_shnum) * sizeof(Elf64_Shdr) > img.size()) return 0;
  auto* sh = reinterpret_cast<const Elf64_Shdr*>(img.data() + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum) continue;
    const Elf64_Shdr& str = sh[sh[i].sh_link];
    if (sh[i].sh_offset + sh[i].sh_size > img.size() || str.sh_offset + str.sh_size > img.size()) return 0;
    auto* syms = reinterpret_cast<const Elf64_Sym*>(img.data() + sh[i].sh_offset);
    for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); ++k)
      if (syms[k].st_name < str.sh_size && std::strcmp(img.data() + str.sh_offset + syms[k].st_name, want) == 0)
        return syms[k].st_value;
  }
  return 0;
}

int rows(const std::string& libvgpu) {
  Dlsym real_dlsym = libc_dlsym();
  void* cuda = driver();
  if (!real_dlsym || !cuda) return std::printf("FAIL no libc dlsym or no libcuda.so.1\n"), 1;
  // Any wrapper resolves the whole table; cuMemFree_v2(0) is harmless.
  cuMemFree_v2(0);
  Dl_info hook;
  if (!dladdr(reinterpret_cast<void*>(&cuMemFree_v2), &hook) || !strstr(hook.dli_fname, "libvgpu"))
    return std::printf("FAIL cuMemFree_v2 is not libvgpu.so's (LD_PRELOAD?)\n"), 1;
  // The table lives in libvgpu-core.so, next to libvgpu.so (stub_abi.h), which
  // the call above loaded.
  std::string core = libvgpu.substr(0, libvgpu.rfind('/') + 1) + "libvgpu-core.so";
  uint64_t table = symtab_offset(core, "_ZN4vgpu4hook6g_realE");
  uint64_t resolved = symtab_offset(core, "_ZN4vgpu4hook10g_resolvedE");
  if (!table || !resolved)
    return std::printf("FAIL vgpu::hook::g_real/g_resolved not in %s's symbol table\n", core.c_str()), 1;
  void* core_handle = dlopen(core.c_str(), RTLD_NOW | RTLD_NOLOAD);
  link_map* core_map = nullptr;
  if (!core_handle || dlinfo(core_handle, RTLD_DI_LINKMAP, &core_map) != 0 || !core_map)
    return std::printf("FAIL %s is not loaded after a hooked call\n", core.c_str()), 1;
  auto base = reinterpret_cast<char*>(core_map->l_addr);
  if (!*reinterpret_cast<volatile bool*>(base + resolved)) return std::printf("FAIL the hook did not resolve\n"), 1;
  auto real = reinterpret_cast<void* const*>(base + table);
  for (int i = 0; i < kRowCount; ++i) {
    const char* sym = kRows[i].symbol;
    std::printf("ROW %s exact=%d resolved=%s default=%d\n", sym, real_dlsym(cuda, sym) != nullptr,
                name_of(real[i]).c_str(), dlsym(RTLD_DEFAULT, sym) != nullptr);
  }
  return 0;
}

// A lookup's answer: "rc<n>" on failure, else the function's name, with
// "@hook" when it is a libvgpu.so wrapper.
std::string answer(CUresult rc, void* fn) {
  if (rc != CUDA_SUCCESS) return "rc" + std::to_string(rc);
  Dl_info info;
  bool hook = fn && dladdr(fn, &info) && info.dli_fname && strstr(info.dli_fname, "libvgpu");
  return name_of(fn) + (hook ? "@hook" : "");
}

int procaddr() {
  Dlsym real_dlsym = libc_dlsym();
  void* cuda = driver();
  auto real_gpa = reinterpret_cast<decltype(&cuGetProcAddress_v2)>(cuda ? real_dlsym(cuda, "cuGetProcAddress_v2") : nullptr);
  if (!real_gpa) return std::printf("FAIL no real cuGetProcAddress_v2\n"), 1;
  const int versions[] = {11000, 11010, 11020, 11030, 11040, 11050, 11060, 11070, 11080, 12000, 12010,
                          12020, 12030, 12040, 12050, 12060, 12080, 12090, 13000};
  std::string last;
  for (const Row& row : kRows) {
    std::string key = std::string(row.base) + (row.per_thread ? "/pt" : "");
    if (last.find(" " + key + " ") != std::string::npos) continue;
    last += " " + key + " ";
    cuuint64_t flags = row.per_thread ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_LEGACY_STREAM;
    for (int v : versions) {
      void *r = nullptr, *h = nullptr;
      CUdriverProcAddressQueryResult rs, hs;
      CUresult rrc = real_gpa(row.base, &r, v, flags, &rs);
      CUresult hrc = cuGetProcAddress_v2(row.base, &h, v, flags, &hs);
      std::printf("GPA %s %d %llu real=%s hook=%s\n", row.base, v, static_cast<unsigned long long>(flags),
                  answer(rrc, r).c_str(), answer(hrc, h).c_str());
    }
  }
  return 0;
}

using AnyFn = CUresult (*)(uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t,
                           uintptr_t, uintptr_t, uintptr_t, uintptr_t);

int call(bool after, bool hooked, const std::string& libvgpu, const std::vector<std::string>& names) {
  Dlsym real_dlsym = libc_dlsym();
  void* cuda = driver();
  void* lib = hooked ? dlopen(libvgpu.c_str(), RTLD_NOW | RTLD_NOLOAD) : cuda;
  if (!real_dlsym || !cuda || !lib) return std::printf("FAIL cannot open %s\n", hooked ? libvgpu.c_str() : "libcuda"), 1;
  auto init = reinterpret_cast<CUresult (*)(unsigned)>(real_dlsym(cuda, "cuInit"));
  for (const std::string& name : names) {
    auto fn = reinterpret_cast<AnyFn>(real_dlsym(lib, name.c_str()));
    if (!fn) {
      std::printf("CALL %s absent\n", name.c_str());
      continue;
    }
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      int init_rc = after ? init(0) : -1;
      CUresult rc = fn(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
      std::printf("CALL %s init=%d rc=%d\n", name.c_str(), init_rc, static_cast<int>(rc));
      std::fflush(stdout);
      _exit(0);
    }
    // Waits on the child's exit with a deadline (a pidfd would need Linux 5.3).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    int status = 0;
    pid_t got = 0;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && std::chrono::steady_clock::now() < deadline) poll(nullptr, 0, 5);
    if (got == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      std::printf("CALL %s timeout\n", name.c_str());
    } else if (WIFSIGNALED(status)) {
      std::printf("CALL %s signal=%d\n", name.c_str(), WTERMSIG(status));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "rows" && argc == 3) return rows(argv[2]);
  if (mode == "procaddr") return procaddr();
  if (mode == "call" && argc >= 5)
    return call(std::string(argv[2]) == "after", std::string(argv[3]) == "hook", argv[4],
                std::vector<std::string>(argv + 5, argv + argc));
  std::fprintf(stderr, "usage: see the comment at the top of real_driver_probe.cc\n");
  return 2;
}
