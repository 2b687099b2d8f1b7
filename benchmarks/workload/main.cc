// vgpu-workload: a CUDA driver-API load generator for the demo, the tests and
// the benchmarks. It links the toolkit's link stub, so at run time it uses
// whatever libcuda.so.1 the loader finds: simgpu in tests, the real driver on
// a GPU machine (the embedded spin_ns PTX spins on %globaltimer there).
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <optional>

#include "allocator.h"
#include "launcher.h"
#include "options.h"
#include "summary.h"
#include "spin_ns_ptx.inc"

namespace vgpu::workload {
namespace {

// The primary context and the spin_ns module, released in reverse order.
class DeviceSession {
 public:
  explicit DeviceSession(ErrorLog* log) : log_(log) {}
  ~DeviceSession() {
    if (module_ != nullptr) log_->check("cuModuleUnload", cuModuleUnload(module_));
    if (retained_) log_->check("cuDevicePrimaryCtxRelease", cuDevicePrimaryCtxRelease(device_));
  }
  bool open(int ordinal) {
    CUcontext ctx = nullptr;
    if (!log_->check("cuInit", cuInit(0)) ||
        !log_->check("cuDeviceGet", cuDeviceGet(&device_, ordinal)) ||
        !log_->check("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&ctx, device_)))
      return false;
    retained_ = true;
    return log_->check("cuCtxSetCurrent", cuCtxSetCurrent(ctx)) &&
           log_->check("cuModuleLoadData", cuModuleLoadData(&module_, kSpinNsPtx)) &&
           log_->check("cuModuleGetFunction", cuModuleGetFunction(&spin_ns_, module_, "spin_ns"));
  }
  CUdevice device() const { return device_; }
  CUfunction spin_ns() const { return spin_ns_; }

 private:
  ErrorLog* log_;
  CUdevice device_ = 0;
  bool retained_ = false;
  CUmodule module_ = nullptr;
  CUfunction spin_ns_ = nullptr;
};

LaunchPlan plan_of(const Options& o) {
  return LaunchPlan{o.kernel_ns, o.streams, o.rate, o.duration_s, o.count, o.depth, o.sync_every};
}

// One progress line on stderr once memory is taken, so a supervisor (test,
// demo) knows the allocations are in place before the kernels start.
void announce_allocations(const std::string& label, const AllocationReport& a) {
  std::fprintf(stderr, "vgpu-workload[%s]: allocations %d/%d ok, %llu bytes held; launching\n",
               label.c_str(), a.ok, a.requested, static_cast<unsigned long long>(a.peak_bytes));
  std::fflush(stderr);
}

// Allocates, runs the kernels, frees; fills `summary` as far as it got.
void run_workload(const Options& o, ErrorLog* log, Summary* summary) {
  DeviceSession session(log);
  if (!session.open(o.device)) return;
  Launcher launcher(session.spin_ns(), plan_of(o), log);
  if (!launcher.setup()) return;
  Allocator allocator(o.alloc_api, session.device(), launcher.first_stream(), log);
  allocator.run(o.alloc_size, o.alloc_count, o.hold);
  announce_allocations(o.label, allocator.report());
  summary->launches = launcher.run();
  allocator.release_all();
  summary->allocations = allocator.report();
}

int main_impl(int argc, char** argv) {
  auto options = parse_options(std::vector<std::string>(argv + 1, argv + argc));
  if (!options) {
    std::fprintf(stderr, "vgpu-workload: %s\n\n%s", options.error().c_str(), usage().c_str());
    return 2;
  }
  const Options& o = *options;
  if (o.help) {
    std::fputs(usage().c_str(), stdout);
    return 0;
  }
  ErrorLog log;
  Summary summary{o.label, static_cast<int>(getpid()), o.device, o.kernel_ns, {}, {}, &log};
  summary.allocations.api = alloc_api_name(o.alloc_api);
  run_workload(o, &log, &summary);
  std::string out = o.json ? to_json(summary) + "\n" : to_text(summary);
  std::fputs(out.c_str(), stdout);
  return log.empty() ? 0 : 1;
}

}  // namespace
}  // namespace vgpu::workload

int main(int argc, char** argv) { return vgpu::workload::main_impl(argc, argv); }
