#pragma once
/// \file A whole training run as `attnrec train` performs it: prepare the run directory, read
/// data and build vocabularies, train, evaluate the best model on the test split, write the
/// summary.

#include <nlohmann/json.hpp>
#include <string>

#include "attnrec/config/config.hpp"
#include "attnrec/data/dataset.hpp"

namespace attnrec {

struct TrainRunOptions {
  /// Run directory (created). Default: "runs/run"
  std::string run_dir = "runs/run";
  /// Replace an existing run in run_dir. Default: false
  bool overwrite = false;
};

/// Runs training; returns the summary also written to RUN_DIR/summary.json.
nlohmann::json run_training(const Config& config, const TrainRunOptions& options);

/// Reads a data file with the settings of `config` and the vocabularies of a trained model.
/// `label_optional`: a file with one column fewer than `data.columns` is read as having no
/// label column (for predict). Returns the columns actually used in `columns_used`.
SampleSet read_for_model(const std::string& path, const Config& config, const Vocab& items,
                         const Vocab& users, bool label_optional,
                         std::vector<std::string>* columns_used = nullptr);

}  // namespace attnrec
