// `vgpuctl token rotate NAME [--token T]`: replace a tenant's token.
#include <memory>

#include "admin_json.h"
#include "commands.h"

namespace vgpu::cli {

void add_token_commands(CLI::App& app, Context& ctx) {
  CLI::App* token = app.add_subcommand("token", "Manage tenant tokens");
  token->require_subcommand(1);
  CLI::App* rotate = token->add_subcommand(
      "rotate", "Replace a tenant's token; processes already registered keep running");
  auto name = std::make_shared<std::string>();
  auto value = std::make_shared<std::string>();
  rotate->add_option("NAME", *name, "tenant name")->required();
  rotate->add_option("--token", *value, "the new token (16 to 127 printable characters, no spaces); default: generated");
  rotate->callback([&ctx, name, value] {
    ctx.action = [&ctx, name, value] {
      return ctx.reply(ctx.client().rotate_token(*name, *value), tenant_with_token_json, tenant_with_token_text);
    };
  });
}

}  // namespace vgpu::cli
