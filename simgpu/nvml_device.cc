// Device enumeration and identity: count, handles by index / UUID / PCI bus
// id, index, minor number, name, UUID and PCI info. Index i is the same device
// as CUDA ordinal i of the simulated driver (same NodeState entry), so names
// and UUIDs agree with cuDeviceGetName / cuDeviceGetUuid.
#include <strings.h>

#include <cstdio>
#include <cstring>

#include "nvml_core.h"

using namespace simgpu;
using nvml::Session;

namespace {

// "0000:18:00.0" (DeviceInfo) -> domain, bus, device, function numbers.
bool parse_bus_id(const char* text, unsigned* domain, unsigned* bus, unsigned* dev, unsigned* fn) {
  return std::sscanf(text, "%x:%x:%x.%x", domain, bus, dev, fn) == 4;
}

// Bus ids compare by value, so "0000:18:00.0" and "00000000:18:00.0" match.
bool same_bus_id(const char* a, const char* b) {
  unsigned x[4], y[4];
  return parse_bus_id(a, &x[0], &x[1], &x[2], &x[3]) && parse_bus_id(b, &y[0], &y[1], &y[2], &y[3]) &&
         std::memcmp(x, y, sizeof x) == 0;
}

nvmlReturn_t device_count(unsigned* count) {
  Session s;
  if (nvmlReturn_t r = s.status()) return r;
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  *count = static_cast<unsigned>(s.device_count());
  return NVML_SUCCESS;
}

nvmlReturn_t handle_by_index(unsigned index, nvmlDevice_t* device) {
  Session s;
  if (nvmlReturn_t r = s.status()) return r;
  if (!device || index >= static_cast<unsigned>(s.device_count())) return NVML_ERROR_INVALID_ARGUMENT;
  *device = nvml::handle_of(static_cast<int>(index));
  return NVML_SUCCESS;
}

// nvmlDeviceGetIndex and nvmlDeviceGetMinorNumber (/dev/nvidia<minor>) both
// equal the enumeration index on a simulated node.
nvmlReturn_t index_of(nvmlDevice_t device, unsigned* out) {
  Session s;
  int index = 0;
  if (nvmlReturn_t r = s.device(device, &index)) return r;
  if (!out) return NVML_ERROR_INVALID_ARGUMENT;
  *out = static_cast<unsigned>(index);
  return NVML_SUCCESS;
}

}  // namespace

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* deviceCount) { return device_count(deviceCount); }
SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int* deviceCount) { return device_count(deviceCount); }

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  return handle_by_index(index, device);
}
SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return handle_by_index(index, device);
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  Session s;
  if (nvmlReturn_t r = s.status()) return r;
  if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
  // MIG UUIDs too: the handle is then the MIG device's.
  for (int i = 0; i < s.state().device_count; ++i) {
    char text[41];
    nvml::format_entry_uuid(s.state().devices[i], text);
    if (strcasecmp(text, uuid) == 0) {
      *device = nvml::handle_of(i);
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char* pciBusId, nvmlDevice_t* device) {
  Session s;
  if (nvmlReturn_t r = s.status()) return r;
  if (!pciBusId || !device) return NVML_ERROR_INVALID_ARGUMENT;
  for (int i = 0; i < s.device_count(); ++i) {
    if (same_bus_id(s.state().devices[i].pci_bus_id, pciBusId)) {
      *device = nvml::handle_of(i);
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int* index) {
  return index_of(device, index);
}
SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int* minorNumber) {
  return index_of(device, minorNumber);
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  Session s;
  int index = 0;
  if (nvmlReturn_t r = s.any_device(device, &index)) return r;
  return nvml::copy_string(s.state().devices[index].name, name, length);
}

SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  Session s;
  int index = 0;
  if (nvmlReturn_t r = s.any_device(device, &index)) return r;
  char text[41];
  nvml::format_entry_uuid(s.state().devices[index], text);
  return nvml::copy_string(text, uuid, length);
}

// A MIG device handle answers with its GPU's PCI location.
SIMGPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  Session s;
  int index = 0;
  if (nvmlReturn_t r = s.any_device(device, &index)) return r;
  if (!pci) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned domain = 0, bus = 0, dev = 0, fn = 0;
  if (!parse_bus_id(s.state().devices[index].pci_bus_id, &domain, &bus, &dev, &fn)) return NVML_ERROR_UNKNOWN;
  std::memset(pci, 0, sizeof *pci);
  pci->domain = domain;
  pci->bus = bus;
  pci->device = dev;
  pci->pciDeviceId = 0x233010de;     // H100 SXM5, as CU_DEVICE_ATTRIBUTE_GPU_PCI_DEVICE_ID says
  pci->pciSubSystemId = 0x16c110de;
  std::snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "%04X:%02X:%02X.%X", domain, bus, dev, fn);
  std::snprintf(pci->busId, sizeof pci->busId, "%08X:%02X:%02X.%X", domain, bus, dev, fn);
  return NVML_SUCCESS;
}
