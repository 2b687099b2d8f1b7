// libvgpu.so preloaded into programs that never use CUDA costs them (almost)
// nothing: only the libc-only stub is mapped, never libvgpu-core.so or
// libstdc++; the first hooked call loads the core and it works, also when
// threads race for it, after fork(), and for a stub preloaded by a relative
// path. Without the core, hooked calls fail closed (libhook/stub_abi.h).
// The exec-time ratio itself is a benchmark (benchmarks/preload_exec_bench.sh).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "test_support.h"

namespace vgpu::test {
namespace {

using Settings = std::map<std::string, std::string>;
constexpr unsigned long long kUnit = 64ull << 20;

std::string stub() { return lib_dir() + "/libvgpu.so"; }

std::map<std::string, std::string> hook_env(const SimNode& node, const std::string& preload = stub()) {
  auto env = node.env();
  env["LD_PRELOAD"] = preload;
  env["VGPU_MEMORY_LIMIT"] = std::to_string(4 * kUnit);
  return env;
}

Settings one_gpu() { return Settings{{"SIMGPU_MEMORY", "8Gi"}, {"SIMGPU_CONTEXT_OVERHEAD", "0"}}; }

std::string probe(const SimNode& node, const std::string& mode, const std::string& preload = stub()) {
  Child child({program("hook_preload_probe"), mode, std::to_string(kUnit)}, hook_env(node, preload));
  int rc = child.wait(std::chrono::seconds(60));
  return child.output() + (rc == 0 ? "" : "exit " + std::to_string(rc) + ": " + child.errors());
}

TEST(HookPreloadCost, StubLinksOnlyLibc) {
  FILE* f = popen(("readelf -d " + stub() + " | sed -n 's/.*Shared library: \\[\\(.*\\)\\]/\\1/p'").c_str(), "r");
  ASSERT_NE(f, nullptr);
  char line[256];
  std::string needed;
  while (std::fgets(line, sizeof line, f)) needed += line;
  pclose(f);
  EXPECT_EQ(needed, "libc.so.6\n");
}

TEST(HookPreloadCost, ProgramWithoutCudaMapsOnlyTheStub) {
  SimNode node(one_gpu());
  Child child({"/bin/cat", "/proc/self/maps"}, hook_env(node));
  ASSERT_EQ(child.wait(std::chrono::seconds(30)), 0) << child.errors();
  std::string maps = child.output();
  EXPECT_NE(maps.find("/libvgpu.so\n"), std::string::npos) << "not preloaded?\n" << maps;
  EXPECT_EQ(maps.find("libvgpu-core.so"), std::string::npos) << maps;
  EXPECT_EQ(maps.find("libstdc++"), std::string::npos) << maps;
  EXPECT_EQ(child.errors(), "");
}

TEST(HookPreloadCost, FirstHookedCallLoadsTheCoreWhichEnforces) {
  SimNode node(one_gpu());
  EXPECT_EQ(probe(node, "lazy"), "ok\n");
}

TEST(HookPreloadCost, DlsymOfAHookedNameLoadsTheCore) {
  SimNode node(one_gpu());
  EXPECT_EQ(probe(node, "dlsym"), "ok\n");
}

TEST(HookPreloadCost, ThreadsRacingTheFirstCallAllReachTheCore) {
  SimNode node(one_gpu());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(probe(node, "race"), "ok\n") << "run " << i;
}

TEST(HookPreloadCost, ChildOfAProcessWithoutCudaLoadsTheCore) {
  SimNode node(one_gpu());
  EXPECT_EQ(probe(node, "fork"), "ok\n");
}

TEST(HookPreloadCost, RelativePreloadPathSurvivesChdir) {
  SimNode node(one_gpu());
  auto env = hook_env(node, "./libvgpu.so");
  env.erase("LD_PRELOAD");
  // The shell starts in the library's directory and preloads it relatively
  // only for the probe, which changes directory before its first hooked call.
  std::string cmd = "cd '" + lib_dir() + "' && LD_PRELOAD=./libvgpu.so exec '" + program("hook_preload_probe") +
                    "' chdir " + std::to_string(kUnit);
  Child child({"/bin/sh", "-c", cmd}, env);
  ASSERT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.output() << child.errors();
  EXPECT_EQ(child.output(), "ok\n");
}

TEST(HookPreloadCost, WithoutTheCoreHookedCallsFailClosed) {
  SimNode node(one_gpu());
  char dir_template[] = "/tmp/vgpu-stub-only-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::filesystem::path dir(dir_template);
  std::filesystem::copy_file(stub(), dir / "libvgpu.so");
  std::string lone = (dir / "libvgpu.so").string();

  Child quiet({"/bin/true"}, hook_env(node, lone));
  EXPECT_EQ(quiet.wait(std::chrono::seconds(30)), 0);
  EXPECT_EQ(quiet.errors(), "") << "a program without CUDA never looks for the core";

  Child child({program("hook_preload_probe"), "missing", std::to_string(kUnit)}, hook_env(node, lone));
  EXPECT_EQ(child.wait(std::chrono::seconds(60)), 0) << child.errors();
  EXPECT_EQ(child.output(), "rc=302\n");  // CUDA_ERROR_SHARED_OBJECT_INIT_FAILED
  EXPECT_NE(child.errors().find("cannot load the hook's core"), std::string::npos) << child.errors();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vgpu::test
