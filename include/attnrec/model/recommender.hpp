#pragma once
/// \file The click-prediction model: Embedding -> encoder -> attention -> dense head -> logit.

#include <torch/torch.h>
#include <string>
#include <vector>

#include "attnrec/data/batch.hpp"
#include "attnrec/model/attention.hpp"
#include "attnrec/model/encoder.hpp"

namespace attnrec {

/// Options of RecommenderImpl (built from a Config by make_recommender_options()).
struct RecommenderOptions {
  RecommenderOptions(std::int64_t item_vocab, std::int64_t embedding_dim)  // NOLINT
      : item_vocab_(item_vocab), embedding_dim_(embedding_dim) {}
  /// Item vocabulary size including padding (0) and OOV (1).
  TORCH_ARG(std::int64_t, item_vocab);
  /// Embedding size.
  TORCH_ARG(std::int64_t, embedding_dim);
  /// Category vocabulary size (0 padding, 1 unknown, then categories); 0 disables the
  /// category side feature. Default: 0
  TORCH_ARG(std::int64_t, category_vocab) = 0;
  /// Size of the category embedding concatenated to each item embedding. Default: 16
  TORCH_ARG(std::int64_t, category_dim) = 16;
  /// User vocabulary size; 0 disables the user embedding. Default: 0
  TORCH_ARG(std::int64_t, user_vocab) = 0;
  /// Whether samples have a candidate item. Default: true
  TORCH_ARG(bool, has_item) = true;
  /// Candidate uses the history's table (false: a separate table). Default: true
  TORCH_ARG(bool, share_candidate) = true;
  /// target (candidate as query) or self (learned query). Default: target
  TORCH_ARG(QueryKind, query) = QueryKind::target;
  /// none, sinusoidal or learned. Default: none
  TORCH_ARG(PositionalKind, positional) = PositionalKind::none;
  /// Longest history (size of a learned positional table). Default: 50
  TORCH_ARG(std::int64_t, max_history) = 50;
  /// Embedding tables produce sparse gradients (for LazyAdam). Default: false
  TORCH_ARG(bool, sparse_embeddings) = false;
  /// mlp (the head below) or dot (logit = context . candidate + item bias; the context must be
  /// as large as an item representation). Default: mlp
  TORCH_ARG(HeadKind, head_type) = HeadKind::mlp;
  /// "all" ([context, candidate, query (.) context, user]) or "context_candidate". Default: "all"
  TORCH_ARG(HeadInputs, head_inputs) = HeadInputs::all;
  /// Hidden sizes of the head's MLP. Default: {64, 32}
  TORCH_ARG(std::vector<std::int64_t>, head_hidden) = std::vector<std::int64_t>{64, 32};
  /// relu, gelu, tanh or sigmoid. Default: relu
  TORCH_ARG(ActivationKind, activation) = ActivationKind::relu;
  /// Dropout after each hidden layer of the head. Default: 0
  TORCH_ARG(double, head_dropout) = 0.0;
  /// > 0: every embedding table (items, candidates, users, categories, the encoder's learned
  /// positions; not the item bias, which starts at zero) starts N(0, std^2), padding rows zero;
  /// 0: LibTorch's default N(0, 1). Default: 0
  TORCH_ARG(double, embedding_init_std) = 0.0;
  /// Dropout on the history's item representations before the encoder. Default: 0
  TORCH_ARG(double, embedding_dropout) = 0.0;
  /// A learned per-item scalar added to the logit (needs has_item). Default: false
  TORCH_ARG(bool, item_bias) = false;
  /// Encoder options (input_size must equal embedding_dim, plus category_dim with categories).
  TORCH_ARG(SequenceEncoderOptions, encoder) = SequenceEncoderOptions(64);
  /// Attention options (dim must equal the encoder's output size).
  TORCH_ARG(AttentionOptions, attention) = AttentionOptions(64);
};

/// Forward result.
struct RecommenderOutput {
  torch::Tensor logits;     ///< [B]; apply sigmoid for probabilities
  torch::Tensor attention;  ///< [B, T] attention weights over history positions
  /// [B, H, T] each head's weights (multi_head attention; `attention` is their mean), else
  /// undefined.
  torch::Tensor head_attention;
};

/// What explanations need beyond the logits (RecommenderImpl::attribute()).
struct Attribution {
  /// [B] the logits with the learned attention weights replaced by a uniform average over the
  /// valid positions (every head alike): the "uniform attention" control.
  torch::Tensor uniform_logits;
  /// [B, T] dot head only: the logit split exactly by history position, position t's part of
  /// the pooled context (its weight times its value vector) dotted with the candidate; zero at
  /// padding. Undefined for the mlp head, whose logit does not split exactly.
  torch::Tensor contributions;
  /// [B] dot head only: the part of the logit no position owns (item bias, the attention's
  /// output bias), so that contributions.sum(1) + rest are the logits.
  torch::Tensor rest;
};

/// The candidate-independent part of a forward pass: encoded history (plus positions), its
/// mask, the attention's key projection and the user embedding. Rows can be repeated with
/// select_rows() to score one history against many candidates without re-running the encoder.
struct EncodedHistory {
  torch::Tensor keys;            ///< [B, T, D]
  torch::Tensor mask;            ///< [B, T] bool
  torch::Tensor key_projection;  ///< attention's project_keys(keys), may be undefined
  torch::Tensor user;            ///< [B, E] user embedding, undefined without one

  /// Rows `rows` (int64 [N], may repeat) of every tensor.
  EncodedHistory select_rows(const torch::Tensor& rows) const;
};

/// The candidate side of scoring for a set of items, computed once and reused for every history
/// (candidate_side()): ranking one history against N items then costs only the attention over
/// the history and the head's history-dependent part per pair.
struct CandidateSide {
  torch::Tensor candidate;  ///< [N, item_size()] the items as candidates
  torch::Tensor query;      ///< [N, D] target query: query_proj(candidate); else undefined
  torch::Tensor prepared;   ///< [N, *] the attention's prepare_query(query) (target query)
  torch::Tensor head_term;  ///< [N, H1] mlp head: first layer on the candidate part, plus its bias
  torch::Tensor bias;       ///< [N] item bias, or undefined
};

class RecommenderImpl : public torch::nn::Module {
 public:
  explicit RecommenderImpl(RecommenderOptions options);
  void reset();
  /// score(encode(batch), batch.item).
  RecommenderOutput forward(const Batch& batch);
  /// Everything that does not depend on the candidate.
  EncodedHistory encode(const Batch& batch);
  /// Logits of `history` row i against candidate item[i] (item undefined for models without a
  /// candidate). A single history row ([1, ...]) is scored against every item, broadcast.
  RecommenderOutput score(const EncodedHistory& history, const torch::Tensor& item);
  /// Explanations: the uniform-attention logits and, for the dot head, the exact split of each
  /// logit by history position (see Attribution), of `history` row i against item[i].
  Attribution attribute(const EncodedHistory& history, const torch::Tensor& item);

  /// Whether score(user, item) = state(user) . item_vector(item) + bias(item), with a state that
  /// does not depend on the candidate: the dot head with a self query. Full ranking is then one
  /// matrix product (user_states() x item_vectors()).
  bool factorised() const;
  /// factorised() only: the user states [B, D] of encoded histories.
  torch::Tensor user_states(const EncodedHistory& history);
  /// factorised() only: the representations [N, D] of item ids `ids` [N] as candidates, and
  /// their biases [N] (zeros without an item bias).
  std::tuple<torch::Tensor, torch::Tensor> item_vectors(const torch::Tensor& ids);

  /// Models with a candidate item: the candidate side of items `ids` [N] (see CandidateSide).
  /// Inference only (no autograd, eval mode); a snapshot of the weights.
  CandidateSide candidate_side(const torch::Tensor& ids);
  /// Logits [B, N] of every history row of `history` against every item of `side`: the same
  /// numbers as score() to float rounding, with the candidate side computed once. Items are
  /// split across the intra-op threads.
  torch::Tensor score_candidates(const EncodedHistory& history, const CandidateSide& side);

  /// Sets the category of every item id (int64 [item_vocab], values < category_vocab; 1 =
  /// unknown). Stored as a buffer, so checkpoints carry it.
  void set_item_categories(const torch::Tensor& categories);
  /// Size of an item's representation (embedding plus category embedding).
  std::int64_t item_size() const;

  /// Inference speed-up: `true` precomputes the first LSTM layer's input gates of every item
  /// (item_vocab x 4 hidden floats, at most kMaxItemGatesBytes) so that encode()/forward()
  /// without autograd on the CPU copy rows instead of running the input GEMM; `false` drops
  /// them. The table is a snapshot of the weights: drop it before they change (see
  /// ItemGatesCache). Returns whether the table is in use.
  bool cache_item_gates(bool enable);
  static constexpr std::int64_t kMaxItemGatesBytes = 256LL << 20;

  RecommenderOptions options;

 private:
  /// Item ids -> [..., item_size()] representations, from `table` (history or candidate).
  torch::Tensor embed_items(const torch::Tensor& ids, torch::nn::Embedding& table);
  /// encode() and score() after the embedding lookup.
  EncodedHistory encode_embedded(const Batch& batch, const torch::Tensor& history);
  /// Positions, key projection and user embedding over encoded `keys`.
  /// True when finish_encoding() adds a position term to the keys.
  bool has_position_term() const { return position_embedding_ || sinusoid_.defined(); }
  /// Position terms, key projection (unless `key_projection` came with the keys), user.
  EncodedHistory finish_encoding(const Batch& batch, torch::Tensor keys,
                                 torch::Tensor key_projection = {});
  bool use_item_gates(const Batch& batch) const;
  /// `item`: the candidates' ids (for the item bias; may be undefined without one).
  RecommenderOutput score_embedded(const EncodedHistory& history, const torch::Tensor& candidate,
                                   const torch::Tensor& item);
  /// The candidates' representations for item ids (undefined for models without one).
  torch::Tensor embed_candidates(const EncodedHistory& history, const torch::Tensor& item);
  /// The attention query of each row: the projected candidate, or the learned self query.
  torch::Tensor attention_query(const torch::Tensor& candidate, std::int64_t rows);
  /// The head on attention contexts [rows, D]: the logits (item bias included).
  torch::Tensor head_forward(const EncodedHistory& history, const torch::Tensor& context,
                             const torch::Tensor& candidate, const torch::Tensor& query,
                             const torch::Tensor& item);
  torch::Tensor activation(const torch::Tensor& x) const;
  /// The head on contexts [N, D] of one history against candidates [begin, end) of `side`;
  /// `history_term` [1, H1] is the first layer's part on the history's inputs (user), or
  /// undefined; `columns` the first layer's weight parts as head_parts() gives them.
  torch::Tensor head_logits(const torch::Tensor& context, const CandidateSide& side,
                            std::int64_t begin, std::int64_t end,
                            const std::vector<torch::Tensor>& columns,
                            const torch::Tensor& history_term);
  /// The mlp head's first-layer weight split by input, transposed: {context, candidate,
  /// query (.) context, user}, undefined where the model has no such input.
  std::vector<torch::Tensor> head_parts() const;
  /// Every embedding table but the item bias drawn N(0, std^2), padding rows zeroed.
  void init_embeddings(double std);

  torch::nn::Embedding item_embedding_{nullptr}, candidate_embedding_{nullptr};
  torch::nn::Embedding user_embedding_{nullptr}, position_embedding_{nullptr};
  torch::nn::Embedding category_embedding_{nullptr};
  torch::Tensor item_category_;  // buffer [item_vocab] int64
  torch::Tensor item_gates_;     // cache_item_gates(); not a buffer (never saved)
  torch::Tensor sinusoid_;       // buffer [max_history, D] for "sinusoidal"
  SequenceEncoder encoder_{nullptr};
  Attention attention_{nullptr};
  torch::nn::Linear query_proj_{nullptr};
  torch::Tensor self_query_;
  torch::nn::ModuleList head_{nullptr};
  torch::nn::Dropout head_dropout_{nullptr};
  torch::nn::Dropout embedding_dropout_{nullptr};  // only when embedding_dropout > 0
  torch::nn::Embedding item_bias_{nullptr};
};
TORCH_MODULE(Recommender);

/// Scope guard: the item-gate table of `model` exists for the guard's lifetime (if it fits).
class ItemGatesCache {
 public:
  explicit ItemGatesCache(Recommender& model) : model_(model) { model_->cache_item_gates(true); }
  ~ItemGatesCache() { model_->cache_item_gates(false); }
  ItemGatesCache(const ItemGatesCache&) = delete;
  ItemGatesCache& operator=(const ItemGatesCache&) = delete;

 private:
  Recommender& model_;
};

}  // namespace attnrec
