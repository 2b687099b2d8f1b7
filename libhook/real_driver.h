// RealDriver: the real libcuda.so.1 (and libnvidia-ml.so.1) behind the hook.
//
// The driver is opened with dlopen("libcuda.so.1") on first need, never in a
// constructor. Each hooked row's real function is the driver's export of
// exactly the row's symbol name (dlsym on the driver's handle), so a wrapper
// forwards to exactly the ABI it replaces (a _ptsz wrapper to the real _ptsz
// function, a legacy wrapper to the legacy function). A row the driver does
// not export has no real function: its wrapper returns CUDA_ERROR_NOT_FOUND
// (charging.h) and calls nothing. cuGetProcAddress is deliberately not used
// for this: drivers 535/550 answer a version above their own with success and
// their newest older ABI (cuGraphAddNode for cuGraphAddNode_v2), which a
// wrapper of the newer ABI must never call. The driver's cuGetProcAddress
// answer for each exported row is remembered only to recognise it when an
// application's lookup returns it (hook_table.h redirect_to_wrapper).
//
// Thread-safety: all functions are thread-safe. Pointers stay valid for the
// life of the process (the libraries are never closed).
#pragma once

namespace vgpu::hook {

// The real dlsym (glibc's, found with dlvsym), never the hook's override.
using DlsymFn = void* (*)(void*, const char*);
DlsymFn real_dlsym();
// Sets it (the stub's, stub_abi.h): from a library loaded with dlopen,
// RTLD_NEXT does not reliably lead to libc.
void set_real_dlsym(DlsymFn fn);

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
