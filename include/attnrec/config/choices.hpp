#pragma once
/// \file The allowed values of every choice option, declared once each (choices.cpp). Configs
/// hold the enums below; the option table turns names into them when a config is read and back
/// into names when it is written, so a choice is never compared as a string anywhere else.
/// Names and one-line descriptions feed validation messages and the option reference.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnrec {

/// One allowed value: its name in configs and a one-line description (may be empty).
struct ChoiceInfo {
  std::string name;
  std::string help;
};

/// data.header
enum class HeaderMode { automatic, yes, no };
/// data.on_bad_line, train.on_nonfinite
enum class BadLinePolicy { error, skip };
enum class NonFinitePolicy { error, skip };
/// model.encoder.type
enum class EncoderKind { lstm, gru, none, transformer };
/// Whether `k` is an LSTM or a GRU (reads left to right; may be bidirectional and stacked with
/// dropout between layers).
inline bool is_recurrent(EncoderKind k) { return k == EncoderKind::lstm || k == EncoderKind::gru; }
/// model.encoder.norm
enum class TransformerNorm { pre, post, sasrec };
/// model.head.type
enum class HeadKind { mlp, dot };
/// model.attention.query
enum class QueryKind { target, self };
/// model.attention.positional
enum class PositionalKind { none, sinusoidal, learned };
/// model.head.inputs
enum class HeadInputs { all, context_candidate };
/// model.head.activation
enum class ActivationKind { relu, gelu, tanh, sigmoid };
/// train.optimizer
enum class OptimizerKind { adam, lazy_adam };
/// train.precision: the arithmetic of the training forward pass (weights, gradients, optimizer
/// state and the loss stay fp32).
enum class Precision { fp32, bf16 };
/// train.distributed.backend: the c10d process group of a multi-process run (`automatic` is
/// named "auto": NCCL for CUDA devices in a build that has it, else Gloo).
enum class DistBackend { automatic, gloo, nccl };
/// train.schedule
enum class LrSchedule { constant, warmup_linear };
/// train.early_stopping.metric
enum class StopMetric { auc, gauc, logloss, hr10, ndcg10, mrr };
/// Whether `m` is read from the ranking of the frozen validation candidates (HR/NDCG/MRR)
/// rather than from the scored validation samples.
inline bool is_ranking_metric(StopMetric m) {
  return m == StopMetric::hr10 || m == StopMetric::ndcg10 || m == StopMetric::mrr;
}
/// train.loss (what each computes: train/losses.hpp, whose registry maps every value to it)
enum class LossKind { bce, bpr, sampled_softmax, gbce, softmax };
/// Whether `k` scores every item of the catalogue (no drawn negatives).
inline bool is_full_catalogue(LossKind k) { return k == LossKind::softmax; }
/// train.early_stopping.protocol: how a ranking metric ranks each validation positive.
enum class RankingProtocol { sampled, full };
/// train.negatives.sampling
enum class NegativeDistribution { uniform, popularity };
/// train.negatives.exclude
enum class NegativeExclusion { train, all };

/// preprocess.format: the interaction log's format (`automatic` is named "auto").
enum class LogFormat { automatic, movielens, movielens_tsv, sequence, amazon, taobao, csv };
/// preprocess.dedup: which of repeated (user, item) interactions is kept.
enum class DedupPolicy { first, last, none };
/// preprocess.split
enum class SplitProtocol { leave_last_out, temporal };
/// preprocess.sampling, preprocess.ranking_sampling
enum class PreprocessSampling { uniform, popularity };

/// The allowed values of `E`, in enum order.
template <class E>
const std::vector<ChoiceInfo>& choices();

/// The config name of `value`.
template <class E>
const std::string& name_of(E value) {
  return choices<E>()[static_cast<std::size_t>(value)].name;
}

/// The value named `name`, if it is one.
template <class E>
std::optional<E> parse_choice(std::string_view name) {
  const auto& list = choices<E>();
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (list[i].name == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

/// The names of `list`, in order.
std::vector<std::string> choice_names(const std::vector<ChoiceInfo>& list);

/// "name: help" lines as a Markdown list (for the option reference; empty when no value has a
/// description).
std::string choice_docs(const std::vector<ChoiceInfo>& list);

/// The roles of the columns of a sample file (data.columns), in documentation order.
const std::vector<ChoiceInfo>& column_roles();

/// Attention scoring functions (model.attention.type), sorted by name. Each name has a factory
/// in the model's explicit registry (model/attention_registry.cpp); a test checks that the two
/// lists agree.
const std::vector<ChoiceInfo>& attention_variants();

}  // namespace attnrec
