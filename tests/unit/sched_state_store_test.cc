// vgpud's state file: a damaged tenants.yaml (truncated at any byte, bit
// flips, bad YAML, wrong types, missing or duplicate keys, unknown format) is
// refused with the file, the reason and how to recover -- never a crash, never
// a load that differs from what was written. Also: the previous generation,
// stale temp files, format-1 migration, and the checksum itself.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "sha256.h"
#include "state_store.h"

namespace vgpu::sched {
namespace {

std::vector<StoredTenant> sample() {
  std::vector<StoredTenant> v(4);
  v[0].tenant.name = "inference";
  v[0].tenant.token = "0123456789abcdef0123456789abcdef";
  v[0].tenant.priority = Priority::kHigh;
  v[0].tenant.memory = 8ull << 30;
  v[0].tenant.request = 0.3;
  v[0].tenant.limit = 1;
  v[0].tenant.devices = {"0", "GPU-8b1c"};
  v[0].source = Source::kConfig;
  v[1].tenant.name = "made-at-runtime";
  v[1].tenant.token = "api-token-with-punctuation:#{}[],&*!|>'\"%@`";
  v[1].tenant.memory = 512ull << 20;
  v[1].tenant.request = 0.123456789;
  v[1].tenant.limit = 0.7;
  v[1].tenant.enforcement = EnforcePolicy::kReport;
  v[1].source = Source::kApi;
  v[2].tenant.name = "gone";
  v[2].tenant.token = "deleted-tenant-tombstone";
  v[2].source = Source::kDeleted;
  v[3].tenant.name = "batch";
  v[3].tenant.token = "ffffffffffffffffffffffffffffffff";
  v[3].tenant.priority = Priority::kLow;
  v[3].tenant.memory = 1;
  v[3].tenant.enforcement = EnforcePolicy::kKill;
  return v;
}

std::string with_header(const std::string& body, int format = 2) {
  return "# vgpud-state format " + std::to_string(format) + " sha256 " + sha256_hex(body) + "\n" + body;
}

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/sched-state-test-XXXXXX";
    path_ = mkdtemp(t);
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    if (std::system(cmd.c_str()) != 0) {
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void put(const std::string& p, const std::string& text) { std::ofstream(p) << text; }

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // 56 bytes: the length no longer fits in the first padding block.
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(StateFormat, RoundTripsExactly) {
  std::string text = format_state(sample());
  EXPECT_EQ(text.rfind("# vgpud-state format 3 sha256 ", 0), 0u) << text;
  auto back = parse_state(text, "t.yaml");
  ASSERT_TRUE(back) << back.error();
  ASSERT_EQ(back->size(), 4u);
  EXPECT_EQ(format_state(*back), text);
  EXPECT_EQ((*back)[1].tenant.token, sample()[1].tenant.token);
  EXPECT_EQ((*back)[1].tenant.request, 0.123456789);  // bit for bit
  EXPECT_EQ((*back)[1].tenant.enforcement, EnforcePolicy::kReport);
  EXPECT_EQ((*back)[3].tenant.enforcement, EnforcePolicy::kKill);
  EXPECT_FALSE((*back)[0].tenant.enforcement.has_value());
  EXPECT_EQ((*back)[2].source, Source::kDeleted);
  EXPECT_EQ((*back)[0].tenant.devices, (std::vector<std::string>{"0", "GPU-8b1c"}));
}

// A stray byte that is not UTF-8 (here in a device of a format-1 file) is
// refused: loaded, it would have been saved back as U+FFFD, a different value.
TEST(StateFormat, TextThatIsNotUtf8IsRefused) {
  auto r = parse_state("version: 1\ntenants:\n  - name: batch\n    token: batch-token-123\n    source: api\n"
                       "    memory: 1073741824\n    devices: [\xD8]\n",
                       "st.yaml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "st.yaml (format 1, no checksum):7: not UTF-8 text (byte 0xD8); write the file as UTF-8")
      << r.error();
}

// Either refused with a message naming the file, or exactly what was written.
void expect_refused_or_identical(const std::string& text, const std::string& original, const std::string& what) {
  Result<std::vector<StoredTenant>> r = make_error("not run");
  ASSERT_NO_THROW(r = parse_state(text, "st.yaml")) << what;
  if (!r) {
    EXPECT_EQ(r.error().rfind("st.yaml", 0), 0u) << what << ": " << r.error();
    return;
  }
  EXPECT_EQ(format_state(*r), original) << what << " loaded something else";
}

TEST(StateFormat, EveryTruncationIsRefused) {
  std::string text = format_state(sample());
  for (size_t n = 0; n < text.size(); ++n) {
    auto r = parse_state(text.substr(0, n), "st.yaml");
    ASSERT_FALSE(r) << "truncated to " << n << " of " << text.size() << " bytes loaded";
    EXPECT_EQ(r.error().rfind("st.yaml", 0), 0u) << r.error();
  }
  EXPECT_TRUE(parse_state(text, "st.yaml"));
  EXPECT_GT(text.size(), 700u) << "the sample should exercise every kind of line";
}

TEST(StateFormat, EveryBitFlipIsRefusedOrHarmless) {
  std::string text = format_state(sample());
  for (size_t i = 0; i < text.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string t = text;
      t[i] = static_cast<char>(t[i] ^ (1 << bit));
      expect_refused_or_identical(t, text, "bit " + std::to_string(bit) + " of byte " + std::to_string(i));
    }
}

TEST(StateFormat, DeletedDuplicatedAndZeroedBytesAreRefusedOrHarmless) {
  std::string text = format_state(sample());
  for (size_t i = 0; i < text.size(); ++i) {
    expect_refused_or_identical(text.substr(0, i) + text.substr(i + 1), text, "byte " + std::to_string(i) + " cut");
    expect_refused_or_identical(text.substr(0, i + 1) + text.substr(i), text, "byte " + std::to_string(i) + " twice");
    std::string z = text;
    z[i] = '\0';
    expect_refused_or_identical(z, text, "byte " + std::to_string(i) + " zeroed");
  }
  expect_refused_or_identical(text + text, text, "written twice");
  expect_refused_or_identical(text + "\n- junk\n", text, "junk appended");
}

struct BadBody {
  const char* body;
  const char* expected;
};

class BadStateBody : public ::testing::TestWithParam<BadBody> {};

// Well-formed checksums around bodies a bug or a hand edit could produce.
TEST_P(BadStateBody, IsRefusedWithTheReason) {
  auto r = parse_state(with_header(GetParam().body), "st.yaml");
  ASSERT_FALSE(r) << GetParam().body;
  EXPECT_NE(r.error().find(GetParam().expected), std::string::npos) << r.error();
}

#define TENANT_KEYS "token: \"0123456789abcdef\", priority: normal, memory: 1, compute: {request: 0%, limit: 100%}"

INSTANTIATE_TEST_SUITE_P(
    Cases, BadStateBody,
    ::testing::Values(
        BadBody{"", "no content"}, BadBody{"format: 2\n", "tenants: missing"},
        BadBody{"tenants: []\n", "format: missing"}, BadBody{"format: 3\ntenants: []\n", "format: missing or not 2"},
        BadBody{"format: 2\ntenants: 5\n", "tenants: missing or not a list"},
        BadBody{"format: 2\ntenants: []\nextra: 1\n", "extra: unknown key"},
        BadBody{"format: 2\nformat: 2\ntenants: []\n", "format: duplicate key"},
        BadBody{"format: 2\ntenants: [7]\n", "tenants[0]: not a mapping"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: api, " TENANT_KEYS ", devices: []}\n"
                "  - {name: a, source: api, " TENANT_KEYS ", devices: []}\n",
                "tenant 'a' appears twice"},
        BadBody{"format: 2\ntenants:\n  - {name: a, " TENANT_KEYS ", devices: []}\n", "tenants[0].source: missing"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: maybe, " TENANT_KEYS ", devices: []}\n",
                "'maybe' is not one of config, api, deleted"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: api, " TENANT_KEYS "}\n", "tenants[0].devices: is missing"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: api, token: \"0123456789abcdef\", priority: normal, "
                "memory: 1, devices: []}\n",
                "tenants[0].compute: is missing"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: api, token: \"0123456789abcdef\", priority: normal, "
                "memory: 1, compute: {request: 0%}, devices: []}\n",
                "must give request and limit"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: api, token: \"0123456789abcdef\", priority: normal, "
                "memory: [1], compute: {request: 0%, limit: 100%}, devices: []}\n",
                "tenants[0].memory: must be a single value"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: api, token: \"short\", priority: normal, "
                "memory: 1, compute: {request: 0%, limit: 100%}, devices: []}\n",
                "tenants[0].token"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: api, " TENANT_KEYS ", devices: [], enforcement: x}\n",
                "tenants[0].enforcement"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: [api], " TENANT_KEYS ", devices: []}\n",
                "tenants[0].source: missing"},
        BadBody{"format: 2\ntenants:\n  - {name: a, source: api, " TENANT_KEYS ", devices: {a: 1}}\n",
                "tenants[0].devices: must be a list"},
        BadBody{"format: 2\ntenants: [\n", "not valid YAML"},
        BadBody{"format: 2\ntenants:\n  - {? [x]: 1}\n", "keys must be plain words"}));

TEST(StateFormat, UnknownFormatAndDamagedHeaderAreRefused) {
  std::string body = "format: 2\ntenants: []\n";
  auto r = parse_state(with_header(body, 4), "st.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("format 4 is not one this vgpud reads"), std::string::npos) << r.error();
  r = parse_state("# something else\n" + body, "st.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("not a vgpud state header"), std::string::npos) << r.error();
  r = parse_state(with_header(body) + "# a comment\n", "st.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("checksum mismatch"), std::string::npos) << r.error();
  EXPECT_TRUE(parse_state(with_header(body), "st.yaml"));
}

// What vgpud before format 2 wrote: no header, "version: 1".
const char* kFormat1 = R"(version: 1
tenants:
  - name: inference
    token: s3cret-inference
    source: config
    priority: high
    memory: 8589934592
    compute: {request: 30%, limit: 100%}
    devices: [0]
  - name: old-api
    token: eight-ch
    source: api
    priority: normal
    memory: 536870912
    compute: {request: 0%, limit: 100%}
    devices: []
  - name: gone
    token: deleted-tenant
    source: deleted
    priority: normal
    memory: 0
    compute: {request: 0%, limit: 100%}
    devices: []
)";

TEST(StateFormat, Format1LoadsAndIsMigrated) {
  auto r = parse_state(kFormat1, "st.yaml");
  ASSERT_TRUE(r) << r.error();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[1].tenant.token, "eight-ch");  // an older, shorter token still loads
  EXPECT_EQ((*r)[1].source, Source::kApi);
  EXPECT_EQ((*r)[2].source, Source::kDeleted);
  auto again = parse_state(format_state(*r), "st.yaml");
  ASSERT_TRUE(again) << again.error();
  EXPECT_EQ(format_state(*again), format_state(*r));
}

TEST(StateFormat, Format1CutInsideATenantIsRefused) {
  std::string text = kFormat1;
  // Every cut that leaves a tenant incomplete (between its first and last key).
  for (size_t n = 0; n < text.size(); ++n) {
    std::string cut = text.substr(0, n);
    size_t last_tenant = cut.rfind("  - name:");
    bool inside = last_tenant != std::string::npos && cut.find("devices: [", last_tenant) == std::string::npos;
    if (!inside) continue;
    auto r = parse_state(cut, "st.yaml");
    EXPECT_FALSE(r) << "format 1 cut at " << n << " loaded";
  }
}

TEST(StateStore, SaveKeepsThePreviousGenerationAndLoadsBack) {
  TempDir d;
  StateStore s(d.path() + "/state");
  ASSERT_TRUE(s.open());
  auto a = sample();
  ASSERT_TRUE(s.save(a));
  EXPECT_EQ(access(s.prev_path().c_str(), F_OK), -1) << "no previous generation yet";
  std::string first = slurp(s.path());
  auto b = a;
  b[1].tenant.memory = 1ull << 30;
  ASSERT_TRUE(s.save(b));
  EXPECT_EQ(slurp(s.prev_path()), first);
  std::string second = slurp(s.path());
  ASSERT_TRUE(s.save(b));  // unchanged: .prev is not overwritten by the same content
  EXPECT_EQ(slurp(s.prev_path()), first);
  EXPECT_EQ(slurp(s.path()), second);
  auto loaded = s.load();
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(format_state(*loaded), second);
  struct stat st{};
  ASSERT_EQ(stat(s.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(slurp(d.path() + "/state/tokens/inference"), a[0].tenant.token + "\n");
  EXPECT_EQ(access((d.path() + "/state/tokens/gone").c_str(), F_OK), -1) << "a tombstone has no token file";
}

TEST(StateStore, MissingFileIsAnEmptyStart) {
  TempDir d;
  StateStore s(d.path() + "/state");
  ASSERT_TRUE(s.open());
  auto r = s.load();
  ASSERT_TRUE(r) << r.error();
  EXPECT_TRUE(r->empty());
}

TEST(StateStore, DamagedFileIsRefusedWithRecoveryAdvice) {
  TempDir d;
  StateStore s(d.path() + "/state");
  ASSERT_TRUE(s.open());
  auto a = sample();
  ASSERT_TRUE(s.save(a));
  a.pop_back();
  ASSERT_TRUE(s.save(a));  // .prev now holds the 4-tenant generation
  std::string text = slurp(s.path());
  put(s.path(), text.substr(0, text.size() / 2));
  auto r = s.load();
  ASSERT_FALSE(r);
  const std::string& e = r.error();
  EXPECT_NE(e.find(s.path()), std::string::npos) << e;
  EXPECT_NE(e.find("checksum mismatch"), std::string::npos) << e;
  EXPECT_NE(e.find(s.prev_path() + " is intact (4 tenants"), std::string::npos) << e;
  EXPECT_NE(e.find("cp " + s.prev_path() + " " + s.path()), std::string::npos) << e;
  EXPECT_NE(e.find("or remove " + s.path()), std::string::npos) << e;

  put(s.prev_path(), "garbage");
  r = s.load();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("the previous generation is damaged too"), std::string::npos) << r.error();
  unlink(s.prev_path().c_str());
  put(s.path(), "");
  r = s.load();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("the file is empty"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("there is no previous generation"), std::string::npos) << r.error();
}

TEST(StateStore, OpenRemovesStaleTempFilesOnly) {
  TempDir d;
  std::string dir = d.path() + "/state";
  StateStore s(dir);
  ASSERT_TRUE(s.open());
  put(dir + "/tenants.yaml.tmp.4242", "half a fi");
  put(dir + "/tenants.yaml.prev.tmp.17", "x");
  put(dir + "/tokens/inference.tmp.99", "abc");
  put(dir + "/notes.tmp.txt", "mine");  // not a name vgpud writes
  put(dir + "/tokens/inference", "tok\n");
  ASSERT_TRUE(s.open());
  EXPECT_EQ(access((dir + "/tenants.yaml.tmp.4242").c_str(), F_OK), -1);
  EXPECT_EQ(access((dir + "/tenants.yaml.prev.tmp.17").c_str(), F_OK), -1);
  EXPECT_EQ(access((dir + "/tokens/inference.tmp.99").c_str(), F_OK), -1);
  EXPECT_EQ(access((dir + "/notes.tmp.txt").c_str(), F_OK), 0);
  EXPECT_EQ(access((dir + "/tokens/inference").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace vgpu::sched
