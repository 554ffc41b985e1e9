#pragma once
/// \file The one table of configuration options. Each entry holds an option's name (its dotted
/// path, which is also its place in `Config`), type, default, allowed values and help text.
/// Parsing, validation, `attnrec config --dump`, `--set` overrides and the Markdown reference
/// (`attnrec config --doc`, committed as docs/config.md) are all driven by this table.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "attnrec/config/choices.hpp"
#include "attnrec/config/config.hpp"

namespace attnrec {

/// One choice field of a `Config` (an enum): its list of allowed values and access by index.
struct ChoiceRef {
  const std::vector<ChoiceInfo>* choices = nullptr;
  std::function<std::size_t()> get;
  std::function<void(std::size_t)> set;
};

/// A typed pointer to one field of a `Config`.
using FieldRef = std::variant<std::int64_t*, double*, std::optional<double>*, bool*, std::string*,
                              std::vector<std::int64_t>*, std::vector<std::string>*, ChoiceRef>;

/// One option: declaration and validation rules.
struct FieldSpec {
  std::string name;  ///< dotted path, e.g. "model.encoder.hidden"
  std::function<FieldRef(Config&)> ref;
  nlohmann::json default_value;
  std::string help;
  std::optional<double> min;  ///< numeric lower bound (for lists: of each element)
  std::optional<double> max;  ///< numeric upper bound
  bool min_exclusive = false;
  bool max_exclusive = false;
  std::vector<std::string> choices;  ///< allowed strings (for lists: of each element)
  /// The allowed values with their descriptions, for choice fields (documented one per line).
  const std::vector<ChoiceInfo>* choice_list = nullptr;
  /// May differ between a checkpoint's config and a resumed run (e.g. train.epochs); every
  /// other difference makes `train --resume` refuse.
  bool resumable = false;
  /// Read by training (and so compared by `train --resume` and when scoring); false for the
  /// options of `attnrec preprocess`, which training ignores.
  bool training = true;
  /// Extra check for values the other rules cannot express; returns an error or nullopt.
  std::function<std::optional<std::string>(const nlohmann::json&)> check;
  std::string check_doc;  ///< how `check` is described in the reference

  /// Type name for messages and docs: integer, number, boolean, string, list of integers, ...
  std::string type_name() const;
  /// The JSON pointer of this field, e.g. "/model/encoder/hidden".
  std::string pointer() const;
};

/// All options, in documentation order.
const std::vector<FieldSpec>& config_fields();

/// The names of the options that may change on resume (FieldSpec::resumable), in table order.
std::vector<std::string> resumable_fields();

/// Finds an option by dotted name; nullptr when there is none.
const FieldSpec* find_field(const std::string& name);

/// The current value of option `f` in `config`, as JSON.
nlohmann::json field_value(const FieldSpec& f, const Config& config);

/// A config with every option at its default.
Config default_config();

/// Applies the options present in `j` on top of `config`. `source` names where `j` came from
/// (a file path or "--set"). Every problem found is reported at once in one ConfigError whose
/// lines read "SOURCE: /json/pointer: problem".
void apply_json(Config& config, const nlohmann::json& j, const std::string& source);

/// Parses JSON text (comments allowed). Errors name `source`, line and column.
nlohmann::json parse_json_text(const std::string& text, const std::string& source);

/// Applies `--set` overrides of the form "dotted.name=VALUE". VALUE is read as JSON when it
/// parses as JSON, and as a plain string otherwise (so `--set train.device=cpu` works).
void apply_overrides(Config& config, const std::vector<std::string>& assignments);

/// Checks rules that involve several options (e.g. target attention needs an item column).
/// Called before any data is read. Throws ConfigError listing every violation.
void validate_config(const Config& config);

/// defaults < file < overrides, then validate_config(). `path` may be empty (defaults only).
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

/// Every option with its current value, as nested JSON (the `--dump` format, which
/// `apply_json` reads back to the same config).
nlohmann::json config_to_json(const Config& config);

/// Parses a config previously written by config_to_json (e.g. stored with a checkpoint).
Config config_from_json(const nlohmann::json& j, const std::string& source);

/// The Markdown option reference (docs/config.md).
std::string config_reference_markdown();

}  // namespace attnrec
