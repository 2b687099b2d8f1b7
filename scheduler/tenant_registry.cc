#include "tenant_registry.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstring>

namespace vgpu::sched {

namespace {
// Compares without an early exit, so timing does not reveal a token prefix.
bool equal_in_constant_time(const char* a, const char* b, size_t n) {
  unsigned char diff = 0;
  for (size_t i = 0; i < n; ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}
}  // namespace

Tenant::~Tenant() {
  if (shm.ctl) munmap(shm.ctl, sizeof(TenantControl));
  if (shm.led) munmap(shm.led, sizeof(TenantLedger));
  if (control_fd >= 0) close(control_fd);
  if (ledger_fd >= 0) close(ledger_fd);
}

namespace {
// No tenant holds more than this on one GPU; larger ledger values are scribbles.
constexpr uint64_t kMaxReported = 1ull << 50;

// A memfd of `size` bytes mapped writable into vgpud.
Result<void*> map_memfd(const std::string& name, size_t size, int* fd) {
  *fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (*fd < 0 || ftruncate(*fd, static_cast<off_t>(size)) != 0)
    return make_error(std::string("cannot create tenant memory: ") + std::strerror(errno));
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
  if (p == MAP_FAILED) return make_error(std::string("cannot map tenant memory: ") + std::strerror(errno));
  return p;
}
}  // namespace

uint64_t Tenant::reported_used(int gpu) const {
  if (gpu < 0 || gpu >= kShmMaxDevices) return 0;
  return clamp_reported(shm.led->devices[gpu].used.load(std::memory_order_relaxed), kMaxReported);
}

uint64_t Tenant::reported_used(int gpu, int slot) const {
  if (gpu < 0 || gpu >= kShmMaxDevices || slot < 0 || slot >= kShmMaxProcs) return 0;
  return clamp_reported(shm.led->procs[slot].used[gpu].load(std::memory_order_relaxed), kMaxReported);
}

std::string generate_token() {
  unsigned char raw[16];
  size_t got = 0;
  while (got < sizeof raw) {
    ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : raw) {
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

uint64_t Tenant::reported_denied(int gpu) const {
  if (gpu < 0 || gpu >= kShmMaxDevices) return 0;
  return clamp_reported(shm.led->devices[gpu].denied.load(std::memory_order_relaxed), kMaxReported);
}

uint64_t Tenant::reported_wait_ns(int gpu) const {
  if (gpu < 0 || gpu >= kShmMaxDevices) return 0;
  return clamp_reported(shm.led->lease_stats[gpu].wait_ns.load(std::memory_order_relaxed), kMaxReported);
}

Result<std::vector<bool>> TenantRegistry::resolve_devices(const TenantConfig& t) const {
  std::vector<bool> allowed(gpus_.size(), t.devices.empty());
  for (const std::string& d : t.devices) {
    auto idx = resolve_gpu(gpus_, d);
    if (!idx) return make_error("tenant '" + t.name + "': " + idx.error());
    allowed[static_cast<size_t>(*idx)] = true;
  }
  return allowed;
}

void TenantRegistry::write_limits(Tenant* t) const {
  for (size_t i = 0; i < gpus_.size(); ++i) {
    // A GPU the tenant may not use has a zero quota: every allocation is refused.
    uint64_t quota = t->config.memory;
    if (auto q = t->config.device_memory.find(gpus_[i].uuid); q != t->config.device_memory.end()) quota = q->second;
    t->shm.ctl->devices[i].limit.store(t->allowed[i] ? quota : 0, std::memory_order_release);
  }
  t->shm.ctl->context_overhead.store(context_overhead_, std::memory_order_release);
}

void TenantRegistry::set_context_overhead(uint64_t bytes) {
  context_overhead_ = bytes;
  for (auto& [id, t] : tenants_) t->shm.ctl->context_overhead.store(bytes, std::memory_order_release);
}

Result<Tenant*> TenantRegistry::add(const TenantConfig& c) {
  if (by_name(c.name)) return make_error("tenant '" + c.name + "' already exists");
  if (c.token.empty() || by_token(c.token)) return make_error("tenant '" + c.name + "' needs a unique token");
  auto allowed = resolve_devices(c);
  if (!allowed) return Error{allowed.error()};
  auto t = std::make_unique<Tenant>();
  t->config = c;
  t->allowed = *allowed;
  auto ctl = map_memfd("vgpu-control-" + c.name, sizeof(TenantControl), &t->control_fd);
  if (!ctl) return Error{ctl.error()};
  t->shm.ctl = static_cast<TenantControl*>(*ctl);
  auto led = map_memfd("vgpu-ledger-" + c.name, sizeof(TenantLedger), &t->ledger_fd);
  if (!led) return Error{led.error()};
  t->shm.led = static_cast<TenantLedger*>(*led);
  tenant_control_init(t->shm.ctl, static_cast<uint32_t>(gpus_.size()));
  tenant_ledger_init(t->shm.led);
  for (size_t i = 0; i < gpus_.size(); ++i) std::memcpy(t->shm.ctl->devices[i].uuid, gpus_[i].uuid_bytes, 16);
  // Only vgpud's mapping of the control block is writable, for good; neither
  // memfd can change size (a shrunk memfd would fault vgpud's mapping).
  if (!seal_control_memfd(t->control_fd) || !seal_ledger_memfd(t->ledger_fd))
    return make_error(std::string("cannot seal tenant memory: ") + std::strerror(errno));
  write_limits(t.get());
  t->id = next_id_++;
  Tenant* raw = t.get();
  tenants_[raw->id] = std::move(t);
  return raw;
}

Result<Tenant*> TenantRegistry::update(const TenantConfig& c) {
  Tenant* t = by_name(c.name);
  if (!t) return make_error("no tenant named '" + c.name + "'");
  Tenant* other = c.token.empty() ? nullptr : by_token(c.token);
  if (other && other != t) return make_error("that token belongs to another tenant");
  auto allowed = resolve_devices(c);
  if (!allowed) return Error{allowed.error()};
  std::string token = c.token.empty() ? t->config.token : c.token;
  t->config = c;
  t->config.token = token;
  t->allowed = *allowed;
  write_limits(t);
  return t;
}

bool TenantRegistry::remove(const std::string& name) {
  Tenant* t = by_name(name);
  if (!t) return false;
  tenants_.erase(t->id);
  return true;
}

Tenant* TenantRegistry::by_name(const std::string& name) {
  for (auto& [id, t] : tenants_)
    if (t->config.name == name) return t.get();
  return nullptr;
}

Tenant* TenantRegistry::by_id(int id) {
  auto it = tenants_.find(id);
  return it == tenants_.end() ? nullptr : it->second.get();
}

Tenant* TenantRegistry::by_token(const std::string& token) {
  if (token.empty()) return nullptr;
  for (auto& [id, t] : tenants_)
    if (t->config.token.size() == token.size() &&
        equal_in_constant_time(t->config.token.data(), token.data(), token.size()))
      return t.get();
  return nullptr;
}

std::vector<Tenant*> TenantRegistry::all() {
  std::vector<Tenant*> out;
  for (auto& [id, t] : tenants_) out.push_back(t.get());
  return out;
}

}  // namespace vgpu::sched
