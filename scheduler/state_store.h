// StateStore: what vgpud must not forget across restarts, in its state_dir:
//   tenants.yaml       every tenant as last applied (definition + token + source)
//   tenants.yaml.prev  the generation before it (the last different content)
//   tokens/<tenant>    each tenant's token alone (mode 0600), to mount into pods
//
// tenants.yaml (format 2 and 3) starts with a header line that carries the format
// and a SHA-256 of everything after that line:
//   # vgpud-state format 3 sha256 <64 hex digits>
//   format: 3
//   tenants: [...]
// A file that is not complete and intact (empty, truncated, wrong checksum,
// bad YAML, duplicate or missing keys, wrong types, unknown format) is refused
// with the file, the reason and how to recover; vgpud then does not start, so
// it never runs with tenants silently lost, deleted ones back or tokens
// replaced. Files of format 1 (no header, `version: 1`, written by vgpud
// before format 2) still load and are rewritten in the current format at start; they
// have no checksum, so a cut exactly between two tenants cannot be seen.
// Token files are not the record: they are rewritten from tenants.yaml at
// every start and stay the bare token, as pods read them.
//
// Writes are atomic (temp file, fsync, rename, fsync of the directory), so a
// crash leaves either the old or the new file, never a torn one; temp files
// an interrupted write left are removed by open(). Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include <optional>

#include "allocation_record.h"
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
  // Set for allocation tenants (source api); their per-GPU quotas are
  // tenant.device_memory, stored under `allocation.memory`.
  std::optional<AllocationRecord> allocation;
};

// Format 3 adds, to an allocation tenant's entry only:
//   allocation: {socket_root: "/x", namespace: "", pod: "", container: "",
//                memory: {"GPU-...": "1073741824"}}
// Format 2 files (no allocations) still load; format 3 is written.
inline constexpr int kStateFormat = 3;

class StateStore {
 public:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
  // Creates the directories (0700) if needed; removes stale temp files.
  Result<bool> open();
  // Missing file: an empty list. A damaged one: an error that names the file,
  // the reason, and how to recover (restore .prev, or remove the file).
  // Never throws.
  Result<std::vector<StoredTenant>> load() const;
  // Writes tenants.yaml when its content changes (the replaced file becomes
  // tenants.yaml.prev) and the token files; removes deleted tenants' tokens.
  Result<bool> save(const std::vector<StoredTenant>& tenants) const;
  const std::string& dir() const { return dir_; }
  std::string path() const { return dir_ + "/tenants.yaml"; }
  std::string prev_path() const { return dir_ + "/tenants.yaml.prev"; }

 private:
  std::string dir_;
};

// The text of a state file in the current format for `tenants` (header included).
std::string format_state(const std::vector<StoredTenant>& tenants);
// Parses a state file's text (format 3, 2 or 1); `name` stands for the
// file in messages. Errors give the reason only (no recovery advice).
// Never throws, never aborts, whatever the bytes.
Result<std::vector<StoredTenant>> parse_state(const std::string& text, const std::string& name);

// Files are written with vgpu::write_file_atomically (vgpu/atomic_file.h).

}  // namespace vgpu::sched
