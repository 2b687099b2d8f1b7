// RealDriver: the real libcuda.so.1 (and libnvidia-ml.so.1) behind the hook.
//
// The driver is opened with dlopen("libcuda.so.1") on first need, never in a
// constructor, and every hooked symbol is resolved through the driver's own
// cuGetProcAddress_v2 by (base name, version, per-thread flag), so each
// wrapper forwards to exactly the ABI it replaces (a _ptsz wrapper to the
// real _ptsz function, a legacy wrapper to the legacy function). Symbols the
// driver does not report that way are looked up by name in its handle.
//
// Thread-safety: all functions are thread-safe. Pointers stay valid for the
// life of the process (the libraries are never closed).
#pragma once

namespace vgpu::hook {

// The real dlsym (glibc's, found with dlvsym), never the hook's override.
using DlsymFn = void* (*)(void*, const char*);
DlsymFn real_dlsym();

// Handle of the real libcuda.so.1, or nullptr if it cannot be loaded.
void* real_cuda_handle();
// Handle of the real libnvidia-ml.so.1, or nullptr.
void* real_nvml_handle();

// Resolves the hook table once (idempotent); true when libcuda was loaded.
bool ensure_real_driver();

// A driver function the hook calls but does not intercept, by exported name.
void* real_cuda_symbol(const char* name);
void* real_nvml_symbol(const char* name);

// True while this thread is inside the hook's own initialisation; lookups
// made then (e.g. by the driver's constructors) pass straight through.
bool in_hook_init();

}  // namespace vgpu::hook
