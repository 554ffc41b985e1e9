// `attnrec recommend` through the real binary: lists per user with original ids, seen items left
// out, scores equal to `attnrec predict`'s, --all over the interaction log, jsonl, bad usage.

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "cli_data.hpp"
#include "support.hpp"

using namespace attnrec::test;
using Catch::Matchers::Contains;

namespace {

struct Line {
  std::string user, item;
  int rank = 0;
  double score = 0.0;
};

std::vector<Line> read_recs(const std::string& path) {
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);
  REQUIRE(line == "user\trank\titem\tscore");
  std::vector<Line> out;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    Line l;
    std::string rank, score;
    std::getline(fields, l.user, '\t');
    std::getline(fields, rank, '\t');
    std::getline(fields, l.item, '\t');
    std::getline(fields, score, '\t');
    l.rank = std::stoi(rank);
    l.score = std::stod(score);
    out.push_back(l);
  }
  return out;
}

/// Per user of a `label user item history ...` file: its items (histories and positives) and the
/// history of its last line.
struct Users {
  std::map<std::string, std::set<std::string>> seen;
  std::map<std::string, std::string> last_history;
};

Users read_users(const std::string& path) {
  std::istringstream in(read_text(path));
  std::string line;
  std::getline(in, line);  // header: label user item history time
  Users u;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string label, user, item, history;
    std::getline(fields, label, '\t');
    std::getline(fields, user, '\t');
    std::getline(fields, item, '\t');
    std::getline(fields, history, '\t');
    auto& s = u.seen[user];
    if (label == "1") s.insert(item);
    std::istringstream h(history);
    for (std::string id; std::getline(h, id, ',');) s.insert(id);
    u.last_history[user] = history;
  }
  return u;
}

}  // namespace

TEST_CASE("cli recommend: top-K per user with seen items left out", "[cli][recommend]") {
  TempDir dir;
  const auto data = prepared_log(dir);
  const auto train = run_cli_env(
      "OMP_WAIT_POLICY=PASSIVE",
      "--log-level warn train --config '" + source_path("configs/default.json") + "' --run-dir '" +
          dir.file("run") + "' --set data.train='" + data +
          "/train_positives.tsv' --set data.valid='" + data +
          "/valid.tsv' --set data.test= --set train.epochs=1 --set model.embedding.dim=8 " +
          "--set model.encoder.hidden=8 --set model.attention.hidden=8 --set train.threads=1 " +
          "--set train.device=cpu");
  INFO(train.err);
  REQUIRE(train.code == 0);
  const std::string base = "--log-level warn recommend --checkpoint '" + dir.file("run") + "' ";
  const auto r = run_cli(base + "--users '" + data + "/test.tsv' --k 5 --output '" +
                         dir.file("recs.tsv") + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto recs = read_recs(dir.file("recs.tsv"));
  const auto users = read_users(data + "/test.tsv");
  // Every user of the file, ranks 1..5 (the vocabulary has more than 5 unseen items for each),
  // scores non-increasing, no seen item, no reserved id.
  std::map<std::string, std::vector<Line>> by_user;
  for (const auto& l : recs) by_user[l.user].push_back(l);
  CHECK(by_user.size() == users.seen.size());
  for (const auto& [user, lines] : by_user) {
    INFO(user);
    REQUIRE(lines.size() == 5);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      CHECK(lines[i].rank == static_cast<int>(i + 1));
      CHECK(users.seen.at(user).count(lines[i].item) == 0);
      CHECK(lines[i].item != "<pad>");
      CHECK(lines[i].item != "<oov>");
      if (i > 0) CHECK(lines[i].score <= lines[i - 1].score);
    }
  }
  // Ids round-trip and scores are the model's: predict on (user, item, history) gives
  // sigmoid(score) for the first user's list.
  const auto& first = by_user.begin()->second;
  std::string rows = "label\tuser\titem\thistory\n";
  for (const auto& l : first) {
    rows += "1\t" + l.user + "\t" + l.item + "\t" + users.last_history.at(l.user) + "\n";
  }
  write_text(dir.file("pairs.tsv"), rows);
  const auto p =
      run_cli("--log-level warn predict --checkpoint '" + dir.file("run") + "' --data '" +
              dir.file("pairs.tsv") + "' --output '" + dir.file("pairs.out") + "'");
  INFO(p.err);
  REQUIRE(p.code == 0);
  std::istringstream pred(read_text(dir.file("pairs.out")));
  std::string line;
  std::getline(pred, line);
  for (const auto& l : first) {
    REQUIRE(std::getline(pred, line));
    const double prob = std::stod(line.substr(line.rfind('\t') + 1));
    CHECK(prob == Approx(1.0 / (1.0 + std::exp(-l.score))).margin(2e-6));
  }
  // --interactions adds the log's items to each user's seen items.
  REQUIRE(run_cli(base + "--users '" + data + "/test.tsv' --interactions '" + data +
                  "/interactions.tsv' --k 5 --output '" + dir.file("logged.tsv") + "'")
              .code == 0);
  std::map<std::string, std::set<std::string>> logged;
  {
    std::istringstream log(read_text(data + "/interactions.tsv"));
    std::getline(log, line);
    while (std::getline(log, line)) {
      const auto tab = line.find('\t');
      logged[line.substr(0, tab)].insert(line.substr(tab + 1, line.find('\t', tab + 1) - tab - 1));
    }
  }
  const auto with_log = read_recs(dir.file("logged.tsv"));
  CHECK(!with_log.empty());
  for (const auto& l : with_log) CHECK(logged[l.user].count(l.item) == 0);
  // --exclude none with K beyond the vocabulary: every item, each once.
  REQUIRE(run_cli(base + "--users '" + data + "/test.tsv' --k 100000 --exclude none --output '" +
                  dir.file("all.tsv") + "'")
              .code == 0);
  const auto everything = read_recs(dir.file("all.tsv"));
  std::map<std::string, std::set<std::string>> items_of;
  for (const auto& l : everything) items_of[l.user].insert(l.item);
  const std::string vocab = read_text(dir.file("run/items.vocab"));
  const auto vocab_items = static_cast<std::size_t>(std::count(vocab.begin(), vocab.end(), '\n') -
                                                    2);  // without <pad> and <oov>
  for (const auto& [user, set] : items_of) CHECK(set.size() == vocab_items);
  // --candidates: only each listed user's listed items, unseen, known to the model; the scores
  // are those of the whole-vocabulary run (the same pairs, another code path).
  {
    std::map<std::pair<std::string, std::string>, double> full;
    for (const auto& l : everything) full[{l.user, l.item}] = l.score;
    auto it = items_of.begin();
    const std::string u1 = it->first, u2 = (++it)->first;
    std::vector<std::string> pool(it->second.begin(), it->second.end());
    std::string text = "user\titem\n";
    std::set<std::string> listed1;
    for (std::size_t j = 0; j < pool.size() && j < 12; ++j) {
      text += u1 + "\t" + pool[j] + "\n";
      listed1.insert(pool[j]);
    }
    const std::string seen1 = *users.seen.at(u1).begin();
    text += u1 + "\t" + seen1 + "\n" + u1 + "\tno-such-item\n" + u2 + "\t" + pool[0] + "\n" +
            "ghost\t" + pool[1] + "\n";
    write_text(dir.file("cands.tsv"), text);
    const auto c = run_cli(base + "--users '" + data + "/test.tsv' --candidates '" +
                           dir.file("cands.tsv") + "' --k 5 --output '" + dir.file("c.tsv") + "'");
    INFO(c.err);
    REQUIRE(c.code == 0);
    CHECK_THAT(c.err, Contains("1 line(s) name an item the model does not know") &&
                          Contains("1 a user not among the users"));
    std::map<std::string, std::vector<Line>> listed;
    for (const auto& l : read_recs(dir.file("c.tsv"))) listed[l.user].push_back(l);
    REQUIRE(listed.size() == 2);
    CHECK(listed[u2].size() == (users.seen.at(u2).count(pool[0]) ? 0u : 1u));
    const auto& mine = listed[u1];
    CHECK(mine.size() == 5);
    std::vector<std::pair<double, std::string>> want;  // the listed unseen items by full score
    for (const auto& item : listed1) {
      if (users.seen.at(u1).count(item) == 0) want.emplace_back(-full.at({u1, item}), item);
    }
    std::sort(want.begin(), want.end());
    for (std::size_t i = 0; i < mine.size(); ++i) {
      CHECK(listed1.count(mine[i].item) == 1);
      CHECK(mine[i].item != seen1);
      CHECK(mine[i].score == Approx(full.at({u1, mine[i].item})).margin(1e-5));
      CHECK(mine[i].score == Approx(-want[i].first).margin(1e-5));
    }
  }
  // --all: every user of the interaction log beside the run's data.train; jsonl.
  const auto all =
      run_cli(base + "--all --k 3 --format jsonl --output '" + dir.file("all.jsonl") + "'");
  INFO(all.err);
  REQUIRE(all.code == 0);
  const auto json_lines = read_jsonl(dir.file("all.jsonl"));
  std::set<std::string> log_users;
  {
    std::istringstream log(read_text(data + "/interactions.tsv"));
    std::getline(log, line);
    while (std::getline(log, line)) log_users.insert(line.substr(0, line.find('\t')));
  }
  CHECK(json_lines.size() == log_users.size());
  for (const auto& j : json_lines) {
    CHECK(j["items"].size() == 3);
    CHECK(j["scores"].size() == 3);
  }
  // A factorised model (SASRec): user states x the item table, one matrix product per block.
  const auto sasrec = run_cli_env(
      "OMP_WAIT_POLICY=PASSIVE",
      "--log-level warn train --config '" + source_path("configs/sasrec.json") + "' --run-dir '" +
          dir.file("sasrec") + "' --set data.train='" + data +
          "/train_sequences.tsv' --set data.valid='" + data +
          "/valid.tsv' --set data.test= --set train.epochs=1 --set model.embedding.dim=8 "
          "--set train.threads=1 --set train.device=cpu");
  INFO(sasrec.err);
  REQUIRE(sasrec.code == 0);
  REQUIRE(run_cli("--log-level warn recommend --checkpoint '" + dir.file("sasrec") + "' --users '" +
                  data + "/test.tsv' --k 4 --output '" + dir.file("sasrec.tsv") + "'")
              .code == 0);
  const auto factorised = read_recs(dir.file("sasrec.tsv"));
  CHECK(factorised.size() == 4 * users.seen.size());
  for (const auto& l : factorised) CHECK(users.seen.at(l.user).count(l.item) == 0);
  // Bad usage: exit 2, nothing written.
  const auto both =
      run_cli(base + "--all --users '" + data + "/test.tsv' --output '" + dir.file("x.tsv") + "'");
  CHECK(both.code == 2);
  CHECK_THAT(both.err, Contains("either --users FILE"));
  const auto onto_input =
      run_cli(base + "--users '" + data + "/test.tsv' --output '" + data + "/test.tsv'");
  CHECK(onto_input.code == 2);
  CHECK_FALSE(std::filesystem::exists(dir.file("x.tsv")));
}
