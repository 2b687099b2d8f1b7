// Stale CDI specs (issue 10): a spec the device plugin wrote for an
// allocation that vgpud no longer has (its state was wiped, a removal was cut
// short) and PodResources does not list is removed -- at the plugin's start
// at once, and by its reconciliation rounds after the grace period -- while
// the specs of allocations vgpud or PodResources knows, and every file of
// another vendor, class or name in the same directory, stay as they are.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "cdi.h"
#include "k8s_fake_kubelet.h"

namespace {

using namespace std::chrono_literals;
using vgpu::test::wait_until;
using vgpu::test::k8s::FakePodResources;
using vgpu::test::k8s::K8sPlugin;
using vgpu::test::k8s::slurp;
namespace api = vgpu::admin::v1;
namespace dp = v1beta1;

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// A spec of `kind` for `name`, as the plugin writes them.
void write_spec(const std::string& dir, const std::string& kind, const std::string& name) {
  std::ofstream(vgpu::k8s::cdi_spec_path(dir, kind, name))
      << vgpu::k8s::cdi_spec_json(kind, name, vgpu::k8s::allocation_edits({"/nonexistent"}, "/nonexistent/s"));
}

class K8sStaleCdi : public K8sPlugin {
 protected:
  std::string spec(const std::string& alloc) { return vgpu::k8s::cdi_spec_path(cdi, "vgpu.io/gpu", alloc); }
  void delete_in_vgpud(const std::string& alloc) {
    api::DeleteAllocationRequest d;
    d.set_name(alloc);
    api::DeleteAllocationResponse out;
    grpc::ClientContext ctx;
    ASSERT_TRUE(admin->DeleteAllocation(&ctx, d, &out).ok()) << alloc;
  }
  // Files of others in the CDI directory, written once; all must stay.
  void write_foreign_files() {
    mkdir(cdi.c_str(), 0755);  // before the plugin's first spec
    std::string id = vgpu::k8s::allocation_id({"GPU-x-m0"});
    foreign = {vgpu::k8s::cdi_spec_path(cdi, "nvidia.com/gpu", id),      // another vendor, same name
               vgpu::k8s::cdi_spec_path(cdi, "vgpu.io/other", id),       // another class of ours
               cdi + "/vgpu.io-gpu-mine.json",                            // not an allocation's name
               cdi + "/vgpu.io-gpu-" + id + ".json.bak",                  // not a spec file
               cdi + "/vgpu.io-gpu-" + id.substr(0, id.size() - 1) + "g.json"};  // not hex
    write_spec(cdi, "nvidia.com/gpu", id);
    write_spec(cdi, "vgpu.io/other", id);
    write_spec(cdi, "vgpu.io/other", "mine");
    std::rename(vgpu::k8s::cdi_spec_path(cdi, "vgpu.io/other", "mine").c_str(), foreign[2].c_str());
    std::ofstream(foreign[3]) << "{}";
    write_spec(cdi, "vgpu.io/gpu", id.substr(0, id.size() - 1) + "g");
    // Our file name, another kind inside (vendor "vgpu.io", class "gpu-k8s"
    // would name its files like this): not ours.
    std::string other_kind = spec(vgpu::k8s::allocation_id({"GPU-y-m0"}));
    std::ofstream(other_kind) << vgpu::k8s::cdi_spec_json("vgpu.io/gpu-k8s", "x", {});
    foreign.push_back(other_kind);
    for (auto& f : foreign) ASSERT_TRUE(exists(f)) << f;
  }
  void expect_foreign_untouched() {
    for (auto& f : foreign) EXPECT_TRUE(exists(f)) << "another's file was removed: " << f;
  }
  std::vector<std::string> foreign;
};

TEST(K8sCdiSpecs, OnlySpecsOfOurKindAndAllocationNamesAreListed) {
  char tmpl[] = "/tmp/vgpu-cdi-list-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string a = vgpu::k8s::allocation_id({"GPU-a-m0"}), b = vgpu::k8s::allocation_id({"GPU-b-m0"});
  write_spec(dir, "vgpu.io/gpu", a);
  write_spec(dir, "vgpu.io/gpu", b);
  write_spec(dir, "nvidia.com/gpu", a);
  write_spec(dir, "example.com/gpu", b);
  write_spec(dir, "vgpu.io/gpu", "k8s-short");
  std::ofstream(dir + "/vgpu.io-gpu-" + a.substr(0, 10) + "zzzzzzzzzz.json") << "{}";
  std::ofstream(vgpu::k8s::cdi_spec_path(dir, "vgpu.io/gpu", vgpu::k8s::allocation_id({"GPU-c-m0"}))) << "not json";
  auto got = vgpu::k8s::cdi_spec_allocations(dir, "vgpu.io/gpu");
  std::vector<std::string> want{a, b};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(vgpu::k8s::cdi_spec_allocations(dir, "nvidia.com/gpu"), std::vector<std::string>{a});
  EXPECT_TRUE(vgpu::k8s::cdi_spec_allocations(dir + "/missing", "vgpu.io/gpu").empty());
  (void)!std::system(("rm -rf " + dir).c_str());
}

TEST_F(K8sStaleCdi, AtStartSpecsNeitherVgpudNorPodResourcesKnowsAreRemoved) {
  // Three allocations through the plugin: `kept` vgpud still has; `wiped`
  // and `listed` vgpud loses (its state wiped), but PodResources lists `listed`.
  auto kept_ids = ids(0, {0}), wiped_ids = ids(0, {1}), listed_ids = ids(1, {0});
  dp::AllocateResponse resp;
  for (auto* d : {&kept_ids, &wiped_ids, &listed_ids}) ASSERT_TRUE(allocate({*d}, &resp).ok());
  std::string kept = vgpu::k8s::allocation_id(kept_ids), wiped = vgpu::k8s::allocation_id(wiped_ids),
              listed = vgpu::k8s::allocation_id(listed_ids);
  plugin.reset();  // stopped before vgpud forgets
  delete_in_vgpud(wiped);
  delete_in_vgpud(listed);
  for (auto& a : {kept, wiped, listed}) ASSERT_TRUE(exists(spec(a))) << a;
  write_foreign_files();
  if (HasFatalFailure()) return;
  FakePodResources pods;
  pods.set({kept_ids, listed_ids});
  auto server = serve_pod_resources(pods);
  ASSERT_TRUE(server);

  start_plugin({"--gc-interval", "0"});  // no rounds: what goes, goes at start
  if (HasFatalFailure()) return;
  // The plugin registers after its start-up clean-up.
  EXPECT_FALSE(exists(spec(wiped))) << plugin->errors();
  EXPECT_TRUE(exists(spec(kept)));
  EXPECT_TRUE(exists(spec(listed))) << "PodResources lists it: not ours to judge yet";
  expect_foreign_untouched();
  EXPECT_NE(plugin->errors().find(wiped), std::string::npos) << plugin->errors();
  server->Shutdown(std::chrono::system_clock::now() + 1s);
}

TEST_F(K8sStaleCdi, TheReconcilerRemovesASpecWhoseTenantVanishedAfterTheGrace) {
  write_foreign_files();
  if (HasFatalFailure()) return;
  auto held_ids = ids(0, {0, 1}), lost_ids = ids(0, {2});
  FakePodResources pods;
  pods.set({held_ids, lost_ids});
  auto server = serve_pod_resources(pods);
  ASSERT_TRUE(server);
  dp::AllocateResponse resp;
  ASSERT_TRUE(allocate({held_ids}, &resp).ok());
  ASSERT_TRUE(allocate({lost_ids}, &resp).ok());
  std::string held = vgpu::k8s::allocation_id(held_ids), lost = vgpu::k8s::allocation_id(lost_ids);

  // vgpud loses `lost` while PodResources still lists it: the spec stays.
  delete_in_vgpud(lost);
  // Several rounds (100 ms) and grace periods (300 ms) pass: wait for the
  // plugin to have noticed something else first -- a fresh allocation no
  // one lists is collected after the grace -- then check `lost` stayed.
  auto probe_ids = ids(1, {3});
  ASSERT_TRUE(allocate({probe_ids}, &resp).ok());
  std::string probe = vgpu::k8s::allocation_id(probe_ids);
  ASSERT_TRUE(wait_until([&] { return !exists(spec(probe)); }, 10s)) << "the reconciler does not run";
  EXPECT_TRUE(exists(spec(lost))) << "removed while PodResources lists it";

  // The pod goes from PodResources: the tenant-less spec goes after the grace.
  pods.set({held_ids});
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until([&] { return !exists(spec(lost)); }, 10s)) << plugin->errors();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms) << "removed before the grace period";
  EXPECT_TRUE(exists(spec(held)));
  expect_foreign_untouched();
  // The line follows the removal.
  EXPECT_TRUE(wait_until(
      [&] {
        return plugin->errors().find("allocation " + lost + ": vgpud and PodResources do not know it") !=
               std::string::npos;
      },
      10s))
      << plugin->errors();

  // A spec written into the directory later (vgpud wiped under a running
  // plugin) goes the same way.
  std::string orphan = vgpu::k8s::allocation_id({"GPU-z-m9"});
  write_spec(cdi, "vgpu.io/gpu", orphan);
  EXPECT_TRUE(wait_until([&] { return !exists(spec(orphan)); }, 10s));
  expect_foreign_untouched();
  EXPECT_TRUE(exists(spec(held)));
  server->Shutdown(std::chrono::system_clock::now() + 1s);
}

}  // namespace
