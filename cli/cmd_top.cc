// `vgpuctl top`: a live view of the node, refreshed from vgpud's Watch stream.
// On a terminal it redraws the screen and fits the terminal's width; into a
// pipe or file it writes plain frames (no escape sequences).
#include <unistd.h>

#include <memory>

#include "admin_json.h"
#include "commands.h"
#include "quit_watcher.h"
#include "terminal.h"
#include "vgpu/units.h"

namespace vgpu::cli {

namespace {

// ANSI: cursor home, then clear the screen. Written only to a terminal.
constexpr char kClearScreen[] = "\033[H\033[2J";

struct TopOptions {
  std::string interval = "1s";
  int iterations = 0;  // 0: until q or Ctrl-C
  bool once = false;   // --once: one frame, as --iterations 1
};

std::string snapshot_table(const Json& snap, const TableStyle& style) {
  return status_table(snap["status"], style) + "\n" +
         tenant_gpus_table(snap["tenants"], style, snap["processes"]) + "\n" + processes_table(snap["processes"], style);
}

// A frame for a terminal `width` columns wide (0: unknown): the wide
// columns when they fit (or -o wide asked for them), and no line longer
// than the terminal, which would wrap and scroll the frame off the screen.
std::string terminal_frame(const Json& doc, TableStyle style, size_t width) {
  if (!style.wide && width > 0) {
    TableStyle wide = style;
    wide.wide = true;
    std::string text = snapshot_table(doc, wide);
    if (widest_line(text) <= width) return text;
  }
  return fit_width(snapshot_table(doc, style), width);
}

// On a terminal, tables redraw the screen. Elsewhere (a pipe, a file) each
// snapshot is a plain frame, frames separated by a blank line. JSON is one
// document per line (JSON Lines) and YAML one document per snapshot, so both
// can be piped into other tools.
void show(const Context& ctx, const api::Snapshot& snap, int shown) {
  Json doc = snapshot_json(snap);
  switch (ctx.output_format()) {
    case Format::kTable:
    case Format::kWide:
      if (ctx.out_is_tty) {
        size_t width = terminal_columns(STDOUT_FILENO);
        *ctx.out << kClearScreen << fit_width("vgpuctl top (q to quit)", width) << "\n\n"
                 << terminal_frame(doc, ctx.table_style(), width);
      } else {
        *ctx.out << (shown > 0 ? "\n" : "") << snapshot_table(doc, ctx.table_style());
      }
      break;
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
    show(ctx, snap, shown++);
    if (iterations > 0 && shown >= iterations) {
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
  cmd->add_flag("--once", opts->once, "print one frame and exit (as --iterations 1)");
  cmd->callback([&ctx, opts] {
    ctx.action = [&ctx, opts] {
      uint64_t ns = parse_duration_ns(opts->interval).value();
      return run_top(ctx, static_cast<uint32_t>(ns / 1'000'000), opts->once ? 1 : opts->iterations);
    };
  });
}

}  // namespace vgpu::cli
