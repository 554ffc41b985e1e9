// `attnrec config`: print the resolved config (--dump), the option reference (--doc), or just
// validate (--check).

#include <fmt/format.h>
#include <memory>

#include "attnrec/config/fields.hpp"
#include "commands.hpp"

namespace attnrec::cli {

void add_config_options(CLI::App* app, ConfigArgs& args, bool config_required) {
  auto* opt = app->add_option("--config,-c", args.path, "JSON config file");
  if (config_required) opt->required();
  app->add_option("--set", args.overrides,
                  "Override one option, e.g. --set model.encoder.hidden=128 (repeatable; "
                  "precedence: defaults < config file < --set)")
      ->take_all()
      ->allow_extra_args(false);
}

void add_config_command(CLI::App& app, Commands& commands) {
  struct Args {
    ConfigArgs config;
    bool dump = false, doc = false, check = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("config", "Show the resolved config or the option reference");
  add_config_options(cmd, args->config, false);
  auto* dump = cmd->add_flag("--dump", args->dump,
                             "Print the fully resolved config (defaults filled in) as JSON");
  auto* doc = cmd->add_flag("--doc", args->doc, "Print the Markdown option reference");
  auto* check = cmd->add_flag("--check", args->check, "Only validate; print nothing on success");
  dump->excludes(doc)->excludes(check);
  doc->excludes(check);
  commands.push_back({cmd, [args]() {
                        if (args->doc) {
                          fmt::print("{}", config_reference_markdown());
                          return 0;
                        }
                        const Config config =
                            load_config(args->config.path, args->config.overrides);
                        if (!args->check) fmt::print("{}\n", config_to_json(config).dump(2));
                        return 0;
                      }});
}

}  // namespace attnrec::cli
