// vgpud and its state file, end to end: a damaged tenants.yaml keeps vgpud
// from starting (nonzero exit, the file, the reason and the way to recover on
// stderr, the file left as it was); a format-1 file is migrated with the old
// one kept as .prev; temp files of an interrupted write are removed; a quota
// above the GPU's memory needs enforcement.overcommit.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::bin_dir;
using vgpu::test::Child;
using vgpu::test::read_file;
using vgpu::test::VgpudFixture;

const char* kTenants = "  - {name: minted, memory: 1Gi, compute: {request: 50%}}\n";

void put(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Runs vgpud on the fixture's config and waits for it to exit by itself.
struct Refusal {
  int status = -1;
  std::string stderr_text;
};
Refusal run_until_exit(VgpudFixture& f) {
  Child d({bin_dir() + "/vgpud", "--config", f.config_path()}, f.node().env());
  Refusal r;
  r.status = d.wait(20s);
  r.stderr_text = d.errors();
  return r;
}

TEST(VgpudState, DamagedStateFileRefusesToStart) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  f.stop_daemon();
  std::string path = f.dir() + "/state/tenants.yaml";
  std::string good = read_file(path);
  ASSERT_EQ(good.rfind("# vgpud-state format 3 sha256 ", 0), 0u) << good;

  struct Damage {
    const char* what;
    std::string text;
    const char* reason;
  };
  std::string flipped = good;
  flipped[good.find("token: \"") + 9] ^= 0x01;  // one bit of the generated token
  for (const Damage& d : {Damage{"truncated", good.substr(0, good.size() / 2), "checksum mismatch"},
                          Damage{"bit flip in the token", flipped, "checksum mismatch"},
                          Damage{"empty", "", "the file is empty"},
                          Damage{"not YAML", "tenants: [\n", "not valid YAML"}}) {
    put(path, d.text);
    Refusal r = run_until_exit(f);
    EXPECT_GT(r.status, 0) << d.what << ": vgpud did not exit with an error: " << r.status;
    EXPECT_NE(r.stderr_text.find(path), std::string::npos) << d.what << ": " << r.stderr_text;
    EXPECT_NE(r.stderr_text.find(d.reason), std::string::npos) << d.what << ": " << r.stderr_text;
    EXPECT_NE(r.stderr_text.find("To recover"), std::string::npos) << d.what << ": " << r.stderr_text;
    EXPECT_EQ(read_file(path), d.text) << d.what << ": vgpud changed the damaged file";
  }
  // Restored, vgpud starts again with the same token.
  put(path, good);
  ASSERT_TRUE(f.start(&why)) << why;
  std::string token = read_file(f.dir() + "/state/tokens/minted");
  EXPECT_NE(good.find(token.substr(0, token.size() - 1)), std::string::npos);
}

TEST(VgpudState, Format1IsMigratedAndStaleTempFilesRemoved) {
  VgpudFixture f(kTenants);
  std::string state = f.dir() + "/state";
  ASSERT_EQ(mkdir(state.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((state + "/tokens").c_str(), 0700), 0);
  std::string v1 =
      "version: 1\n"
      "tenants:\n"
      "  - {name: minted, token: 0123456789abcdef0123456789abcdef, source: config, priority: normal, memory: 1073741824,"
      " compute: {request: 50%, limit: 100%}, devices: []}\n"
      "  - {name: runtime, token: old-api-token, source: api, priority: low, memory: 536870912,"
      " compute: {request: 10%, limit: 100%}, devices: []}\n";
  put(state + "/tenants.yaml", v1);
  put(state + "/tenants.yaml.tmp.4242", "version: 1\ntenants: [");
  put(state + "/tokens/minted.tmp.77", "half");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  EXPECT_EQ(access((state + "/tenants.yaml.tmp.4242").c_str(), F_OK), -1);
  EXPECT_EQ(access((state + "/tokens/minted.tmp.77").c_str(), F_OK), -1);
  std::string now = read_file(state + "/tenants.yaml");
  EXPECT_EQ(now.rfind("# vgpud-state format 3 sha256 ", 0), 0u) << now;
  EXPECT_EQ(read_file(state + "/tenants.yaml.prev"), v1);
  EXPECT_EQ(read_file(state + "/tokens/minted"), "0123456789abcdef0123456789abcdef\n");
  EXPECT_EQ(read_file(state + "/tokens/runtime"), "old-api-token\n");
  EXPECT_NE(f.daemon_log().find("rotate it"), std::string::npos) << f.daemon_log();
}

TEST(VgpudState, QuotaAboveGpuMemoryNeedsOvercommit) {
  const char* big = "  - {name: big, token: big-tenant-token-1, memory: 100Gi}\n";
  {
    VgpudFixture f(big, {{"SIMGPU_MEMORY", "80Gi"}});
    Refusal r = run_until_exit(f);
    EXPECT_GT(r.status, 0) << r.stderr_text;
    EXPECT_NE(r.stderr_text.find("memory 100Gi is above the memory of GPU 0 (80Gi)"), std::string::npos)
        << r.stderr_text;
    EXPECT_NE(r.stderr_text.find("enforcement.overcommit: true"), std::string::npos) << r.stderr_text;
  }
  VgpudFixture f(big, {{"SIMGPU_MEMORY", "80Gi"}}, "enforcement: {overcommit: true}\n");
  std::string why;
  EXPECT_TRUE(f.start(&why)) << why;
}

}  // namespace
