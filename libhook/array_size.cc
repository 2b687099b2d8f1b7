#include "array_size.h"

namespace vgpu::hook {
namespace {

uint64_t channel_bits(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return 8;
    case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return 16;
    case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: return 32;
    default: return 0;
  }
}

// Formats whose element size does not depend on NumChannels.
uint64_t packed_bits(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNORM_INT8X1: case CU_AD_FORMAT_SNORM_INT8X1: return 8;
    case CU_AD_FORMAT_UNORM_INT8X2: case CU_AD_FORMAT_SNORM_INT8X2: return 16;
    case CU_AD_FORMAT_UNORM_INT8X4: case CU_AD_FORMAT_SNORM_INT8X4: return 32;
    case CU_AD_FORMAT_UNORM_INT16X1: case CU_AD_FORMAT_SNORM_INT16X1: return 16;
    case CU_AD_FORMAT_UNORM_INT16X2: case CU_AD_FORMAT_SNORM_INT16X2: return 32;
    case CU_AD_FORMAT_UNORM_INT16X4: case CU_AD_FORMAT_SNORM_INT16X4: return 64;
    case CU_AD_FORMAT_BC1_UNORM: case CU_AD_FORMAT_BC1_UNORM_SRGB: case CU_AD_FORMAT_BC4_UNORM:
    case CU_AD_FORMAT_BC4_SNORM: return 4;  // 8-byte 4x4 blocks
    case CU_AD_FORMAT_BC2_UNORM: case CU_AD_FORMAT_BC2_UNORM_SRGB: case CU_AD_FORMAT_BC3_UNORM:
    case CU_AD_FORMAT_BC3_UNORM_SRGB: case CU_AD_FORMAT_BC5_UNORM: case CU_AD_FORMAT_BC5_SNORM:
    case CU_AD_FORMAT_BC6H_UF16: case CU_AD_FORMAT_BC6H_SF16: case CU_AD_FORMAT_BC7_UNORM:
    case CU_AD_FORMAT_BC7_UNORM_SRGB: return 8;  // 16-byte 4x4 blocks
    case CU_AD_FORMAT_NV12: return 12;
    case CU_AD_FORMAT_P010: case CU_AD_FORMAT_P016: return 24;
    case CU_AD_FORMAT_NV16: case CU_AD_FORMAT_YUY2: return 16;
    case CU_AD_FORMAT_P210: case CU_AD_FORMAT_P216: case CU_AD_FORMAT_Y210: case CU_AD_FORMAT_Y216:
    case CU_AD_FORMAT_AYUV: case CU_AD_FORMAT_Y410: case CU_AD_FORMAT_UNORM_INT_101010_2: return 32;
    case CU_AD_FORMAT_Y416: return 64;
    case CU_AD_FORMAT_Y444_PLANAR8: case CU_AD_FORMAT_YUV444_8bit_SemiPlanar: return 24;
    case CU_AD_FORMAT_Y444_PLANAR10: case CU_AD_FORMAT_YUV444_16bit_SemiPlanar: return 48;
    default: return 0;
  }
}

uint64_t at_least_one(uint64_t v) { return v == 0 ? 1 : v; }

}  // namespace

uint64_t bits_per_element(CUarray_format format, unsigned channels) {
  if (uint64_t b = channel_bits(format)) return b * channels;
  return packed_bits(format);
}

uint64_t array_bytes(CUarray_format format, unsigned channels, uint64_t width, uint64_t height, uint64_t depth) {
  uint64_t bits = bits_per_element(format, channels);
  if (bits == 0) bits = 128;
  uint64_t elements = width * at_least_one(height) * at_least_one(depth);
  return (elements * bits + 7) / 8;
}

uint64_t array_bytes(const CUDA_ARRAY_DESCRIPTOR& d) {
  return array_bytes(d.Format, d.NumChannels, d.Width, d.Height, 0);
}

uint64_t array_bytes(const CUDA_ARRAY3D_DESCRIPTOR& d) {
  return array_bytes(d.Format, d.NumChannels, d.Width, d.Height, d.Depth);
}

uint64_t mipmapped_array_bytes(const CUDA_ARRAY3D_DESCRIPTOR& d, unsigned levels) {
  uint64_t total = 0;
  // Layers (and cube faces) are not halved per level; real depth is.
  bool layered = (d.Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP)) != 0;
  for (unsigned l = 0; l < levels && l < 64; ++l) {
    auto dim = [l](uint64_t v) { return v == 0 ? 0 : at_least_one(v >> l); };
    uint64_t depth = layered ? d.Depth : dim(d.Depth);
    total += array_bytes(d.Format, d.NumChannels, dim(d.Width), dim(d.Height), depth);
  }
  return total;
}

}  // namespace vgpu::hook
