// cuda.h and cudaTypedefs.h with the exact versioned and legacy prototypes
// (__CUDA_API_VERSION_INTERNAL disables cuda.h's name remapping), so each
// wrapper can be defined under the precise symbol it replaces.
#pragma once

#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <cudaTypedefs.h>

// Exported wrappers: the only default-visibility symbols of libvgpu.so.
#define VGPU_EXPORT extern "C" __attribute__((visibility("default")))
