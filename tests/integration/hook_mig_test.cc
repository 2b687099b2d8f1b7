// MIG under the hook, standalone and with vgpud, on simgpu's MIG profile: a
// process on a MIG device gets that MIG device's quota (cuMemGetInfo shows
// it, an allocation past it is refused), and processes on two MIG devices
// are limited independently. Before MIG devices were units, a MIG UUID
// matched no GPU and the process ran without any limit.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "vgpu/nvml_subset.h"
#include "vgpud_fixture.h"

namespace vgpu::test {
namespace {

using namespace std::chrono_literals;
using Settings = std::map<std::string, std::string>;

constexpr unsigned long long kMi = 1ull << 20;
constexpr unsigned long long kGi = 1ull << 30;

const Settings kMigNode = {{"SIMGPU_DEVICES", "1"},
                           {"SIMGPU_MEMORY", "80Gi"},
                           {"SIMGPU_CONTEXT_OVERHEAD", "0"},
                           {"SIMGPU_MIG", "0:3g.40gb,2g.20gb,1g.10gb"}};

// The MIG UUIDs of GPU 0 of the node in this process's SIMGPU_STATE, read
// through simgpu's NVML (what nvidia-smi -L would print).
std::vector<std::string> mig_uuids() {
  std::vector<std::string> out;
  void* lib = dlopen((simgpu_dir() + "/libnvidia-ml.so.1").c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) return out;
#define LOAD(name) auto name = reinterpret_cast<PFN_##name>(dlsym(lib, #name))
  LOAD(nvmlInit_v2);
  LOAD(nvmlShutdown);
  LOAD(nvmlDeviceGetHandleByIndex_v2);
  LOAD(nvmlDeviceGetMigDeviceHandleByIndex);
  LOAD(nvmlDeviceGetUUID);
#undef LOAD
  nvmlDevice_t gpu;
  if (!nvmlInit_v2 || nvmlInit_v2() != NVML_SUCCESS) return out;
  if (nvmlDeviceGetHandleByIndex_v2(0, &gpu) == NVML_SUCCESS)
    for (unsigned i = 0; i < 7; ++i) {
      nvmlDevice_t mig;
      char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
      if (nvmlDeviceGetMigDeviceHandleByIndex(gpu, i, &mig) == NVML_SUCCESS &&
          nvmlDeviceGetUUID(mig, text, sizeof text) == NVML_SUCCESS)
        out.push_back(text);
    }
  nvmlShutdown();
  return out;
}

std::string probe_path() { return build_dir() + "/tests/programs/mig_probe"; }

// "name=<number>" in a probe's output; -1 if absent.
long long field(const std::string& out, const std::string& name) {
  size_t at = out.find(name + "=");
  return at == std::string::npos ? -1 : std::atoll(out.c_str() + at + name.size() + 1);
}

bool has(const Child& c, const std::string& text) { return c.output().find(text) != std::string::npos; }

// A probe on the MIG device `mig_uuid` allocating `bytes`, holding it until
// `hold` exists (if given).
std::unique_ptr<Child> probe(Settings env, const std::string& mig_uuid, unsigned long long bytes,
                             const std::string& hold = "") {
  env["CUDA_VISIBLE_DEVICES"] = mig_uuid;
  std::vector<std::string> argv{probe_path(), std::to_string(bytes)};
  if (!hold.empty()) argv.push_back(hold);
  return std::make_unique<Child>(argv, env);
}

Settings hook_env(const SimNode& node, const Settings& extra) {
  auto env = node.env();
  env["LD_PRELOAD"] = lib_dir() + "/libvgpu.so";
  for (auto& [k, v] : extra) env[k] = v;
  return env;
}

// Standalone: VGPU_MEMORY_LIMIT_<n> names unit n; on this node unit n is MIG
// device n of GPU 0 (docs/architecture.md, "MIG").
TEST(HookMig, StandaloneQuotaFollowsTheMigDevice) {
  SimNode node(kMigNode);
  auto migs = mig_uuids();
  ASSERT_EQ(migs.size(), 3u);
  auto env = hook_env(node, {{"VGPU_MEMORY_LIMIT_1", "1Gi"}});
  auto c = probe(env, migs[1], 1536 * kMi);
  ASSERT_EQ(c->wait(30s), 0) << c->errors();
  EXPECT_EQ(field(c->output(), "info_total"), static_cast<long long>(kGi)) << c->output();
  EXPECT_TRUE(has(*c, "alloc=oom")) << "an allocation past the MIG device's quota must be refused:\n"
                                    << c->output() << c->errors();
  // Another MIG device has no limit here (only unit 1 has one).
  auto d = probe(env, migs[2], 1536 * kMi);
  ASSERT_EQ(d->wait(30s), 0) << d->errors();
  EXPECT_TRUE(has(*d, "alloc=ok")) << d->output() << d->errors();
  EXPECT_EQ(field(d->output(), "info_total"), static_cast<long long>(10 * kGi)) << d->output();
}

// With vgpud: each MIG device is a unit with the tenant's quota of its own;
// processes of one tenant share a unit's quota, not another unit's.
TEST(HookMig, VgpudLimitsEachMigDeviceOnItsOwn) {
  VgpudFixture f("  - {name: mig, token: mig-tenant-token, memory: 1Gi}\n", kMigNode);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto migs = mig_uuids();
  ASSERT_EQ(migs.size(), 3u);
  const std::string hold = f.dir() + "/release";
  auto env = f.tenant_env("mig-tenant-token");
  auto a = probe(env, migs[0], 768 * kMi, hold);
  ASSERT_TRUE(wait_until([&] { return has(*a, "holding") || !a->running(); }, 30s)) << a->errors();
  ASSERT_TRUE(has(*a, "alloc=ok")) << a->output() << a->errors();
  EXPECT_EQ(field(a->output(), "info_total"), static_cast<long long>(kGi)) << a->output();
  // Same tenant, other MIG device: its own 1Gi.
  auto b = probe(env, migs[1], 768 * kMi, hold);
  ASSERT_TRUE(wait_until([&] { return has(*b, "holding") || !b->running(); }, 30s)) << b->errors();
  EXPECT_TRUE(has(*b, "alloc=ok")) << b->output() << b->errors();
  // Same tenant, same MIG device as `a`: 768Mi + 768Mi > 1Gi.
  auto c = probe(env, migs[0], 768 * kMi);
  ASSERT_EQ(c->wait(30s), 0) << c->errors();
  EXPECT_TRUE(has(*c, "alloc=oom")) << c->output() << c->errors();
  std::ofstream(hold).put('\n');
  EXPECT_EQ(a->wait(30s), 0) << a->errors();
  EXPECT_EQ(b->wait(30s), 0) << b->errors();
}

// A tenant's devices may name a MIG device by its MIG UUID (or by its unit
// index); the tenant's other units get a zero quota.
TEST(HookMig, VgpudTenantNamesAMigDeviceByUuid) {
  VgpudFixture f("  - {name: mig, token: mig-tenant-token, memory: 1Gi, devices: ['@MIG1@']}\n", kMigNode);
  auto migs = mig_uuids();  // the fixture's node is this process's SIMGPU_STATE
  ASSERT_EQ(migs.size(), 3u);
  std::string config = read_file(f.config_path());
  config.replace(config.find("@MIG1@"), 6, migs[1]);
  std::ofstream(f.config_path()) << config;
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto env = f.tenant_env("mig-tenant-token");
  auto named = probe(env, migs[1], 768 * kMi);
  ASSERT_EQ(named->wait(30s), 0) << named->errors();
  EXPECT_TRUE(has(*named, "alloc=ok")) << named->output() << named->errors();
  EXPECT_EQ(field(named->output(), "info_total"), static_cast<long long>(kGi)) << named->output();
  auto other = probe(env, migs[2], 64 * kMi);
  ASSERT_EQ(other->wait(30s), 0) << other->errors();
  EXPECT_TRUE(has(*other, "alloc=oom")) << other->output() << other->errors();
}

}  // namespace
}  // namespace vgpu::test
