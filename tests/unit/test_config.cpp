#include <catch2/catch.hpp>
#include <filesystem>

#include "attnrec/config/fields.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/strings.hpp"
#include "support.hpp"

using namespace attnrec;
using attnrec::test::TempDir;
using attnrec::test::write_text;
using Catch::Matchers::Contains;

namespace {
std::string config_error(const std::string& json_text, const std::vector<std::string>& sets = {}) {
  TempDir dir;
  const auto path = write_text(dir.file("c.json"), json_text);
  try {
    load_config(path, sets);
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    // Replace the temporary path so messages can be compared exactly.
    for (auto pos = msg.find(path); pos != std::string::npos; pos = msg.find(path)) {
      msg.replace(pos, path.size(), "c.json");
    }
    return msg;
  }
  return "no error";
}
}  // namespace

TEST_CASE("defaults come from the field table", "[config]") {
  const Config c = default_config();
  CHECK(c.model.embedding.dim == 64);
  CHECK(c.model.encoder.type == EncoderKind::lstm);
  CHECK(c.model.attention.type == "additive");
  CHECK(c.model.attention.query == QueryKind::target);
  CHECK(c.model.head.hidden == std::vector<std::int64_t>{64, 32});
  CHECK(c.train.lr == Approx(1e-3));
  CHECK(c.train.batch_size == 256);
  CHECK(c.data.columns == std::vector<std::string>{"label", "user", "item", "history"});
  CHECK(c.data.history_separator == ",");
  CHECK(c.eval.threshold == 0.5);
  // Every default passes its own validation and the cross-field rules.
  CHECK_NOTHROW(validate_config(c));
  for (const auto& f : config_fields()) {
    CHECK_FALSE(f.help.empty());
    // Every default is set; null only where null is a value (an unset threshold).
    CHECK((f.default_value != nlohmann::json() || f.type_name() == "a number or null"));
  }
  CHECK_FALSE(c.preprocess.min_rating.has_value());
  CHECK(c.preprocess.format == LogFormat::automatic);
  CHECK(c.preprocess.max_history == 50);
}

TEST_CASE("unknown keys name the JSON path and suggest the closest key", "[config]") {
  CHECK(config_error(R"({"model": {"attention": {"tpye": "dot"}}})") ==
        "c.json: /model/attention/tpye: unknown key; did you mean \"type\"?");
  CHECK(config_error(R"({"modle": {}})") == "c.json: /modle: unknown key; did you mean \"model\"?");
  CHECK(config_error(R"({"model": {"hidden": 3}})") ==
        "c.json: /model/hidden: unknown key here; did you mean /model/encoder/hidden or "
        "/model/attention/hidden or /model/head/hidden?");
  CHECK(
      config_error(R"({"train": {"zzzzzzzz": 3}})") ==
      std::string("c.json: /train/zzzzzzzz: unknown key; valid keys here: epochs, batch_size, "
                  "optimizer, lr, beta1, beta2, eps, weight_decay, schedule, warmup_steps, "
                  "grad_clip, "
                  "seed, device, precision, deterministic, threads, validate_every_steps, "
                  "log_every_steps, "
                  "tensorboard, distributed, on_nonfinite, loss, next_item, gbce_t, softmax_block, "
                  "label_smoothing, negatives, "
                  "early_stopping"));
}

TEST_CASE("wrong types, ranges and enum values are explained", "[config]") {
  CHECK(config_error(R"({"model": {"encoder": {"hidden": "x"}}})") ==
        "c.json: /model/encoder/hidden: expected an integer, got the string \"x\"");
  CHECK(config_error(R"({"model": {"encoder": {"hidden": 3.5}}})") ==
        "c.json: /model/encoder/hidden: expected an integer, got the number 3.5");
  CHECK(config_error(R"({"train": {"lr": 0}})") ==
        "c.json: /train/lr: out of range: expected (0, 10], got 0");
  CHECK(config_error(R"({"train": {"epochs": 0}})") ==
        "c.json: /train/epochs: out of range: expected [1, 100000], got 0");
  // The allowed attention types are the registered variants (the list grows with each one).
  CHECK(config_error(R"({"model": {"attention": {"type": "adtitive"}}})") ==
        "c.json: /model/attention/type: unknown value \"adtitive\"; did you mean \"additive\"? "
        "(allowed: " +
            join(choice_names(attention_variants()), ", ") + ")");
  for (const char* shipped : {"additive", "cosine", "dot", "multi_head", "none", "scaled_dot"}) {
    const auto names = choice_names(attention_variants());
    CHECK(std::count(names.begin(), names.end(), shipped) == 1);
  }
  CHECK(config_error(R"({"data": {"shuffle": 1}})") ==
        "c.json: /data/shuffle: expected a boolean, got the number 1");
  CHECK(config_error(R"({"model": {"head": {"hidden": [64, 0]}}})") ==
        "c.json: /model/head/hidden: element 1: out of range: expected [1, 65536], got 0");
  CHECK(config_error(R"({"data": {"columns": ["label", "histroy"]}})") ==
        "c.json: /data/columns: element 1: unknown value \"histroy\"; did you mean \"history\"? "
        "(allowed: label, user, item, history, time, ignore)");
  CHECK(
      config_error(R"({"train": {"device": "gpu"}})") ==
      "c.json: /train/device: expected auto, cpu, cuda or cuda:N (N from 0 to 1023), got \"gpu\"");
  CHECK(config_error(R"({"model": 5})") ==
        "c.json: /model: expected an object with keys embedding, encoder, attention, head, got "
        "the number 5");
  CHECK(config_error("[1, 2]") == "c.json: expected a JSON object at the top level, got an array");
}

TEST_CASE("all problems are reported at once", "[config]") {
  const auto msg = config_error(R"({"train": {"lr": -1, "epochs": "3"}})");
  CHECK_THAT(msg, Contains("/train/lr: out of range"));
  CHECK_THAT(msg, Contains("/train/epochs: expected an integer"));
}

TEST_CASE("invalid JSON reports line and column - comments are allowed", "[config]") {
  CHECK(config_error("{\n  \"model\": {\n    \"x\": 1,\n  }\n}") ==
        "c.json:4:3: invalid JSON: syntax error while parsing object key - unexpected '}'; "
        "expected string literal");
  CHECK(config_error("// a comment\n{\"train\": {\"epochs\": 2 /* two */}}") == "no error");
  CHECK(config_error(R"({"train": {"lr": 0.1, "lr": 0.2}})") ==
        "c.json: duplicate key \"lr\" (JSON objects must not repeat a key)");
}

TEST_CASE("unreadable config file is a ConfigError naming the path", "[config]") {
  try {
    load_config("/nonexistent/dir/c.json");
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Contains("/nonexistent/dir/c.json: cannot open for reading"));
    CHECK(e.exit_code() == ExitCode::bad_input);
  }
}

TEST_CASE("cross-field rules are checked before data is read", "[config]") {
  CHECK(config_error(R"({"data": {"columns": ["label", "user", "history"]}})") ==
        "config: /model/attention/query: \"target\" attention needs a candidate item, but "
        "/data/columns has no \"item\" column ([\"label\",\"user\",\"history\"]); add one or use "
        "\"self\"");
  CHECK(config_error(R"({"data": {"columns": ["label", "item", "history"]},
                         "model": {"embedding": {"user": true}}})") ==
        "config: /model/embedding/user: true needs a \"user\" column, but /data/columns is "
        "[\"label\",\"item\",\"history\"]");
  CHECK(config_error(R"({"model": {"attention": {"type": "multi_head", "heads": 3}}})") ==
        "config: /model/attention/heads: 3 heads must divide the encoder output size 64 (hidden "
        "64)");
  CHECK(config_error(R"({"model": {"encoder": {"dropout": 0.2}}})") ==
        "config: /model/encoder/dropout: 0.2 applies between stacked layers, but "
        "/model/encoder/layers is 1; set layers >= 2 or dropout to 0");
  CHECK(config_error(R"({"train": {"early_stopping": {"patience": 2}}})") ==
        "config: /train/early_stopping/patience: early stopping needs validation data, but "
        "/data/valid is empty");
  CHECK(config_error(R"({"train": {"early_stopping": {"metric": "ndcg@10"}}})") ==
        "config: /train/early_stopping/metric: \"ndcg@10\" ranks the validation positives, but "
        "/data/valid is empty");
  CHECK(config_error(R"({"data": {"columns": ["label", "item"]}})") ==
        "config: /data/columns: needs exactly one \"history\" column, got [\"label\",\"item\"]");
  CHECK(config_error(R"({"model": {"head": {"type": "dot"}, "encoder": {"hidden": 32}}})") ==
        "config: /model/head/type: \"dot\" needs the context as large as an item "
        "representation (64), but the encoder outputs 32; use encoder type \"transformer\" or "
        "\"none\", or set /model/encoder/hidden to 64");
  CHECK(config_error(R"({"model": {"embedding": {"dim": 30},
                                    "encoder": {"type": "transformer", "heads": 4}}})") ==
        "config: /model/encoder/heads: 4 heads must divide the transformer's size 30 (the item "
        "representation: embedding dim)");
  CHECK(config_error(R"({"model": {"encoder": {"type": "transformer", "bidirectional": true}}})")
            .find("true has no effect with encoder type \"transformer\"") != std::string::npos);
  // A transformer's dropout needs no stacked layers.
  CHECK(config_error(R"({"model": {"encoder": {"type": "transformer", "dropout": 0.2}}})") ==
        "no error");
  // Sequence-only data with a learned query is valid.
  CHECK(config_error(R"({"data": {"columns": ["label", "history"]},
                         "model": {"attention": {"query": "self"}}})") == "no error");
}

TEST_CASE("set overrides: precedence defaults < file < --set", "[config]") {
  TempDir dir;
  const auto path = write_text(dir.file("c.json"),
                               R"({"model": {"encoder": {"hidden": 32}}, "train": {"lr": 0.01}})");
  const Config from_file = load_config(path);
  CHECK(from_file.model.encoder.hidden == 32);
  CHECK(from_file.model.embedding.dim == 64);  // default kept
  const Config overridden =
      load_config(path, {"model.encoder.hidden=128", "train.device=cpu", "model.head.hidden=[16]",
                         "train.device=\"cuda:1\""});
  CHECK(overridden.model.encoder.hidden == 128);
  CHECK(overridden.train.lr == Approx(0.01));
  CHECK(overridden.train.device == "cuda:1");  // the last --set wins
  CHECK(overridden.model.head.hidden == std::vector<std::int64_t>{16});

  CHECK(config_error("{}", {"model.encoder.hiden=3"}) ==
        "--set: /model/encoder/hiden: unknown key; did you mean \"hidden\"?");
  CHECK(config_error("{}", {"model.encoder.hidden=abc"}) ==
        "--set: /model/encoder/hidden: expected an integer, got the string \"abc\"");
  CHECK(config_error("{}", {"model.encoder"}) ==
        "--set model.encoder: expected KEY=VALUE, e.g. model.encoder.hidden=128");
  CHECK(config_error("{}", {"model.encoder=3"}) ==
        "--set: /model/encoder: is a section; set one of its keys: type, hidden, layers, "
        "bidirectional, dropout, heads, ff_size, activation, norm, attention_dropout, causal, "
        "positional, scale_input");
}

TEST_CASE("dumped config re-parses to the same config", "[config]") {
  Config c = default_config();
  apply_overrides(c,
                  {"model.attention.type=multi_head", "train.epochs=7",
                   "data.columns=[\"label\",\"item\",\"history\"]", "model.embedding.user=false"});
  const auto dumped = config_to_json(c);
  const Config back = config_from_json(nlohmann::json::parse(dumped.dump()), "dump");
  CHECK(config_to_json(back) == dumped);
  CHECK(back.model.attention.type == "multi_head");
  CHECK(back.train.epochs == 7);
  // Every field appears in the dump.
  for (const auto& f : config_fields()) {
    CHECK(dumped.contains(nlohmann::json::json_pointer(f.pointer())));
  }
}

TEST_CASE("docs/config.md is generated from the table and up to date", "[config]") {
  const auto committed = attnrec::test::read_text(attnrec::test::source_path("docs/config.md"));
  CHECK(committed ==
        config_reference_markdown());  // regenerate: attnrec config --doc > docs/config.md
}

TEST_CASE("every shipped config validates", "[config]") {
  int count = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(attnrec::test::source_path("configs"))) {
    if (entry.path().extension() != ".json") continue;
    INFO(entry.path().string());
    CHECK_NOTHROW(load_config(entry.path().string()));
    ++count;
  }
  CHECK(count >= 1);
}

TEST_CASE("the option table is the only list: resumable names and choices exist", "[config]") {
  // Resumability is a property of the declaration; the list follows from the table.
  const auto resumable = resumable_fields();
  const std::vector<std::string> expected = {"data.valid",
                                             "data.valid_candidates",
                                             "data.test",
                                             "data.prefetch_batches",
                                             "train.epochs",
                                             "train.device",
                                             "train.precision",
                                             "train.deterministic",
                                             "train.threads",
                                             "train.validate_every_steps",
                                             "train.log_every_steps",
                                             "train.tensorboard",
                                             "train.distributed.init",
                                             "train.distributed.timeout_s",
                                             "train.distributed.backend",
                                             "train.on_nonfinite",
                                             "train.early_stopping.patience",
                                             "eval.batch_size",
                                             "eval.threshold",
                                             "checkpoint.every_steps",
                                             "checkpoint.every_epoch",
                                             "checkpoint.keep_last"};
  CHECK(resumable == expected);
  for (const auto& name : resumable) {
    INFO(name);
    REQUIRE(find_field(name) != nullptr);
    CHECK(find_field(name)->resumable);
  }
  // Every choice option: its default is one of its choices, each choice is accepted by --set
  // and written back by name, and nothing else is accepted.
  int choice_options = 0;
  for (const auto& f : config_fields()) {
    if (f.choice_list == nullptr) continue;
    ++choice_options;
    INFO(f.name);
    REQUIRE_FALSE(f.choice_list->empty());
    CHECK(f.choices == choice_names(*f.choice_list));
    CHECK(std::count(f.choices.begin(), f.choices.end(), f.default_value.get<std::string>()) == 1);
    for (const auto& choice : f.choices) {
      Config c = default_config();
      apply_overrides(c, {f.name + "=" + choice});
      CHECK(field_value(f, c) == choice);
    }
    Config c = default_config();
    CHECK_THROWS_AS(apply_overrides(c, {f.name + "=no_such_choice"}), ConfigError);
  }
  CHECK(choice_options == 27);  // 22 for runs, 5 for preprocess
  CHECK(name_of(OptimizerKind::lazy_adam) == "lazy_adam");
  CHECK(parse_choice<HeaderMode>("auto") == HeaderMode::automatic);
  CHECK_FALSE(parse_choice<HeaderMode>("automatic"));
  CHECK(parse_choice<DistBackend>("auto") == DistBackend::automatic);
}

TEST_CASE("config: the loss, drawn negatives and regularisers are checked together", "[config]") {
  CHECK_THAT(config_error(R"({"train": {"loss": "bpr"}})"),
             Contains("/train/loss: \"bpr\" compares a positive with drawn negatives") &&
                 Contains("per_positive is 0"));
  CHECK_THAT(config_error(R"({"train": {"loss": "sampled_softmax",
                                        "negatives": {"per_positive": 4},
                                        "label_smoothing": 0.1}})"),
             Contains("/train/label_smoothing: applies to the \"bce\" loss only"));
  CHECK_THAT(config_error(R"({"data": {"columns": ["label", "history"]},
                              "model": {"attention": {"query": "self"}, "head": {"item_bias": true}},
                              "train": {"negatives": {"per_positive": 2}}})"),
             Contains("/model/head/item_bias: true needs a candidate item") &&
                 Contains("/train/negatives/per_positive: drawn negatives replace"));
  CHECK_THAT(config_error(R"({"train": {"negatives": {"per_positive": 1, "exclude": "all"}}})"),
             Contains("/train/negatives/exclude: \"all\""));
  CHECK_THAT(config_error(R"({"train": {"negatives": {"sampling": "zipf"}}})"),
             Contains("/train/negatives/sampling"));
  // A shared pool and the full softmax: one kind of negatives, a factorised model.
  CHECK_THAT(config_error(R"({"train": {"loss": "sampled_softmax",
                                        "negatives": {"per_positive": 4, "shared_pool": 256}}})"),
             Contains("/train/negatives/shared_pool: a shared pool replaces the per-sample") &&
                 Contains("needs a factorised model"));
  CHECK_THAT(config_error(R"({"train": {"loss": "softmax", "negatives": {"per_positive": 2}}})"),
             Contains("/train/loss: \"softmax\" scores every item and draws no negatives") &&
                 Contains("/train/loss: needs a factorised model"));
  const std::string factorised = R"("model": {"attention": {"type": "last", "query": "self"},
                                              "head": {"type": "dot"},
                                              "encoder": {"type": "transformer"}})";
  CHECK(config_error("{" + factorised + R"(, "train": {"loss": "softmax", "next_item": true}})") ==
        "no error");
  CHECK(config_error("{" + factorised + R"(, "train": {"loss": "gbce", "gbce_t": 0.5,
                                      "negatives": {"shared_pool": 128}}})") == "no error");
  CHECK_THAT(config_error("{" + factorised + R"(, "train": {"next_item": true}})"),
             Contains("/train/next_item: every position is scored against drawn negatives or "
                      "the whole catalogue"));
  CHECK_THAT(config_error(R"({"train": {"gbce_t": 1.5}})"), Contains("/train/gbce_t"));
  CHECK_THAT(config_error(R"({"train": {"early_stopping": {"protocol": "everything"}}})"),
             Contains("/train/early_stopping/protocol"));
  CHECK_THAT(config_error(R"({"data": {"columns": ["label", "item", "history"]},
                              "train": {"early_stopping": {"metric": "gauc",
                                                           "protocol": "full"}}})"),
             Contains("/train/early_stopping/protocol: \"full\" ranks the validation positives "
                      "for hr@10, ndcg@10 or mrr, but /train/early_stopping/metric is \"gauc\"") &&
                 Contains("/data/columns has no \"user\" column; add it, or use \"sampled\""));
  // lazy_adam now takes weight decay (lazily); a valid recipe loads.
  CHECK(config_error(R"({"train": {"optimizer": "lazy_adam", "weight_decay": 0.01, "loss": "bpr",
                                   "negatives": {"per_positive": 4, "sampling": "popularity"}},
                         "model": {"embedding": {"dropout": 0.2}, "head": {"item_bias": true}}})") ==
        "no error");
}
