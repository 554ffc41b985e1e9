// `attnrec preprocess` (interaction log -> sample files) and `attnrec check-data` (leakage).

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <filesystem>
#include <memory>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/leakage.hpp"
#include "attnrec/data/preprocess.hpp"
#include "attnrec/io/outputs.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/strings.hpp"
#include "commands.hpp"

namespace attnrec::cli {

namespace {

/// One flag of `preprocess` per `preprocess.*` option of the table: `--min-rating` for
/// preprocess.min_rating. Its value, read as the option's type, goes through the table's checks.
struct TableFlag {
  const FieldSpec* field = nullptr;
  std::string flag;
  std::vector<std::string> values;  // as given (lists: one per element)
  bool set = false;                 // booleans
};

/// Whether option `f` holds a value of type T (the table's typed reference, not its doc label).
template <class T>
bool holds(const FieldSpec& f) {
  Config scratch;
  return std::holds_alternative<T>(f.ref(scratch));
}

nlohmann::json flag_value(const TableFlag& f) {
  if (holds<bool*>(*f.field)) return true;
  if (holds<std::vector<std::string>*>(*f.field)) return f.values;
  const std::string& text = f.values.front();
  if (holds<std::string*>(*f.field) || holds<ChoiceRef>(*f.field)) return text;
  // Numbers: JSON when it parses as a number (the table reports anything else).
  try {
    const auto v = nlohmann::json::parse(text);
    if (v.is_number() || v.is_null()) return v;
  } catch (const nlohmann::json::exception&) {
  }
  return text;
}

std::vector<std::shared_ptr<TableFlag>> add_table_flags(CLI::App* cmd) {
  std::vector<std::shared_ptr<TableFlag>> flags;
  const std::string prefix = "preprocess.";
  for (const auto& field : config_fields()) {
    if (field.name.rfind(prefix, 0) != 0) continue;
    auto f = std::make_shared<TableFlag>();
    f->field = &field;
    std::string name = field.name.substr(prefix.size());
    std::replace(name.begin(), name.end(), '_', '-');
    f->flag = "--" + name;
    std::string help = field.help;
    if (!field.choices.empty()) help += " One of: " + join(field.choices, ", ") + ".";
    help += " (" + field.name + ", default " + field.default_value.dump() + ")";
    if (holds<bool*>(field)) {
      cmd->add_flag(f->flag, f->set, help);
    } else if (holds<std::vector<std::string>*>(field)) {
      cmd->add_option(f->flag, f->values, help)->delimiter(',');
    } else {
      cmd->add_option(f->flag, f->values, help)->expected(1);
    }
    flags.push_back(std::move(f));
  }
  return flags;
}

}  // namespace

void add_preprocess_command(CLI::App& app, Commands& commands) {
  struct Args {
    ConfigArgs config;
    std::string input, out_dir;
    bool overwrite = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "preprocess",
      "Turn a raw interaction log into train/valid/test sample files (see data/README.md)");
  cmd->add_option("--input,-i", args->input, "Interaction log")->required();
  cmd->add_option("--out,-o", args->out_dir, "Output directory")->required();
  // The options: the table's `preprocess` section, from a config file's "preprocess" object,
  // --set preprocess.NAME=VALUE, or the flags below (which win).
  add_config_options(cmd, args->config, /*config_required=*/false);
  const auto flags = add_table_flags(cmd);
  cmd->add_flag("--overwrite", args->overwrite,
                "Replace files in --out that an earlier preprocess did not write (or that were "
                "changed since)");
  commands.push_back(
      {cmd, [args, flags]() {
         Config config = load_config(args->config.path, args->config.overrides);
         for (const auto& f : flags) {
           if (f->values.empty() && !f->set) continue;
           nlohmann::json j;
           j[nlohmann::json::json_pointer(f->field->pointer())] = flag_value(*f);
           apply_json(config, j, f->flag);
         }
         PreprocessOptions o(config.preprocess);
         o.input = args->input;
         o.out_dir = args->out_dir;
         OutputGuard guard;
         guard.input(o.input, "--input");
         for (const auto& name : preprocess_output_files()) {
           guard.output((std::filesystem::path(o.out_dir) / name).string(), "--out");
         }
         check_preprocess_outputs(o.out_dir, args->overwrite);
         const auto stats = preprocess(o);
         const auto& s = stats["splits"];
         fmt::print("kept {} users, {} items, {} interactions (density {:.5f})\n",
                    stats["kept"]["users"].get<std::int64_t>(),
                    stats["kept"]["items"].get<std::int64_t>(),
                    stats["kept"]["interactions"].get<std::int64_t>(),
                    stats["kept"]["density"].get<double>());
         for (const char* split : {"train", "valid", "test"}) {
           fmt::print("{:<6} {:>10} samples  {:>9} positives  mean history {:.1f}\n", split,
                      s[split]["samples"].get<std::int64_t>(),
                      s[split]["positives"].get<std::int64_t>(),
                      s[split]["mean_history_length"].get<double>());
         }
         fmt::print(
             "leakage check passed; wrote {}/{{train,train_positives,valid,test}}.tsv, stats.json, "
             "protocol.json\n",
             o.out_dir);
         return 0;
       }});
}

void add_check_data_command(CLI::App& app, Commands& commands) {
  struct Args {
    CheckDataOptions o;
    std::string output;
  };
  auto args = std::make_shared<Args>();
  auto& o = args->o;
  auto* cmd = app.add_subcommand("check-data",
                                 "Check sample files for leakage against their interaction log");
  cmd->add_option("--dir", o.dir, "A preprocess output directory (default for every file)");
  cmd->add_option("--train", o.train, "Training samples");
  cmd->add_option("--valid", o.valid, "Validation samples");
  cmd->add_option("--test", o.test, "Test samples");
  cmd->add_option("--interactions", o.interactions, "Interaction log (user, item, time)");
  cmd->add_option("--candidates", o.candidates, "Ranking candidates file (test positives)");
  cmd->add_option("--valid-candidates", o.valid_candidates,
                  "Ranking candidates of the validation positives");
  cmd->add_option("--vocab", o.vocab, "Item vocabulary of a run (RUN_DIR/items.vocab)");
  cmd->add_option("--output", args->output, "Write the report as JSON");
  commands.push_back({cmd, [args]() {
                        const auto files = args->o.resolved();
                        OutputGuard()
                            .input(files.train, "--train")
                            .input(files.valid, "--valid")
                            .input(files.test, "--test")
                            .input(files.interactions, "--interactions")
                            .input(files.candidates, "--candidates")
                            .input(files.valid_candidates, "--valid-candidates")
                            .input(files.vocab, "--vocab")
                            .output(args->output, "--output");
                        const auto report = check_data(args->o);
                        fmt::print("{}", format_leakage_report(report));
                        if (!args->output.empty())
                          write_file_atomic(args->output, report.dump(2) + "\n");
                        if (!report["ok"].get<bool>()) {
                          throw DataError(fmt::format(
                              "check-data: {} leakage violation(s) found (kinds and file:line "
                              "examples above); fix "
                              "the sample files or regenerate them with `attnrec preprocess`",
                              report["violations_total"].get<std::int64_t>()));
                        }
                        return 0;
                      }});
}

}  // namespace attnrec::cli
