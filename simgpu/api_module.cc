// Modules (cuModuleLoad*, cuModuleGetFunction), libraries and kernels
// (cuLibraryLoadData, cuLibraryGetKernel, cuKernelGetFunction), function queries.
//
// Module globals. Like the real driver, loading a module allocates device
// memory for its .global/.const variables in the module's context
// (cuModuleGetGlobal returns their addresses); the memory is charged to the
// device (cuMemGetInfo, NVML per-process use) until the module is unloaded or
// its context is destroyed. A load whose globals do not fit fails with
// CUDA_ERROR_OUT_OF_MEMORY. A library gets one copy per context: eagerly in
// the context current at cuLibraryLoadData (if any), lazily in others.
#include <cstring>
#include <fstream>
#include <sstream>

#include "memory.h"
#include "module.h"

namespace simgpu {

HandleTable<Module> g_modules;
HandleTable<Function> g_functions;
HandleTable<Kernel> g_kernels;
HandleTable<Library> g_libraries;

namespace {

// Returns the globals block of `m` (if still registered) and its charge.
void free_globals(Module* m) {
  if (!m->globals_base) return;
  // Gone already if the context's memory was freed first (destroy hooks).
  if (auto a = unregister_allocation(m->globals_base)) {
    give_back_address(a->device, a->base, a->extent);
    uncharge_device(a->device, a->charged);
  }
  m->globals_base = 0;
}

CUresult alloc_globals(Module* m) {
  uint64_t bytes = globals_extent(m->globals);
  if (bytes == 0) return CUDA_SUCCESS;
  if (bytes > UINT64_MAX - kPageSize) return CUDA_ERROR_OUT_OF_MEMORY;
  uint64_t charge = (bytes + kPageSize - 1) / kPageSize * kPageSize;
  return alloc_device_memory(m->ctx, bytes, charge, MemKind::kModuleGlobals, 0, &m->globals_base);
}

// A module of `ctx` with its globals allocated; nullptr (and *err) if they do
// not fit.
Module* make_module(Context* ctx, std::vector<KernelDecl> kernels, std::vector<GlobalDecl> globals, Library* lib,
                    CUresult* err) {
  auto* m = new Module();
  m->ctx = ctx;
  m->library = lib;
  m->globals = std::move(globals);
  if ((*err = alloc_globals(m)) != CUDA_SUCCESS) {
    delete m;
    return nullptr;
  }
  m->kernels = std::move(kernels);
  for (const KernelDecl& k : m->kernels) {
    auto f = std::make_unique<Function>();
    f->module = m;
    f->ctx = ctx;
    f->decl = &k;
    g_functions.add(f.get());
    m->functions.push_back(std::move(f));
  }
  g_modules.add(m);
  return m;
}

void unload(Module* m) {
  if (!g_modules.remove(m)) return;
  for (auto& f : m->functions) g_functions.remove(f.get());
  free_globals(m);
  // Function objects stay allocated: queued launches may still reference them.
}

CUresult load_image(const void* image, std::vector<KernelDecl>* out, std::vector<GlobalDecl>* globals) {
  if (!image) return CUDA_ERROR_INVALID_VALUE;
  const char* text = static_cast<const char*>(image);
  if (std::memcmp(text, "\x7f" "ELF", 4) == 0) {
    log_error("cuModuleLoadData: cubin images are not supported by simgpu; load PTX text");
    return CUDA_ERROR_INVALID_IMAGE;
  }
  auto parsed = parse_ptx(text);
  if (!parsed) {
    log_error("cuModuleLoadData: %s", parsed.error().c_str());
    return CUDA_ERROR_INVALID_PTX;
  }
  *out = std::move(parsed).value();
  *globals = parse_ptx_globals(text);
  return CUDA_SUCCESS;
}

bool read_whole_file(const char* path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::stringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// The module of `lib` for context `c`, created on first use.
CUresult library_module_in(Library* lib, Context* c, Module** out) {
  std::lock_guard<std::mutex> g(lib->mu);
  for (Module* m : lib->modules)
    if (m->ctx == c && g_modules.contains(m)) {
      *out = m;
      return CUDA_SUCCESS;
    }
  CUresult r = CUDA_SUCCESS;
  Module* m = make_module(c, lib->kernels, lib->globals, lib, &r);
  if (!m) return r;
  lib->modules.push_back(m);
  *out = m;
  return CUDA_SUCCESS;
}

// The module of `lib` for the current context, created on first use.
CUresult library_module(Library* lib, Module** out) {
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  return library_module_in(lib, c, out);
}

CUresult find_global(Module* m, const char* name, CUdeviceptr* dptr, size_t* bytes) {
  for (const GlobalDecl& g : m->globals)
    if (g.name == name) {
      if (dptr) *dptr = m->globals_base + g.offset;
      if (bytes) *bytes = g.size;
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_NOT_FOUND;
}

const KernelDecl* decl_of(CUfunction f) {
  if (g_functions.contains(f)) return reinterpret_cast<Function*>(f)->decl;
  if (g_kernels.contains(f)) {
    auto* k = reinterpret_cast<Kernel*>(f);
    return &k->library->kernels[k->index];
  }
  return nullptr;
}

struct ModuleCleanup {
  ModuleCleanup() {
    Driver::get().on_context_destroy([](Context* c) {
      for (Module* m : g_modules.snapshot())
        if (m->ctx == c) unload(m);
    });
  }
};

}  // namespace

CUresult resolve_function(CUfunction f, Function** out) {
  if (CUresult r = require_init()) return r;
  if (g_functions.contains(f)) {
    *out = reinterpret_cast<Function*>(f);
    return CUDA_SUCCESS;
  }
  if (!g_kernels.contains(f)) return CUDA_ERROR_INVALID_HANDLE;
  auto* k = reinterpret_cast<Kernel*>(f);
  Module* m = nullptr;
  if (CUresult r = library_module(k->library, &m)) return r;
  *out = m->functions[k->index].get();
  return CUDA_SUCCESS;
}

uint64_t kernel_duration_ns(const Function& fn, void** kernelParams, void** extra) {
  const KernelDecl& d = *fn.decl;
  if (d.name != "spin_ns" || d.params.empty() || d.params[0].size != 8) return kDefaultKernelNs;
  uint64_t ns = 0;
  if (kernelParams && kernelParams[0]) {
    std::memcpy(&ns, kernelParams[0], 8);
  } else if (extra) {
    for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2)
      if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER && extra[i + 1]) std::memcpy(&ns, extra[i + 1], 8);
  }
  return ns;
}

}  // namespace simgpu

using namespace simgpu;

static ModuleCleanup g_module_cleanup;

SIMGPU_EXPORT CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  if (!module) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  std::vector<KernelDecl> kernels;
  std::vector<GlobalDecl> globals;
  if (CUresult r = load_image(image, &kernels, &globals)) return r;
  CUresult r = CUDA_SUCCESS;
  Module* m = make_module(c, std::move(kernels), std::move(globals), nullptr, &r);
  if (!m) return r;
  *module = reinterpret_cast<CUmodule>(m);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions,
                                          CUjit_option* options, void** optionValues) {
  if (numOptions > 0 && (!options || !optionValues)) return CUDA_ERROR_INVALID_VALUE;
  return cuModuleLoadData(module, image);
}

SIMGPU_EXPORT CUresult cuModuleLoad(CUmodule* module, const char* fname) {
  if (!module || !fname) return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  if (CUresult r = current_context(&c)) return r;
  std::string text;
  if (!read_whole_file(fname, &text)) return CUDA_ERROR_FILE_NOT_FOUND;
  return cuModuleLoadData(module, text.c_str());
}

SIMGPU_EXPORT CUresult cuModuleUnload(CUmodule hmod) {
  if (CUresult r = require_init()) return r;
  auto* m = reinterpret_cast<Module*>(hmod);
  if (!g_modules.contains(m) || m->library) return CUDA_ERROR_INVALID_HANDLE;
  unload(m);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  if (!hfunc || !name) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = require_init()) return r;
  auto* m = reinterpret_cast<Module*>(hmod);
  if (!g_modules.contains(m)) return CUDA_ERROR_INVALID_HANDLE;
  for (auto& f : m->functions)
    if (f->decl->name == name) {
      *hfunc = reinterpret_cast<CUfunction>(f.get());
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_NOT_FOUND;
}

SIMGPU_EXPORT CUresult cuModuleGetFunctionCount(unsigned int* count, CUmodule mod) {
  if (CUresult r = require_init()) return r;
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  auto* m = reinterpret_cast<Module*>(mod);
  if (!g_modules.contains(m)) return CUDA_ERROR_INVALID_HANDLE;
  *count = static_cast<unsigned>(m->functions.size());
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr* dptr, size_t* bytes, CUmodule hmod, const char* name) {
  if (CUresult r = require_init()) return r;
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  if (!g_modules.contains(hmod)) return CUDA_ERROR_INVALID_HANDLE;
  return find_global(reinterpret_cast<Module*>(hmod), name, dptr, bytes);  // both outputs optional
}

SIMGPU_EXPORT CUresult cuFuncGetName(const char** name, CUfunction hfunc) {
  if (CUresult r = require_init()) return r;
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  const KernelDecl* d = decl_of(hfunc);
  if (!d) return CUDA_ERROR_INVALID_HANDLE;
  *name = d->name.c_str();
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t* paramOffset,
                                          size_t* paramSize) {
  if (CUresult r = require_init()) return r;
  const KernelDecl* d = decl_of(func);
  if (!d) return CUDA_ERROR_INVALID_HANDLE;
  // paramSize is optional; paramOffset is not.
  if (!paramOffset || paramIndex >= d->params.size()) return CUDA_ERROR_INVALID_VALUE;
  if (paramOffset) *paramOffset = d->params[paramIndex].offset;
  if (paramSize) *paramSize = d->params[paramIndex].size;
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc) {
  if (CUresult r = require_init()) return r;
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  if (!decl_of(hfunc)) return CUDA_ERROR_INVALID_HANDLE;
  switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = 1024; break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: *pi = 16; break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *pi = 90; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *pi = 49152; break;
    default:
      if (attrib < 0 || attrib >= CU_FUNC_ATTRIBUTE_MAX) return CUDA_ERROR_INVALID_VALUE;
      *pi = 0;
  }
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int) {
  if (CUresult r = require_init()) return r;
  if (!decl_of(hfunc)) return CUDA_ERROR_INVALID_HANDLE;
  return (attrib < 0 || attrib >= CU_FUNC_ATTRIBUTE_MAX) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache) {
  if (CUresult r = require_init()) return r;
  return decl_of(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

// --- libraries ------------------------------------------------------------

SIMGPU_EXPORT CUresult cuLibraryLoadData(CUlibrary* library, const void* code, CUjit_option*, void**,
                                         unsigned int, CUlibraryOption*, void**, unsigned int) {
  if (!library || !code) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = require_init()) return r;
  std::vector<KernelDecl> kernels;
  std::vector<GlobalDecl> globals;
  if (CUresult r = load_image(code, &kernels, &globals)) return r;
  auto* lib = new Library();
  lib->kernels = std::move(kernels);
  lib->globals = std::move(globals);
  if (Context* c = nullptr; current_context(&c) == CUDA_SUCCESS) {
    // Loaded into the current context now: its globals must fit there.
    Module* m = nullptr;
    if (CUresult r = library_module_in(lib, c, &m)) {
      delete lib;
      return r;
    }
  }
  for (size_t i = 0; i < lib->kernels.size(); ++i) {
    auto k = std::make_unique<Kernel>();
    k->library = lib;
    k->index = i;
    g_kernels.add(k.get());
    lib->handles.push_back(std::move(k));
  }
  g_libraries.add(lib);
  *library = reinterpret_cast<CUlibrary>(lib);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuLibraryLoadFromFile(CUlibrary* library, const char* fileName, CUjit_option* o, void** ov,
                                             unsigned int n, CUlibraryOption* lo, void** lov, unsigned int ln) {
  if (CUresult r = require_init()) return r;
  if (!library || !fileName) return CUDA_ERROR_INVALID_VALUE;
  std::string text;
  if (!read_whole_file(fileName, &text)) return CUDA_ERROR_FILE_NOT_FOUND;
  return cuLibraryLoadData(library, text.c_str(), o, ov, n, lo, lov, ln);
}

SIMGPU_EXPORT CUresult cuLibraryUnload(CUlibrary library) {
  if (CUresult r = require_init()) return r;
  auto* lib = reinterpret_cast<Library*>(library);
  if (!g_libraries.remove(lib)) return CUDA_ERROR_INVALID_HANDLE;
  for (auto& k : lib->handles) g_kernels.remove(k.get());
  std::lock_guard<std::mutex> g(lib->mu);
  for (Module* m : lib->modules) unload(m);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuLibraryGetKernel(CUkernel* pKernel, CUlibrary library, const char* name) {
  if (!pKernel || !name) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = require_init()) return r;
  auto* lib = reinterpret_cast<Library*>(library);
  if (!g_libraries.contains(lib)) return CUDA_ERROR_INVALID_HANDLE;
  for (size_t i = 0; i < lib->kernels.size(); ++i)
    if (lib->kernels[i].name == name) {
      *pKernel = reinterpret_cast<CUkernel>(lib->handles[i].get());
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_NOT_FOUND;
}

SIMGPU_EXPORT CUresult cuLibraryGetKernelCount(unsigned int* count, CUlibrary library) {
  if (CUresult r = require_init()) return r;
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  auto* lib = reinterpret_cast<Library*>(library);
  if (!g_libraries.contains(lib)) return CUDA_ERROR_INVALID_HANDLE;
  *count = static_cast<unsigned>(lib->kernels.size());
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuLibraryGetModule(CUmodule* pMod, CUlibrary library) {
  if (!pMod) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = require_init()) return r;
  auto* lib = reinterpret_cast<Library*>(library);
  if (!g_libraries.contains(lib)) return CUDA_ERROR_INVALID_HANDLE;
  Module* m = nullptr;
  if (CUresult r = library_module(lib, &m)) return r;
  *pMod = reinterpret_cast<CUmodule>(m);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuKernelGetFunction(CUfunction* pFunc, CUkernel kernel) {
  if (!pFunc) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = require_init()) return r;
  if (!g_kernels.contains(kernel)) return CUDA_ERROR_INVALID_HANDLE;
  Function* f = nullptr;
  if (CUresult r = resolve_function(reinterpret_cast<CUfunction>(kernel), &f)) return r;
  *pFunc = reinterpret_cast<CUfunction>(f);
  return CUDA_SUCCESS;
}

SIMGPU_EXPORT CUresult cuKernelGetName(const char** name, CUkernel hfunc) {
  if (CUresult r = require_init()) return r;
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  if (!g_kernels.contains(hfunc)) return CUDA_ERROR_INVALID_HANDLE;
  return cuFuncGetName(name, reinterpret_cast<CUfunction>(hfunc));
}

SIMGPU_EXPORT CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t* paramOffset,
                                            size_t* paramSize) {
  if (CUresult r = require_init()) return r;
  if (!g_kernels.contains(kernel)) return CUDA_ERROR_INVALID_HANDLE;
  return cuFuncGetParamInfo(reinterpret_cast<CUfunction>(kernel), paramIndex, paramOffset, paramSize);
}

SIMGPU_EXPORT CUresult cuLibraryGetGlobal(CUdeviceptr* dptr, size_t* bytes, CUlibrary library, const char* name) {
  if (CUresult r = require_init()) return r;
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  auto* lib = reinterpret_cast<Library*>(library);
  if (!g_libraries.contains(lib)) return CUDA_ERROR_INVALID_HANDLE;
  Module* m = nullptr;
  if (CUresult r = library_module(lib, &m)) return r;
  return find_global(m, name, dptr, bytes);
}
