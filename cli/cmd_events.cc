// `vgpuctl events [--tenant NAME] [--since DURATION] [--limit N]`: what
// vgpud's enforcement backstop did (processes killed or reported), oldest
// first. vgpud keeps only the most recent events (a bounded list in memory);
// its log has them all.
#include <time.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "admin_json.h"
#include "commands.h"
#include "vgpu/units.h"

namespace vgpu::cli {

namespace {

struct EventsOptions {
  std::optional<std::string> tenant;  // "-": unregistered processes only
  std::optional<std::string> since;   // "10m", "1h", "30s"
  uint32_t limit = 0;                 // 0: all
};

// A look-back duration: vgpu's durations (ns, us, ms, s) plus minutes, hours
// and days, which fit "how far back" better.
Result<uint64_t> lookback_ns(const std::string& text) {
  static const struct {
    char suffix;
    uint64_t seconds;
  } kLong[] = {{'m', 60}, {'h', 3600}, {'d', 86400}};
  if (!text.empty() && text.size() < 32)
    for (const auto& u : kLong) {
      if (text.back() != u.suffix) continue;
      auto s = parse_duration_ns(text.substr(0, text.size() - 1) + "s");
      if (!s || *s > 100ull * 365 * 86400 * 1'000'000'000 / u.seconds) break;
      return *s * u.seconds;
    }
  auto ns = parse_duration_ns(text);
  if (!ns) return make_error("'" + text + "' is not a duration (examples: 30s, 10m, 2h, 1d)");
  return ns;
}

uint64_t now_unix_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

Result<api::ListEventsRequest> make_request(const EventsOptions& o) {
  api::ListEventsRequest req;
  if (o.tenant) req.set_tenant(*o.tenant == "-" ? "" : *o.tenant);
  if (o.since) {
    auto back = lookback_ns(*o.since);
    if (!back) return make_error("--since: " + back.error());
    uint64_t now = now_unix_ns();
    req.set_since_unix_ns(*back >= now ? 1 : now - *back);
  }
  req.set_limit(o.limit);
  return req;
}

}  // namespace

std::string iso8601_utc(uint64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000ull);
  unsigned ms = static_cast<unsigned>(unix_ns / 1'000'000ull % 1000);
  tm utc{};
  if (!gmtime_r(&secs, &utc)) return std::to_string(unix_ns);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms);
  return buf;
}

std::string events_table(const Json& events, const TableStyle& style) {
  Table t{{"TIME", "REASON", "ACTION", "PID", "TENANT", "GPU", "DETAIL"}, {}};
  for (const auto& e : events) {
    std::string tenant = e["tenant"].get<std::string>();
    int gpu = e["gpu"].get<int>();
    t.rows.push_back({iso8601_utc(e["unix_ns"].get<uint64_t>()), e["reason"].get<std::string>(),
                      e["action"].get<std::string>(), e["pid"].dump(), tenant.empty() ? "-" : tenant,
                      gpu < 0 ? "-" : std::to_string(gpu), e["detail"].get<std::string>()});
  }
  return render_table(t, style);
}

void add_events_command(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand("events", "What vgpud's enforcement did: processes killed or reported");
  auto opts = std::make_shared<EventsOptions>();
  cmd->add_option("--tenant", opts->tenant, "only this tenant's events ('-': unregistered processes only)")
      ->type_name("NAME");
  cmd->add_option("--since", opts->since, "only events of the last DURATION, e.g. 30s, 10m, 2h, 1d")
      ->type_name("DURATION")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            auto ns = lookback_ns(text);
            return ns ? "" : ns.error();
          },
          "", "duration"));
  cmd->add_option("--limit", opts->limit, "only the most recent N events (default: all vgpud keeps)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([&ctx, opts] {
    ctx.action = [&ctx, opts] {
      auto req = make_request(*opts);
      if (!req) return ctx.usage_error("vgpuctl events", req.error());
      return ctx.reply(
          ctx.client().events(*req),
          [](const api::ListEventsResponse& r) { return Json{{"events", events_json(r.events())}}; },
          [](const Json& doc, const TableStyle& st) { return events_table(doc["events"], st); });
    };
  });
}

}  // namespace vgpu::cli
