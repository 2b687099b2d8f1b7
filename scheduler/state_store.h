// StateStore: what vgpud must not forget across restarts, in its state_dir:
//   tenants.yaml     every tenant as last applied (definition + token + source)
//   tokens/<tenant>  each tenant's token alone (mode 0600), to mount into pods
// Writes are atomic (temp file, fsync, rename, fsync of the directory), so a
// crash leaves either the old or the new file, never a torn one.
// Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include "config.h"
#include "vgpu/result.h"

namespace vgpu::sched {

// How a stored tenant relates to the config file. Runtime changes win over
// the file across restarts: a tenant created or changed through the admin API
// is "api"; a file tenant deleted through it is "deleted" (a tombstone, so
// the file does not bring it back).
enum class Source { kConfig, kApi, kDeleted };

struct StoredTenant {
  TenantConfig tenant;
  Source source = Source::kConfig;
};

class StateStore {
 public:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
  // Creates the directory (0700) if needed.
  Result<bool> open();
  // Missing file: an empty list. A malformed file is an error naming it.
  Result<std::vector<StoredTenant>> load() const;
  Result<bool> save(const std::vector<StoredTenant>& tenants) const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

// Writes `data` to `path` atomically (see above), with `mode`.
Result<bool> write_file_atomically(const std::string& path, const std::string& data, unsigned mode);

}  // namespace vgpu::sched
