// `attnrec export` through the real binary: the safetensors file round-trips, and the plain
// PyTorch module of scripts/attnrec_reference.py, loaded from it, scores as `attnrec predict`
// does for every attention variant, each encoder and both heads.

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/batch.hpp"
#include "attnrec/io/safetensors.hpp"
#include "attnrec/model/factory.hpp"
#include "attnrec/tools/export.hpp"
#include "cli_data.hpp"
#include "support.hpp"

using namespace attnrec;
using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

/// A Python interpreter with torch: ATTNREC_PYTHON, the test set-up's .venv-export (torch and
/// safetensors), or Debian's python3 with python3-torch; empty when there is none.
std::string python_with_torch() {
  return python_that_imports("torch", {source_path(".venv-export/bin/python"), "/usr/bin/python3"});
}

/// The last column of every line but the header of a TSV file, as numbers.
std::vector<double> last_column(const std::string& path) {
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);
  std::vector<double> values;
  while (std::getline(in, line)) values.push_back(std::stod(line.substr(line.rfind('\t') + 1)));
  return values;
}

struct Variant {
  std::string name, config;
  std::vector<std::string> sets;
};

}  // namespace

TEST_CASE("safetensors: round trip, layout and malformed files", "[export]") {
  TempDir dir;
  const std::vector<NamedTensor> tensors = {
      {"b.weight", torch::arange(6, torch::kFloat32).view({2, 3})},
      {"a.ids", torch::tensor({3, -1}, torch::kInt64)},
      {"empty", torch::zeros({0, 4})}};
  write_safetensors(dir.file("m.safetensors"), tensors, {{"k", "v"}});
  const auto back = read_safetensors(dir.file("m.safetensors"));
  REQUIRE(back.tensors.size() == 3);
  CHECK(back.metadata == std::map<std::string, std::string>{{"k", "v"}});
  for (const auto& t : tensors) {
    const auto it = std::find_if(back.tensors.begin(), back.tensors.end(),
                                 [&](const NamedTensor& b) { return b.name == t.name; });
    REQUIRE(it != back.tensors.end());
    CHECK(it->tensor.scalar_type() == t.tensor.scalar_type());
    CHECK(it->tensor.equal(t.tensor));
  }
  // The layout: little-endian header length, a JSON header padded to 8 bytes, then the data.
  const std::string bytes = read_text(dir.file("m.safetensors"));
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["a.ids"]["dtype"] == "I64");
  CHECK(header["a.ids"]["data_offsets"] == nlohmann::json::array({0, 16}));
  CHECK(header["b.weight"]["shape"] == nlohmann::json::array({2, 3}));
  CHECK(bytes.size() == 8 + n + 16 + 24);
  // Malformed files name themselves and the fault.
  write_text(dir.file("short.safetensors"), bytes.substr(0, 8 + n + 10));
  CHECK_THROWS_WITH(read_safetensors(dir.file("short.safetensors")),
                    Contains("short.safetensors: not a valid safetensors file") &&
                        Contains("data_offsets outside the data"));
  write_text(dir.file("huge.safetensors"), std::string("\xff\xff\xff\xff\x00\x00\x00\x00{}", 10));
  CHECK_THROWS_WITH(read_safetensors(dir.file("huge.safetensors")),
                    Contains("header length 4294967295 exceeds the file"));
  std::string bad = bytes;
  bad.replace(8, 1, "[");
  write_text(dir.file("bad.safetensors"), bad);
  CHECK_THROWS_WITH(read_safetensors(dir.file("bad.safetensors")), Contains("header is not JSON"));
}

TEST_CASE("cli export: the Python reference module scores as attnrec predict does",
          "[cli][export]") {
  TempDir dir;
  const auto data = prepared_log(dir);
  const std::string common = "--set data.train='" + data +
                             "/train_positives.tsv' --set data.valid='" + data +
                             "/valid.tsv' --set data.test= --set train.epochs=1 " +
                             "--set train.threads=1 --set train.device=cpu ";
  const std::string small =
      "--set model.embedding.dim=8 --set model.encoder.hidden=8 "
      "--set model.attention.hidden=8 ";
  std::vector<Variant> variants;
  for (const std::string attention :
       {"additive", "dot", "scaled_dot", "cosine", "multi_head", "none", "last"}) {
    std::vector<std::string> sets = {"model.attention.type=" + attention};
    if (attention == "multi_head") sets.emplace_back("model.attention.heads=2");
    variants.push_back({"lstm-" + attention, "default.json", sets});
  }
  variants.push_back({"gru", "default.json", {"model.encoder.type=gru"}});
  variants.push_back({"none", "default.json", {"model.encoder.type=none"}});
  variants.push_back({"bilstm-user-bias",
                      "default.json",
                      {"model.encoder.bidirectional=true", "model.embedding.user=true",
                       "model.head.item_bias=true", "model.attention.positional=sinusoidal"}});
  variants.push_back({"transformer-dot-head",
                      "default.json",
                      {"model.encoder.type=transformer", "model.encoder.heads=2",
                       "model.head.type=dot", "model.attention.positional=learned"}});
  variants.push_back({"sasrec", "sasrec.json", {}});
  std::string triples, ts_triples;
  for (const auto& v : variants) {
    std::string args = "--log-level warn train --config '" + source_path("configs/" + v.config) +
                       "' --run-dir '" + dir.file(v.name) + "' " + common;
    args += v.config == "sasrec.json"
                ? "--set data.train='" + data + "/train_sequences.tsv' --set model.embedding.dim=8 "
                : small;
    for (const auto& s : v.sets) args += "--set " + s + " ";
    const auto train = run_cli_env("OMP_WAIT_POLICY=PASSIVE", args);
    INFO(v.name << ": " << train.err);
    REQUIRE(train.code == 0);
    const auto exported = run_cli("--log-level warn export --checkpoint '" + dir.file(v.name) +
                                  "' --output '" + dir.file(v.name + "-export") + "'");
    INFO(exported.err);
    REQUIRE(exported.code == 0);
    const auto file = read_safetensors(dir.file(v.name + "-export/model.safetensors"));
    CHECK(file.metadata.at("format") == "attnrec-export");
    CHECK(file.metadata.count("architecture") == 1);
    CHECK(read_text(dir.file(v.name + "-export/items.vocab")) ==
          read_text(dir.file(v.name + "/items.vocab")));
    const auto p =
        run_cli("--log-level warn predict --checkpoint '" + dir.file(v.name) + "' --data '" + data +
                "/test.tsv' --output '" + dir.file(v.name + ".pred") + "'");
    INFO(p.err);
    REQUIRE(p.code == 0);
    triples += " '" + dir.file(v.name + "-export") + "' '" + data + "/test.tsv' '" +
               dir.file(v.name + ".ref") + "'";
    if (v.name != "bilstm-user-bias") {  // no TorchScript form (refused below)
      const auto ts = run_cli("--log-level warn export --format torchscript --checkpoint '" +
                              dir.file(v.name) + "' --output '" + dir.file(v.name + "-ts") + "'");
      INFO(ts.err);
      REQUIRE(ts.code == 0);
      ts_triples += " '" + dir.file(v.name + "-ts") + "' '" + data + "/test.tsv' '" +
                    dir.file(v.name + ".ts") + "'";
    }
  }
  const auto refused =
      run_cli("--log-level warn export --format torchscript --checkpoint '" +
              dir.file("bilstm-user-bias") + "' --output '" + dir.file("bi-ts") + "'");
  CHECK(refused.code == 2);
  CHECK_THAT(refused.err,
             Contains("bidirectional RNN encoder") && Contains("--format safetensors"));
  // Refused: an output directory that is the run directory (its vocabularies are run files).
  const auto onto_run = run_cli("--log-level warn export --checkpoint '" + dir.file("gru") +
                                "' --output '" + dir.file("gru") + "'");
  CHECK(onto_run.code == 2);
  const std::string python = python_with_torch();
  if (python.empty()) {
    WARN(
        "SKIPPED: no Python with torch for scripts/attnrec_reference.py (scripts/test.sh "
        "creates .venv-export; or apt-get install python3-torch, or set ATTNREC_PYTHON)");
    return;
  }
  const std::string script = "'" + python + "' '" + source_path("scripts/attnrec_reference.py") +
                             "' score" + triples + " 2>'" + dir.file("python.err") + "'";
  const int rc = std::system(script.c_str());
  INFO(read_text(dir.file("python.err")));
  REQUIRE(rc == 0);
  for (const auto& v : variants) {
    INFO(v.name);
    const auto want = last_column(dir.file(v.name + ".pred"));
    const auto got = last_column(dir.file(v.name + ".ref"));
    REQUIRE(got.size() == want.size());
    REQUIRE_FALSE(want.empty());
    for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-5));
  }
  // TorchScript: torch.jit.load in Python gives predict's numbers too, when that Python's torch
  // can read archives of this build's LibTorch (not older than it).
  const std::string version = "'" + python +
                              "' -c 'import sys, torch; v = torch.__version__.split(\".\"); "
                              "sys.exit(0 if (int(v[0]), int(v[1])) >= (" +
                              std::to_string(TORCH_VERSION_MAJOR) + ", " +
                              std::to_string(TORCH_VERSION_MINOR) + ") else 1)'";
  if (std::system(version.c_str()) != 0) {
    WARN("SKIPPED (TorchScript in Python): the Python torch is older than this build's LibTorch "
         << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR);
  } else {
    const std::string ts_script = "'" + python + "' '" +
                                  source_path("scripts/attnrec_reference.py") + "' score" +
                                  ts_triples + " 2>'" + dir.file("ts.err") + "'";
    const int ts_rc = std::system(ts_script.c_str());
    INFO(read_text(dir.file("ts.err")));
    REQUIRE(ts_rc == 0);
    for (const auto& v : variants) {
      if (v.name == "bilstm-user-bias") continue;
      INFO(v.name << " (TorchScript)");
      const auto want = last_column(dir.file(v.name + ".pred"));
      const auto got = last_column(dir.file(v.name + ".ts"));
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < want.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-5));
    }
  }
  // The standard-library reader (no safetensors package) reads the same file.
  const std::string stdlib = "ATTNREC_REFERENCE_STDLIB=1 '" + python + "' '" +
                             source_path("scripts/attnrec_reference.py") + "' score '" +
                             dir.file("sasrec-export") + "' '" + data + "/test.tsv' '" +
                             dir.file("stdlib.ref") + "'";
  REQUIRE(std::system(stdlib.c_str()) == 0);
  CHECK(read_text(dir.file("stdlib.ref")) == read_text(dir.file("sasrec.ref")));
}

TEST_CASE("torchscript: every shipped config's scripted forward equals the C++ forward",
          "[export][torchscript]") {
  std::vector<std::string> configs;
  for (const auto& e : std::filesystem::directory_iterator(source_path("configs"))) {
    if (e.path().extension() == ".json") configs.push_back(e.path().filename().string());
  }
  std::sort(configs.begin(), configs.end());
  REQUIRE(configs.size() >= 10);
  std::int64_t scripted = 0;
  for (const auto& name : configs) {
    INFO(name);
    const Config config = load_config(source_path("configs/" + name));
    torch::manual_seed(5);
    auto model = build_recommender(config, 30, 7, config.model.embedding.category ? 6 : 0);
    if (config.model.embedding.category) {
      model->set_item_categories(torch::randint(1, 6, {30}, torch::kInt64));
    }
    model->eval();
    if (!model->options.has_item()) {
      CHECK_THROWS_WITH(to_torchscript(model), Contains("has no candidate item"));
      continue;
    }
    auto module = to_torchscript(model);
    // Two batch shapes; histories of every length, an empty one among them.
    for (const auto& [rows, steps] : {std::pair<std::int64_t, std::int64_t>{5, 4}, {9, 11}}) {
      Batch b;
      b.lengths = torch::randint(0, steps + 1, {rows}, torch::kInt64);
      b.lengths[0] = steps;
      b.lengths[1] = 0;
      b.mask = torch::arange(steps).unsqueeze(0) < b.lengths.unsqueeze(1);
      b.history = torch::randint(1, 30, {rows, steps}, torch::kInt64) * b.mask.to(torch::kInt64);
      b.item = torch::randint(1, 30, {rows}, torch::kInt64);
      b.user = torch::randint(1, 7, {rows}, torch::kInt64);
      torch::Tensor want, got;
      {
        torch::NoGradGuard no_grad;
        want = model->forward(b).logits;
        got = module.forward({b.history, b.lengths, b.item, b.user}).toTensor();
      }
      CHECK(torch::allclose(got, want, 1e-5, 1e-5));
    }
    ++scripted;
  }
  CHECK(scripted >= 9);
  // A variant without a TorchScript form is refused by name.
  Config bi = load_config(source_path("configs/default.json"));
  bi.model.encoder.bidirectional = true;
  auto model = build_recommender(bi, 30, 7);
  CHECK_THROWS_WITH(to_torchscript(model), Contains("bidirectional RNN encoder"));
}
