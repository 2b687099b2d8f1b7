// vgpud identity by token, end to end on simgpu: a process without a valid
// token gets neither memory nor GPU time (the driver's own error codes), and a
// token vgpud generated is persisted (mode 0600) and survives restarts.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <map>
#include <string>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::Child;
using vgpu::test::program;
using vgpu::test::read_file;
using vgpu::test::VgpudFixture;

const char* kTenants = "  - {name: known, token: known-tenant-token-7, memory: 1Gi, compute: {request: 50%}}\n";

// The probe's "ctx=.. alloc=.. launch=.." line for a process of `token`.
std::string probe(VgpudFixture& f, const std::string& token) {
  auto p = f.run({program("vgpud_refusal_probe")}, token);
  EXPECT_EQ(p->wait(30s), 0) << p->errors();
  return p->output();
}

TEST(VgpudToken, WrongTokenGetsOutOfMemoryAndNotPermitted) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  std::string out = probe(f, "known-tenant-token-8");
  EXPECT_NE(out.find("alloc=2 "), std::string::npos) << "CUDA_ERROR_OUT_OF_MEMORY expected: " << out;
  EXPECT_NE(out.find("launch=800"), std::string::npos) << "CUDA_ERROR_NOT_PERMITTED expected: " << out;
}

TEST(VgpudToken, NoTokenGetsOutOfMemoryAndNotPermitted) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  std::string out = probe(f, "");
  EXPECT_NE(out.find("alloc=2 "), std::string::npos) << "CUDA_ERROR_OUT_OF_MEMORY expected: " << out;
  EXPECT_NE(out.find("launch=800"), std::string::npos) << "CUDA_ERROR_NOT_PERMITTED expected: " << out;
}

TEST(VgpudToken, ValidTokenGetsMemoryAndGpuTime) {
  VgpudFixture f(kTenants);
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  std::string out = probe(f, "known-tenant-token-7");
  EXPECT_NE(out.find("ctx=0 alloc=0 launch=0"), std::string::npos) << out;
}

// The token file's content without its line end.
std::string token_in(const std::string& path) {
  std::string t = read_file(path);
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t;
}

TEST(VgpudToken, GeneratedTokenIsPersistedPrivateAndStable) {
  VgpudFixture f("  - {name: minted, memory: 1Gi, compute: {request: 50%}}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  std::string path = f.dir() + "/state/tokens/minted";
  struct stat st{};
  ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string token = token_in(path);
  ASSERT_GE(token.size(), 16u) << "a guessable token: '" << token << "'";
  EXPECT_NE(probe(f, token).find("ctx=0 alloc=0 launch=0"), std::string::npos);

  f.stop_daemon();
  ASSERT_TRUE(f.start(&why)) << why;
  EXPECT_EQ(token_in(path), token) << "a clean restart changed the token";
  f.kill_daemon();
  ASSERT_TRUE(f.start(&why)) << why;
  EXPECT_EQ(token_in(path), token) << "a crash and restart changed the token";
  EXPECT_NE(probe(f, token).find("ctx=0 alloc=0 launch=0"), std::string::npos);
}

}  // namespace
