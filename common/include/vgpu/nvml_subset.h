/*
 * nvml_subset.h: the part of the NVIDIA Management Library API that vgpu uses,
 * declared from NVML's published reference documentation (there is no nvml.h
 * on build machines). Names, numeric values and struct layouts are those of
 * the real libnvidia-ml.so.1, so a program built against this header works
 * with the real library, with simgpu's libnvidia-ml.so.1, and through libvgpu's
 * interception.
 *
 * Users: simgpu/nvml_*.cc (implementation), libhook (interception of
 * nvmlDeviceGetMemoryInfo v1/v2 and of the per-process lists), tests and tools.
 * simgpu does not implement the graphics and MPS process lists (declared here
 * for the hook, which filters them on a real driver).
 *
 * Self-contained C (C99 or C++). Each function has a PFN_<name> pointer typedef
 * for dlsym-style lookups. Versioned entry points: the un-suffixed legacy
 * names are declared as exported (nvmlInit, nvmlDeviceGetCount, ...); the
 * real nvml.h #defines them to the versioned names, which this header does
 * NOT do, so both can be defined and looked up independently.
 */
#ifndef VGPU_NVML_SUBSET_H_
#define VGPU_NVML_SUBSET_H_

#ifdef __cplusplus
extern "C" {
#endif

/* ---- return codes ------------------------------------------------------ */

typedef enum nvmlReturn_enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NO_PERMISSION = 4,
  NVML_ERROR_ALREADY_INITIALIZED = 5,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_INSUFFICIENT_POWER = 8,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_TIMEOUT = 10,
  NVML_ERROR_IRQ_ISSUE = 11,
  NVML_ERROR_LIBRARY_NOT_FOUND = 12,
  NVML_ERROR_FUNCTION_NOT_FOUND = 13,
  NVML_ERROR_CORRUPTED_INFOROM = 14,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_RESET_REQUIRED = 16,
  NVML_ERROR_OPERATING_SYSTEM = 17,
  NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
  NVML_ERROR_IN_USE = 19,
  NVML_ERROR_MEMORY = 20,
  NVML_ERROR_NO_DATA = 21,
  NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22,
  NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
  NVML_ERROR_FREQ_NOT_SUPPORTED = 24,
  NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
  NVML_ERROR_DEPRECATED = 26,
  NVML_ERROR_NOT_READY = 27,
  NVML_ERROR_GPU_NOT_FOUND = 28,
  NVML_ERROR_INVALID_STATE = 29,
  NVML_ERROR_UNKNOWN = 999
} nvmlReturn_t;

/* ---- constants --------------------------------------------------------- */

#define NVML_DEVICE_UUID_BUFFER_SIZE 80
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DEVICE_NAME_BUFFER_SIZE 64
#define NVML_DEVICE_NAME_V2_BUFFER_SIZE 96
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE 80
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE 32
#define NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE 16

/* Reported in a field (e.g. nvmlProcessInfo_t.usedGpuMemory) the driver cannot fill. */
#define NVML_VALUE_NOT_AVAILABLE (-1)

/* nvmlDeviceGetMigMode: current and pending modes. */
#define NVML_DEVICE_MIG_DISABLE 0x0
#define NVML_DEVICE_MIG_ENABLE 0x1

/* nvmlInitWithFlags flags. */
#define NVML_INIT_FLAG_NO_GPUS 1   /* succeed even when no GPU is found */
#define NVML_INIT_FLAG_NO_ATTACH 2 /* do not attach GPUs */

/* Versioned structs carry their size and version in the first field. */
#define NVML_STRUCT_VERSION(data, ver) \
  (unsigned int)(sizeof(nvml##data##_v##ver##_t) | ((unsigned int)(ver) << 24U))

/* ---- types ------------------------------------------------------------- */

typedef struct nvmlDevice_st* nvmlDevice_t;

typedef struct nvmlMemory_st {
  unsigned long long total; /* installed memory, bytes */
  unsigned long long free;  /* unallocated memory, bytes */
  unsigned long long used;  /* allocated memory, bytes (total - free) */
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
  unsigned int version;        /* must be nvmlMemory_v2 */
  unsigned long long total;
  unsigned long long reserved; /* reserved by the driver and firmware */
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t;

#define nvmlMemory_v2 NVML_STRUCT_VERSION(Memory, 2)

/* Layout of nvmlDeviceGetComputeRunningProcesses (legacy, v1). */
typedef struct nvmlProcessInfo_v1_st {
  unsigned int pid;
  unsigned long long usedGpuMemory; /* bytes, or NVML_VALUE_NOT_AVAILABLE */
} nvmlProcessInfo_v1_t;

/* Layout of the _v2 and _v3 entry points. The instance ids are 0xFFFFFFFF
 * when MIG is not enabled. */
typedef struct nvmlProcessInfo_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_t;
typedef nvmlProcessInfo_t nvmlProcessInfo_v2_t;

typedef struct nvmlUtilization_st {
  unsigned int gpu;    /* % of the sample period a kernel was executing */
  unsigned int memory; /* % of the sample period memory was read or written */
} nvmlUtilization_t;

typedef struct nvmlPciInfo_st {
  char busIdLegacy[NVML_DEVICE_PCI_BUS_ID_BUFFER_V2_SIZE]; /* "domain:bus:device.function", 4-digit domain */
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;    /* device id << 16 | vendor id */
  unsigned int pciSubSystemId;
  char busId[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];          /* 8-digit domain */
} nvmlPciInfo_t;

/* One sample of nvmlDeviceGetProcessUtilization: a process's share of one
 * sample period, in percent; timeStamp is the CPU time (microseconds since the
 * epoch) at which the sample was taken. */
typedef struct nvmlProcessUtilizationSample_st {
  unsigned int pid;
  unsigned long long timeStamp;
  unsigned int smUtil;  /* SM (3D/compute) */
  unsigned int memUtil; /* frame buffer */
  unsigned int encUtil;
  unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

/* The same for nvmlDeviceGetProcessesUtilizationInfo (versioned API). */
typedef struct nvmlProcessUtilizationInfo_v1_st {
  unsigned long long timeStamp;
  unsigned int pid;
  unsigned int smUtil;
  unsigned int memUtil;
  unsigned int encUtil;
  unsigned int decUtil;
  unsigned int jpgUtil;
  unsigned int ofaUtil;
} nvmlProcessUtilizationInfo_v1_t;

typedef struct nvmlProcessesUtilizationInfo_v1_st {
  unsigned int version;                           /* nvmlProcessesUtilizationInfo_v1 */
  unsigned int processSamplesCount;               /* capacity in, samples (or needed) out */
  unsigned long long lastSeenTimeStamp;           /* only samples newer than this */
  nvmlProcessUtilizationInfo_v1_t* procUtilArray; /* caller-allocated */
} nvmlProcessesUtilizationInfo_v1_t;
typedef nvmlProcessesUtilizationInfo_v1_t nvmlProcessesUtilizationInfo_t;

#define nvmlProcessesUtilizationInfo_v1 NVML_STRUCT_VERSION(ProcessesUtilizationInfo, 1)

/* ---- functions --------------------------------------------------------- */

#define VGPU_NVML_FUNCTIONS(X)                                                                  \
  X(nvmlInit_v2, (void))                                                                        \
  X(nvmlInit, (void))                                                                           \
  X(nvmlInitWithFlags, (unsigned int flags))                                                    \
  X(nvmlShutdown, (void))                                                                       \
  X(nvmlSystemGetDriverVersion, (char* version, unsigned int length))                          \
  X(nvmlSystemGetCudaDriverVersion, (int* cudaDriverVersion))                                   \
  X(nvmlSystemGetCudaDriverVersion_v2, (int* cudaDriverVersion))                                \
  X(nvmlDeviceGetCount_v2, (unsigned int* deviceCount))                                         \
  X(nvmlDeviceGetCount, (unsigned int* deviceCount))                                            \
  X(nvmlDeviceGetHandleByIndex_v2, (unsigned int index, nvmlDevice_t* device))                  \
  X(nvmlDeviceGetHandleByIndex, (unsigned int index, nvmlDevice_t* device))                     \
  X(nvmlDeviceGetHandleByUUID, (const char* uuid, nvmlDevice_t* device))                        \
  X(nvmlDeviceGetHandleByPciBusId_v2, (const char* pciBusId, nvmlDevice_t* device))             \
  X(nvmlDeviceGetIndex, (nvmlDevice_t device, unsigned int* index))                             \
  X(nvmlDeviceGetMinorNumber, (nvmlDevice_t device, unsigned int* minorNumber))                 \
  X(nvmlDeviceGetName, (nvmlDevice_t device, char* name, unsigned int length))                  \
  X(nvmlDeviceGetUUID, (nvmlDevice_t device, char* uuid, unsigned int length))                  \
  X(nvmlDeviceGetPciInfo_v3, (nvmlDevice_t device, nvmlPciInfo_t* pci))                         \
  X(nvmlDeviceGetMemoryInfo, (nvmlDevice_t device, nvmlMemory_t* memory))                       \
  X(nvmlDeviceGetMemoryInfo_v2, (nvmlDevice_t device, nvmlMemory_v2_t* memory))                 \
  X(nvmlDeviceGetComputeRunningProcesses_v3,                                                    \
    (nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_t* infos))                   \
  X(nvmlDeviceGetComputeRunningProcesses_v2,                                                    \
    (nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_t* infos))                   \
  X(nvmlDeviceGetComputeRunningProcesses,                                                       \
    (nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_v1_t* infos))                \
  X(nvmlDeviceGetGraphicsRunningProcesses_v3,                                                   \
    (nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_t* infos))                   \
  X(nvmlDeviceGetGraphicsRunningProcesses_v2,                                                   \
    (nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_t* infos))                   \
  X(nvmlDeviceGetGraphicsRunningProcesses,                                                      \
    (nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_v1_t* infos))                \
  X(nvmlDeviceGetMPSComputeRunningProcesses_v3,                                                 \
    (nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_t* infos))                   \
  X(nvmlDeviceGetMPSComputeRunningProcesses_v2,                                                 \
    (nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_t* infos))                   \
  X(nvmlDeviceGetMPSComputeRunningProcesses,                                                    \
    (nvmlDevice_t device, unsigned int* infoCount, nvmlProcessInfo_v1_t* infos))                \
  X(nvmlDeviceGetUtilizationRates, (nvmlDevice_t device, nvmlUtilization_t* utilization))         \
  X(nvmlDeviceGetProcessUtilization, (nvmlDevice_t device, nvmlProcessUtilizationSample_t* utilization, \
                                      unsigned int* processSamplesCount, unsigned long long lastSeenTimeStamp)) \
  X(nvmlDeviceGetProcessesUtilizationInfo, (nvmlDevice_t device, nvmlProcessesUtilizationInfo_t* procesesUtilInfo)) \
  X(nvmlDeviceGetMigMode, (nvmlDevice_t device, unsigned int* currentMode, unsigned int* pendingMode))              \
  X(nvmlDeviceGetMaxMigDeviceCount, (nvmlDevice_t device, unsigned int* count))                                   \
  X(nvmlDeviceGetMigDeviceHandleByIndex, (nvmlDevice_t device, unsigned int index, nvmlDevice_t* migDevice))      \
  X(nvmlDeviceIsMigDeviceHandle, (nvmlDevice_t device, unsigned int* isMigDevice))                                \
  X(nvmlDeviceGetDeviceHandleFromMigDeviceHandle, (nvmlDevice_t migDevice, nvmlDevice_t* device))                 \
  X(nvmlDeviceGetGpuInstanceId, (nvmlDevice_t device, unsigned int* id))                                          \
  X(nvmlDeviceGetComputeInstanceId, (nvmlDevice_t device, unsigned int* id))

#define VGPU_NVML_DECLARE(name, params) \
  nvmlReturn_t name params;             \
  typedef nvmlReturn_t(*PFN_##name) params;
VGPU_NVML_FUNCTIONS(VGPU_NVML_DECLARE)
#undef VGPU_NVML_DECLARE

/* Not an nvmlReturn_t function: a static description of `result`, valid for
 * the life of the process; callable before nvmlInit. */
const char* nvmlErrorString(nvmlReturn_t result);
typedef const char* (*PFN_nvmlErrorString)(nvmlReturn_t result);

#ifdef __cplusplus
}
#endif

#endif /* VGPU_NVML_SUBSET_H_ */
