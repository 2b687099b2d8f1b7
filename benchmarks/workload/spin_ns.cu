// The kernel vgpu-workload launches: busy-waits on the GPU's global nanosecond
// timer until `ns` have passed. One thread is enough; the point is to occupy
// the execution engine for a known time, on simgpu and on real hardware alike.
// spin_ns.ptx is generated from this file (nvcc -ptx -arch=sm_90) and committed,
// so building the workload never requires nvcc.
extern "C" __global__ void spin_ns(unsigned long long ns) {
  unsigned long long start;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  unsigned long long now = start;
  while (now - start < ns) {
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  }
}
