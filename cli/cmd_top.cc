// `vgpuctl top`: a live view of the node, refreshed from vgpud's Watch stream.
#include <memory>

#include "admin_json.h"
#include "commands.h"
#include "quit_watcher.h"
#include "vgpu/units.h"

namespace vgpu::cli {

namespace {

// ANSI: cursor home, then clear the screen.
constexpr char kClearScreen[] = "\033[H\033[2J";

struct TopOptions {
  std::string interval = "1s";
  int iterations = 0;  // 0: until q or Ctrl-C
};

std::string snapshot_table(const Json& snap) {
  return status_table(snap["status"]) + "\n" + tenant_gpus_table(snap["tenants"]) + "\n" +
         processes_table(snap["processes"]);
}

// Tables redraw the screen; JSON is one document per line (JSON Lines) and
// YAML one document per snapshot, so both can be piped into other tools.
void show(const Context& ctx, const api::Snapshot& snap) {
  Json doc = snapshot_json(snap);
  switch (ctx.output_format()) {
    case Format::kTable: *ctx.out << kClearScreen << "vgpuctl top (q to quit)\n\n" << snapshot_table(doc); break;
    case Format::kJson: *ctx.out << doc.dump() << "\n"; break;
    case Format::kYaml: *ctx.out << "---\n" << render_yaml(doc); break;
  }
  ctx.out->flush();
}

int run_top(const Context& ctx, uint32_t interval_ms, int iterations) {
  AdminClient client = ctx.client();
  std::unique_ptr<WatchStream> stream = client.watch(interval_ms);
  QuitWatcher watcher([&stream] { stream->cancel(); });
  api::Snapshot snap;
  int shown = 0;
  bool stopping = false;
  // After cancel() the stream must still be read to its end before finish().
  while (stream->next(&snap)) {
    if (stopping) continue;
    show(ctx, snap);
    if (iterations > 0 && ++shown >= iterations) {
      stopping = true;
      stream->cancel();
    }
  }
  auto end = stream->finish();
  if (!end) return ctx.fail(end.error());
  return kExitOk;
}

}  // namespace

void add_top_command(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand("top", "Live view of GPUs, tenants and processes (q or Ctrl-C quits)");
  auto opts = std::make_shared<TopOptions>();
  cmd->add_option("--interval", opts->interval, "time between refreshes, e.g. 500ms, 2s (default 1s)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            auto ns = parse_duration_ns(text);
            if (!ns) return ns.error();
            return *ns >= 1'000'000 && *ns <= 3'600'000'000'000ull ? "" : "must be between 1ms and 1h";
          },
          "", "duration"))
      ->type_name("DURATION");
  cmd->add_option("--iterations", opts->iterations, "stop after N refreshes (default: until q or Ctrl-C)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([&ctx, opts] {
    ctx.action = [&ctx, opts] {
      uint64_t ns = parse_duration_ns(opts->interval).value();
      return run_top(ctx, static_cast<uint32_t>(ns / 1'000'000), opts->iterations);
    };
  });
}

}  // namespace vgpu::cli
