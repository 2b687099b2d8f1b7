// Modules, libraries and kernels loaded from PTX. simgpu does not execute
// device code: a kernel's effect is its engine time. `spin_ns(u64 ns)` occupies
// the engine for `ns`; any other kernel for kDefaultKernelNs.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "driver.h"
#include "vgpu/result.h"

namespace simgpu {

constexpr uint64_t kDefaultKernelNs = 2'000;

struct KernelParam {
  size_t offset = 0;  // in the packed parameter buffer (honours alignment)
  size_t size = 0;
};

// A kernel as declared in PTX: `.entry name(.param .u64 a, .param .align 8 .b8 b[16])`.
struct KernelDecl {
  std::string name;
  std::vector<KernelParam> params;
  size_t param_bytes = 0;
};

// Parses every .entry of a PTX text. Fails on text that is not PTX.
vgpu::Result<std::vector<KernelDecl>> parse_ptx(std::string_view ptx);

// A module-scope variable in the .global or .const state space: device memory
// the driver allocates when the module is loaded (`offset` within the module's
// globals block, honouring `.align`).
struct GlobalDecl {
  std::string name;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Every module-scope .global/.const variable of a PTX text (`.extern` ones
// own no storage and are skipped). Sizes saturate at UINT64_MAX, so a huge
// declaration fails the load as out of memory instead of wrapping.
std::vector<GlobalDecl> parse_ptx_globals(std::string_view ptx);
// The bytes a module's globals take: the end of the last one, page rounded.
uint64_t globals_extent(const std::vector<GlobalDecl>& globals);

struct Module;
struct Library;

// CUfunction. A function handle may also be a CUkernel (Library kernel), which
// the driver accepts wherever a CUfunction is expected.
struct Function {
  Module* module = nullptr;
  Context* ctx = nullptr;
  const KernelDecl* decl = nullptr;
};

struct Module {
  Context* ctx = nullptr;
  Library* library = nullptr;  // set for modules made by a library
  std::vector<KernelDecl> kernels;
  // The globals block: one device allocation (MemKind::kModuleGlobals) owned
  // by ctx, charged to the device until the module is unloaded or ctx dies.
  std::vector<GlobalDecl> globals;
  CUdeviceptr globals_base = 0;
  std::vector<std::unique_ptr<Function>> functions;  // one per kernel
};

// CUkernel: a library kernel, context-independent; resolved to a Function of the
// current context on use.
struct Kernel {
  Library* library = nullptr;
  size_t index = 0;
};

struct Library {
  std::vector<KernelDecl> kernels;
  std::vector<GlobalDecl> globals;  // each context's module gets its own copy
  std::vector<std::unique_ptr<Kernel>> handles;
  std::mutex mu;
  std::vector<Module*> modules;  // one per context it was used in
};

extern HandleTable<Module> g_modules;
extern HandleTable<Function> g_functions;
extern HandleTable<Kernel> g_kernels;
extern HandleTable<Library> g_libraries;

// Resolves a CUfunction (or CUkernel cast to CUfunction) for launching in the
// current context. INVALID_HANDLE if it is neither.
CUresult resolve_function(CUfunction f, Function** out);

// The engine time a launch of `fn` with these arguments takes.
uint64_t kernel_duration_ns(const Function& fn, void** kernelParams, void** extra);

}  // namespace simgpu
