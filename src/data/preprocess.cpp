#include "attnrec/data/preprocess.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "attnrec/config/fields.hpp"
#include "attnrec/data/interner.hpp"
#include "attnrec/data/leakage.hpp"
#include "attnrec/data/log_formats.hpp"
#include "attnrec/data/preprocess_stages.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/hash.hpp"
#include "attnrec/util/rng.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {

PreprocessOptions::PreprocessOptions() : PreprocessConfig(default_config().preprocess) {}

const std::vector<std::string>& preprocess_output_files() {
  static const std::vector<std::string> files = {"train.tsv",
                                                 "valid.tsv",
                                                 "test.tsv",
                                                 "train_positives.tsv",
                                                 "train_sequences.tsv",
                                                 "test_candidates.tsv",
                                                 "valid_candidates.tsv",
                                                 "interactions.tsv",
                                                 "stats.json",
                                                 "protocol.json",
                                                 "item_categories.tsv",
                                                 "leakage_report.json"};
  return files;
}

bool holds_unchanged_preprocess_output(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root(dir);
  if (!fs::is_regular_file(root / "protocol.json", ec)) return false;
  try {
    const auto protocol = nlohmann::json::parse(read_file((root / "protocol.json").string()));
    if (!protocol.at("input").is_object()) return false;  // generate's protocol has no input
    const auto& hashes = protocol.at("outputs_sha256");
    for (const auto& name : preprocess_output_files()) {
      const auto file = root / name;
      if (!fs::exists(file, ec)) continue;
      if (hashes.contains(name)) {
        if (sha256_file(file.string()) != hashes.at(name).get<std::string>()) return false;
      } else if (name != "stats.json" && name != "protocol.json" && name != "leakage_report.json") {
        return false;  // a data file preprocess did not record
      }
    }
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

void check_preprocess_outputs(const std::string& dir, bool overwrite) {
  namespace fs = std::filesystem;
  if (overwrite || holds_unchanged_preprocess_output(dir)) return;
  std::error_code ec;
  for (const auto& name : preprocess_output_files()) {
    const auto file = fs::path(dir) / name;
    if (!fs::exists(file, ec)) continue;
    throw UsageError(file.string() +
                     ": exists and is not the unchanged output of an earlier attnrec "
                     "preprocess; choose another --out, or pass --overwrite to replace it; "
                     "nothing was written");
  }
}

void PreprocessOptions::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) throw UsageError("preprocess: " + message);
  };
  require(!input.empty(), "--input is required");
  require(!out_dir.empty(), "--out is required");
  // Each option's own type, range and choices: the option table's checks (the struct may have
  // been filled by code rather than read through the table).
  Config settings = default_config();
  settings.preprocess = *this;
  config_from_json(config_to_json(settings), "preprocess options");
  // What involves several options.
  require(min_history <= max_history, "--min-history must be in [0, --max-history]");
  require(valid_fraction + test_fraction < 1,
          "--valid-fraction and --test-fraction must sum to less than 1");
  require(format != LogFormat::csv || !columns.empty(),
          "--format csv needs --columns, e.g. --columns user=0,item=1,time=3");
  require(format == LogFormat::csv || format == LogFormat::automatic || columns.empty(),
          "--columns applies to --format csv only");
}

nlohmann::json PreprocessOptions::to_json() const {
  return {{"input", input},
          {"format", name_of(format)},
          {"delimiter", delimiter},
          {"csv_columns", columns},
          {"csv_header", header},
          {"min_rating", min_rating ? nlohmann::json(*min_rating) : nlohmann::json()},
          {"behaviors", behaviors},
          {"dedup", name_of(dedup)},
          {"min_user_interactions", min_user_interactions},
          {"min_item_interactions", min_item_interactions},
          {"max_history", max_history},
          {"min_history", min_history},
          {"split", name_of(split)},
          {"valid_fraction", valid_fraction},
          {"test_fraction", test_fraction},
          {"negatives", negatives},
          {"sampling", name_of(sampling)},
          {"ranking_negatives", ranking_negatives},
          {"ranking_sampling", name_of(ranking_sampling)},
          {"seed", seed}};
}

namespace {

/// Characters that would break the sample format (or the reader's separator checks).
bool has_bad_id_char(std::string_view id) {
  return id.find_first_of("\t ,;|") != std::string_view::npos;
}

double share(std::int64_t part, std::int64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

/// Output file that also hashes what it writes (for protocol.json).
struct HashedOutput {
  HashedOutput(const std::string& path, const std::string& what) : out(path, what) {}
  void write(std::string_view s) {
    out.write(s);
    hash.update(s);
  }
  AtomicFileWriter out;
  Sha256 hash;
};

const char* const kSplitNames[] = {"train", "valid", "test"};

/// What stage 1 (reading the log) produced.
struct LogData {
  StringInterner users, items, categories;
  std::vector<std::int32_t> item_category;  // per item, -1 unknown
  std::vector<Event> events;
  std::vector<std::int64_t> sequence_clock;  // positions as times: per-user event counter
  std::int64_t lines = 0, blank = 0, header_lines = 0, below_rating = 0, other_behavior = 0;
  std::int64_t bytes = 0;
  bool time_from_order = false;
  std::string sha256;
};

/// Filters one record and keeps it as an event; returns "" or what is wrong with it.
std::string add_event(const PreprocessOptions& o, const LogParser& parser, const LogRecord& r,
                      std::int64_t line_number, LogData& d) {
  if (r.user.empty()) return "empty user id";
  if (r.item.empty()) return "empty item id";
  for (auto id : {r.user, r.item}) {
    if (has_bad_id_char(id)) {
      return fmt::format(
          "id \"{}\" contains a tab, space, ',', ';' or '|', which the sample format cannot "
          "hold",
          id);
    }
  }
  if (o.min_rating && r.has_rating && r.rating < *o.min_rating) {
    ++d.below_rating;
    return "";
  }
  if (!o.behaviors.empty() &&
      std::find(o.behaviors.begin(), o.behaviors.end(), r.behavior) == o.behaviors.end()) {
    ++d.other_behavior;
    return "";
  }
  const std::int32_t u = d.users.intern(r.user);
  const std::int32_t i = d.items.intern(r.item);
  if (static_cast<std::size_t>(i) == d.item_category.size()) d.item_category.push_back(-1);
  if (!r.category.empty()) {
    if (has_bad_id_char(r.category)) {
      return fmt::format("category \"{}\" contains a tab, space, ',', ';' or '|'", r.category);
    }
    // An item keeps the first category it is seen with.
    if (d.item_category[i] < 0) d.item_category[i] = d.categories.intern(r.category);
  }
  std::int64_t time = r.time;
  if (!r.has_time) {
    if (parser.times_are_positions()) {
      if (static_cast<std::size_t>(u) >= d.sequence_clock.size()) {
        d.sequence_clock.resize(u + 1, 0);
      }
      time = d.sequence_clock[u]++;
    } else {
      time = line_number;
      d.time_from_order = true;
    }
  }
  d.events.push_back(Event{u, i, time, static_cast<std::int64_t>(d.events.size()), -1, 0});
  return "";
}

/// Stage 1: one streaming pass over the log.
LogData read_log(const PreprocessOptions& o, LogParser& parser) {
  LogData d;
  LineReader reader(o.input);
  std::string_view line;
  std::vector<LogRecord> records;
  bool header_due = parser.reads_header();  // the first line that is not blank
  while (reader.next(line)) {
    ++d.lines;
    const std::int64_t n = reader.line_number();
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      ++d.blank;
      continue;
    }
    if (header_due) {
      header_due = false;
      parser.header(line);
      ++d.header_lines;
      continue;
    }
    auto problem = parser.parse(line, records);
    for (std::size_t k = 0; problem.empty() && k < records.size(); ++k) {
      problem = add_event(o, parser, records[k], n, d);
    }
    if (!problem.empty()) throw DataError(fmt::format("{}:{}: {}", o.input, n, problem));
  }
  d.sha256 = reader.sha256();
  d.bytes = reader.bytes();
  if (d.events.empty()) {
    throw DataError(fmt::format(
        "{}: no interactions kept ({} lines, {} below --min-rating, {} with other behaviours)",
        o.input, d.lines, d.below_rating, d.other_behavior));
  }
  return d;
}

struct SplitStats {
  std::int64_t samples = 0, positives = 0, history_items = 0, users = 0;
};

/// What stage 7 (writing) produced.
struct Written {
  SplitStats splits[3];
  nlohmann::json outputs = nlohmann::json::object();  ///< file -> SHA-256
  bool candidates = false;
  std::int64_t categorized = 0;
  std::int64_t sequence_rows = 0;  ///< rows of train_sequences.tsv
};

/// The sample files, the candidates file and the interaction log, user by user.
class SampleWriter {
 public:
  SampleWriter(const PreprocessOptions& o, const std::filesystem::path& dir) : o_(o) {
    for (const char* name : kSplitNames) {
      outs_.push_back(std::make_unique<HashedOutput>((dir / (std::string(name) + ".tsv")).string(),
                                                     "sample file"));
      outs_.back()->write("label\tuser\titem\thistory\ttime\n");
    }
    if (o.ranking_negatives > 0) {
      candidates_ =
          std::make_unique<HashedOutput>((dir / "test_candidates.tsv").string(), "candidates file");
      candidates_->write("user\titem\thistory\ttime\tnegatives\n");
      valid_candidates_ = std::make_unique<HashedOutput>((dir / "valid_candidates.tsv").string(),
                                                         "candidates file");
      valid_candidates_->write("user\titem\thistory\ttime\tnegatives\n");
    }
    // The training positives alone: what `train.negatives` (negatives drawn by the trainer)
    // reads; the fixed negatives of train.tsv would otherwise be memorised.
    positives_ =
        std::make_unique<HashedOutput>((dir / "train_positives.tsv").string(), "sample file");
    positives_->write("label\tuser\titem\thistory\ttime\n");
    // Each user's training events cut into windows of max_history + 1: what next-item training
    // (train.next_item) reads, every position of a window predicting the next event.
    sequences_ =
        std::make_unique<HashedOutput>((dir / "train_sequences.tsv").string(), "sample file");
    sequences_->write("label\tuser\titem\thistory\ttime\n");
    log_ = std::make_unique<HashedOutput>((dir / "interactions.tsv").string(), "interaction log");
    log_->write("user\titem\ttime\n");
  }

  /// One user's events [b, e): every interaction in the log, a sample group per target.
  /// `valid_sampler` draws the validation candidates: a stream of its own, so that adding them
  /// left every other file as it was.
  void write_user(const LogData& d, std::size_t b, std::size_t e, NegativeSampler& sampler,
                  NegativeSampler& valid_sampler);
  /// Commits the files; the split sizes must all be non-zero.
  Written finish(std::size_t users);

 private:
  const PreprocessOptions& o_;
  std::vector<std::unique_ptr<HashedOutput>> outs_;
  /// One candidates row: the positive, its history and `negatives_`.
  void write_candidates(HashedOutput& out, const StringInterner& items, const std::string& user_id,
                        const std::string& item, std::int64_t time);

  /// The user's training events [b, e) as windows, newest first (see train_sequences.tsv).
  void write_sequences(const LogData& d, std::size_t b, std::size_t e, const std::string& user_id);

  std::unique_ptr<HashedOutput> candidates_, valid_candidates_, positives_, sequences_, log_;
  Written written_;
  std::string history_, buffer_;
  std::vector<std::int32_t> interacted_, negatives_;
};

void SampleWriter::write_candidates(HashedOutput& out, const StringInterner& items,
                                    const std::string& user_id, const std::string& item,
                                    std::int64_t time) {
  buffer_.clear();
  fmt::format_to(std::back_inserter(buffer_), "{}\t{}\t{}\t{}\t", user_id, item, history_, time);
  for (std::size_t n = 0; n < negatives_.size(); ++n) {
    if (n > 0) buffer_ += ',';
    buffer_ += items.token(negatives_[n]);
  }
  buffer_ += '\n';
  out.write(buffer_);
}

void SampleWriter::write_sequences(const LogData& d, std::size_t b, std::size_t e,
                                   const std::string& user_id) {
  // Training events come first in a timeline: stop at the first validation or test target.
  std::size_t n = b;
  while (n < e && d.events[n].split <= 0) ++n;
  const auto h = static_cast<std::size_t>(o_.max_history);
  // Windows [from, end) end at the newest event and step back by max_history: every training
  // event but the first is the target of exactly one position.
  for (std::size_t end = n; end >= b + 2;) {
    const std::size_t from = end - b > h + 1 ? end - 1 - h : b;
    buffer_.clear();
    fmt::format_to(std::back_inserter(buffer_), "1\t{}\t{}\t", user_id,
                   d.items.token(d.events[end - 1].item));
    for (std::size_t k = from; k + 1 < end; ++k) {
      if (k > from) buffer_ += ',';
      buffer_ += d.items.token(d.events[k].item);
    }
    fmt::format_to(std::back_inserter(buffer_), "\t{}\n", d.events[end - 1].time);
    sequences_->write(buffer_);
    ++written_.sequence_rows;
    if (from == b) break;
    end = from + 1;  // the window's first event is the next window's target
  }
}

void SampleWriter::write_user(const LogData& d, std::size_t b, std::size_t e,
                              NegativeSampler& sampler, NegativeSampler& valid_sampler) {
  const auto& events = d.events;
  const std::int32_t u = events[b].user;
  const std::string user_id(d.users.token(u));
  interacted_.clear();
  for (std::size_t k = b; k < e; ++k) interacted_.push_back(events[k].item);
  std::sort(interacted_.begin(), interacted_.end());
  interacted_.erase(std::unique(interacted_.begin(), interacted_.end()), interacted_.end());
  sampler.set_user(interacted_);
  valid_sampler.set_user(interacted_);
  bool user_in[3] = {false, false, false};
  for (std::size_t k = b; k < e; ++k) {
    const Event& ev = events[k];
    buffer_.clear();
    fmt::format_to(std::back_inserter(buffer_), "{}\t{}\t{}\n", user_id, d.items.token(ev.item),
                   ev.time);
    log_->write(buffer_);
    if (ev.split < 0) continue;
    const auto max_history = static_cast<std::size_t>(o_.max_history);
    const std::size_t from = k - b > max_history ? k - max_history : b;
    history_.clear();
    for (std::size_t h = from; h < k; ++h) {
      if (h > from) history_ += ',';
      history_ += d.items.token(events[h].item);
    }
    sampler.sample(o_.negatives, o_.sampling == PreprocessSampling::popularity, user_id,
                   negatives_);
    buffer_.clear();
    fmt::format_to(std::back_inserter(buffer_), "1\t{}\t{}\t{}\t{}\n", user_id,
                   d.items.token(ev.item), history_, ev.time);
    if (ev.split == 0) positives_->write(buffer_);
    for (const auto n : negatives_) {
      fmt::format_to(std::back_inserter(buffer_), "0\t{}\t{}\t{}\t{}\n", user_id, d.items.token(n),
                     history_, ev.time);
    }
    outs_[ev.split]->write(buffer_);
    auto& st = written_.splits[ev.split];
    st.samples += 1 + o_.negatives;
    st.positives += 1;
    st.history_items += static_cast<std::int64_t>(k - from) * (1 + o_.negatives);
    user_in[ev.split] = true;
    if (ev.split == 0 || !candidates_) continue;
    const bool popularity = o_.ranking_sampling == PreprocessSampling::popularity;
    const std::string item(d.items.token(ev.item));
    if (ev.split == 2) {
      sampler.sample(o_.ranking_negatives, popularity, user_id, negatives_);
      write_candidates(*candidates_, d.items, user_id, item, ev.time);
    } else {
      valid_sampler.sample(o_.ranking_negatives, popularity, user_id, negatives_);
      write_candidates(*valid_candidates_, d.items, user_id, item, ev.time);
    }
  }
  for (int s = 0; s < 3; ++s) written_.splits[s].users += user_in[s];
  write_sequences(d, b, e, user_id);
}

Written SampleWriter::finish(std::size_t users) {
  for (int s = 0; s < 3; ++s) {
    if (written_.splits[s].samples == 0) {
      throw DataError(fmt::format(
          "preprocess: the {} split is empty after filtering ({} users kept); the log is too "
          "small for split {} (or --min-history {} too large)",
          kSplitNames[s], users, name_of(o_.split), o_.min_history));
    }
  }
  for (int s = 0; s < 3; ++s) {
    outs_[s]->out.commit();
    written_.outputs[std::string(kSplitNames[s]) + ".tsv"] = outs_[s]->hash.hex();
  }
  if (candidates_) {
    candidates_->out.commit();
    written_.outputs["test_candidates.tsv"] = candidates_->hash.hex();
    valid_candidates_->out.commit();
    written_.outputs["valid_candidates.tsv"] = valid_candidates_->hash.hex();
    written_.candidates = true;
  }
  positives_->out.commit();
  written_.outputs["train_positives.tsv"] = positives_->hash.hex();
  sequences_->out.commit();
  written_.outputs["train_sequences.tsv"] = sequences_->hash.hex();
  log_->out.commit();
  written_.outputs["interactions.tsv"] = log_->hash.hex();
  return written_;
}

/// item_categories.tsv for the kept items that have a category.
void write_categories(const LogData& d, const std::vector<std::int32_t>& kept_items,
                      const std::filesystem::path& dir, Written& w) {
  if (d.categories.size() == 0) return;
  std::string text = "item\tcategory\n";
  for (const auto i : kept_items) {
    if (d.item_category[i] < 0) continue;
    ++w.categorized;
    text += fmt::format("{}\t{}\n", d.items.token(i), d.categories.token(d.item_category[i]));
  }
  write_file_atomic((dir / "item_categories.tsv").string(), text);
  w.outputs["item_categories.tsv"] = sha256_hex(text);
}

/// What the stages between reading and writing counted.
struct StageCounts {
  std::int64_t read_interactions = 0, duplicates = 0, short_history = 0;
  KcoreResult kcore;
  nlohmann::json split;
  std::size_t users = 0, items = 0;
};

nlohmann::json make_stats(const PreprocessOptions& o, LogFormat format, const LogData& d,
                          const StageCounts& c, const Written& w) {
  nlohmann::json stats;
  stats["input"] = {{"path", o.input},
                    {"format", name_of(format)},
                    {"lines", d.lines},
                    {"bytes", d.bytes},
                    {"sha256", d.sha256}};
  stats["read"] = {
      {"interactions", c.read_interactions}, {"users", d.users.size()}, {"items", d.items.size()}};
  stats["dropped"] = {{"blank_lines", d.blank},
                      {"header_lines", d.header_lines},
                      {"below_min_rating", d.below_rating},
                      {"other_behaviors", d.other_behavior},
                      {"duplicates", c.duplicates},
                      {"kcore_interactions", c.kcore.dropped},
                      {"kcore_rounds", c.kcore.rounds},
                      {"targets_with_short_history", c.short_history}};
  const auto events = static_cast<std::int64_t>(d.events.size());
  stats["kept"] = {{"users", c.users},
                   {"items", c.items},
                   {"interactions", events},
                   {"categories", d.categories.size()},
                   {"items_with_category", w.categorized},
                   {"density", share(events, static_cast<std::int64_t>(c.users) *
                                                 static_cast<std::int64_t>(c.items))}};
  for (int s = 0; s < 3; ++s) {
    const auto& st = w.splits[s];
    stats["splits"][kSplitNames[s]] = {
        {"samples", st.samples},
        {"positives", st.positives},
        {"positive_rate", share(st.positives, st.samples)},
        {"users", st.users},
        {"mean_history_length", share(st.history_items, st.samples)}};
  }
  stats["train_sequences"] = {{"rows", w.sequence_rows}, {"window", o.max_history + 1}};
  if (w.candidates) {
    stats["ranking_candidates"] = {{"rows", w.splits[2].positives},
                                   {"valid_rows", w.splits[1].positives},
                                   {"negatives_per_row", o.ranking_negatives}};
  }
  return stats;
}

nlohmann::json make_protocol(const PreprocessOptions& o, LogFormat format, const LogData& d,
                             const StageCounts& c, const Written& w, const nlohmann::json& input) {
  nlohmann::json protocol;
  protocol["attnrec_protocol_version"] = 1;
  protocol["format"] = name_of(format);
  protocol["options"] = o.to_json();
  protocol["input"] = input;
  protocol["time"] = d.time_from_order               ? "file order (the log has no timestamps)"
                     : format == LogFormat::sequence ? "position in the user's sequence"
                                                     : "timestamp column";
  protocol["ties"] = "events with equal timestamps keep their order in the input file";
  protocol["split"] = c.split;
  protocol["negatives"] = {{"per_positive", o.negatives},
                           {"sampling", o.sampling},
                           {"excluded", "every item the user interacted with, in any split"}};
  protocol["ranking_candidates"] =
      w.candidates ? nlohmann::json{{"file", "test_candidates.tsv"},
                                    {"valid_file", "valid_candidates.tsv"},
                                    {"negatives", o.ranking_negatives},
                                    {"sampling", o.ranking_sampling},
                                    {"excluded", "every item the user interacted with"}}
                   : nlohmann::json();
  protocol["outputs_sha256"] = w.outputs;
  return protocol;
}

/// The parser of the run's format, after checking that the filters fit it.
std::unique_ptr<LogParser> checked_parser(const PreprocessOptions& o, LogFormat format) {
  auto parser = make_log_parser(format, o);
  if (o.min_rating && !parser->has_ratings()) {
    throw UsageError("preprocess: --min-rating needs ratings, but format " + name_of(format) +
                     " has none");
  }
  if (!o.behaviors.empty() && !parser->has_behaviors()) {
    throw UsageError(
        "preprocess: --behaviors needs a behavior column (taobao, or csv with behavior=COL), "
        "but format " +
        name_of(format) + " has none");
  }
  return parser;
}

/// Stages 2-5: deduplicate, k-core, timelines, split. Returns the counts; `kept_items` and
/// `timelines` are filled.
StageCounts filter_and_split(const PreprocessOptions& o, LogData& d,
                             std::vector<std::int32_t>& kept_items, Timelines& timelines) {
  StageCounts c;
  c.read_interactions = static_cast<std::int64_t>(d.events.size());
  c.duplicates = deduplicate(d.events, o.dedup);
  c.kcore = kcore_filter(d.events, d.users.size(), d.items.size(), o.min_user_interactions,
                         o.min_item_interactions);
  if (d.events.empty()) {
    throw DataError(fmt::format(
        "{}: k-core filtering (users >= {}, items >= {}) removed every interaction; lower "
        "--min-user-interactions or --min-item-interactions",
        o.input, o.min_user_interactions, o.min_item_interactions));
  }
  timelines = sort_timelines(d.events);
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(d.items.size()); ++i) {
    if (c.kcore.item_count[i] > 0) kept_items.push_back(i);
  }
  c.split = o.split == SplitProtocol::leave_last_out
                ? split_leave_last_out(d.events, timelines)
                : split_temporal(d.events, o.valid_fraction, o.test_fraction);
  c.short_history = drop_short_histories(d.events, timelines, o.min_history);
  c.users = timelines.size();
  c.items = kept_items.size();
  return c;
}

}  // namespace

nlohmann::json preprocess(const PreprocessOptions& o) {
  o.validate();
  namespace fs = std::filesystem;
  const LogFormat format = o.format == LogFormat::automatic ? detect_format(o.input) : o.format;
  auto parser = checked_parser(o, format);
  spdlog::info("preprocess: reading {} as {}", o.input, name_of(format));
  LogData d = read_log(o, *parser);
  spdlog::info("preprocess: {} lines, {} interactions, {} users, {} items", d.lines,
               d.events.size(), d.users.size(), d.items.size());
  std::vector<std::int32_t> kept_items;
  Timelines timelines;
  const StageCounts counts = filter_and_split(o, d, kept_items, timelines);

  std::vector<std::int64_t> train_count(static_cast<std::size_t>(d.items.size()), 0);
  for (const auto& e : d.events) {
    if (e.split == 0) ++train_count[e.item];
  }
  const std::vector<std::int64_t> sampler_counts = train_count;
  NegativeSampler sampler(kept_items, std::move(train_count), o.seed);
  if (!sampler.has_popularity() && (o.sampling == PreprocessSampling::popularity ||
                                    o.ranking_sampling == PreprocessSampling::popularity)) {
    throw DataError(
        "preprocess: popularity sampling needs training interactions, and the training split is "
        "empty");
  }
  fs::create_directories(o.out_dir);
  const fs::path dir(o.out_dir);
  // The validation candidates draw from a stream of their own (see write_user).
  NegativeSampler valid_sampler(kept_items, sampler_counts, Rng::mix(o.seed, 0x76616c6964ULL));
  SampleWriter writer(o, dir);
  for (const auto& [b, e] : timelines) writer.write_user(d, b, e, sampler, valid_sampler);
  Written written = writer.finish(timelines.size());
  write_categories(d, kept_items, dir, written);

  nlohmann::json stats = make_stats(o, format, d, counts, written);
  const nlohmann::json protocol = make_protocol(o, format, d, counts, written, stats["input"]);
  write_file_atomic((dir / "stats.json").string(), stats.dump(2) + "\n");
  write_file_atomic((dir / "protocol.json").string(), protocol.dump(2) + "\n");

  // The checker re-reads the files it checks; the events are not needed any more.
  std::vector<Event>().swap(d.events);
  CheckDataOptions check;
  check.dir = o.out_dir;
  const auto report = check_data(check);
  write_file_atomic((dir / "leakage_report.json").string(), report.dump(2) + "\n");
  if (!report.at("ok").get<bool>()) {
    throw DataError("preprocess: the leakage check failed on its own output (a bug); see " +
                    (dir / "leakage_report.json").string());
  }
  stats["leakage_check"] = "passed";
  return stats;
}

}  // namespace attnrec
