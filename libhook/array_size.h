// The device memory an array takes, computed from its descriptor: width ×
// height × depth × bytes per element (a 0 height or depth counts as 1;
// block-compressed and planar YUV formats by their bits per pixel). The
// driver may pad arrays for tiling; the quota charges the descriptor's size,
// which is what the program asked for. Pure functions; thread-safe.
#pragma once

#include <cstdint>

#include "cuda_api.h"

namespace vgpu::hook {

// Bits one element of `format` with `channels` channels takes, or 0 if the
// format is unknown (then array_bytes charges 16 bytes per element).
uint64_t bits_per_element(CUarray_format format, unsigned channels);

uint64_t array_bytes(CUarray_format format, unsigned channels, uint64_t width, uint64_t height, uint64_t depth);
uint64_t array_bytes(const CUDA_ARRAY_DESCRIPTOR& d);
uint64_t array_bytes(const CUDA_ARRAY3D_DESCRIPTOR& d);
// Every level of a mipmapped array, each dimension halved per level (min 1).
uint64_t mipmapped_array_bytes(const CUDA_ARRAY3D_DESCRIPTOR& d, unsigned levels);

}  // namespace vgpu::hook
