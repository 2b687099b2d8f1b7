// CUDA graph capture under the hook while another tenant contends for the
// GPU (issue 9): the gate must never record or query events on a capturing
// stream, never wait for a lease inside a capture, and run its own syncs in
// RELAXED mode, so a capture in any mode succeeds.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "vgpud_fixture.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::bin_dir;
using vgpu::test::program;
using vgpu::test::VgpudFixture;
using vgpu::test::wait_until;

class VgpudCapture : public ::testing::TestWithParam<const char*> {};

TEST_P(VgpudCapture, CapturesSucceedWhileAnotherTenantContends) {
  VgpudFixture f(
      "  - {name: capturer, token: capturer-token-0001, memory: 1Gi, compute: {request: 50%}}\n"
      "  - {name: trainer, token: trainer-token-00001, memory: 1Gi, compute: {request: 50%}}\n",
      {}, "scheduler: {quantum: 5ms}\n");
  std::string why;
  ASSERT_TRUE(f.start(&why)) << why;
  auto trainer = f.run({bin_dir() + "/vgpu-workload", "--duration", "20", "--kernel-us", "1000"}, "trainer-token-00001");
  ASSERT_TRUE(wait_until([&] { return trainer->errors().find("; launching") != std::string::npos; }, 20s));
  auto p = f.run({program("hook_capture_probe"), GetParam(), "40"}, "capturer-token-0001");
  int rc = p->wait(120s);
  EXPECT_EQ(rc, 0) << p->output() << p->errors();
  EXPECT_NE(p->output().find("captures ok=40 failed=0"), std::string::npos) << p->output() << p->errors();
}

INSTANTIATE_TEST_SUITE_P(Modes, VgpudCapture, ::testing::Values("global", "thread_local", "relaxed"));

}  // namespace
