#pragma once
/// \file Masked attention over encoder outputs. One module, several scoring functions (see
/// the registry): dot, scaled_dot, additive, cosine, multi_head, none (masked mean).

#include <torch/torch.h>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace attnrec {

/// Options of AttentionImpl.
struct AttentionOptions {
  AttentionOptions(std::int64_t dim) : dim_(dim) {}  // NOLINT: LibTorch-style implicit options
  /// Size of the keys/values and the query.
  TORCH_ARG(std::int64_t, dim);
  /// Scoring function, a name from attention_variants(). Default: "additive"
  TORCH_ARG(std::string, type) = "additive";
  /// Heads of "multi_head"; must divide dim. Default: 4
  TORCH_ARG(std::int64_t, heads) = 4;
  /// Hidden size of the "additive" MLP. Default: 64
  TORCH_ARG(std::int64_t, hidden) = 64;
  /// Temperature dividing "cosine" scores. Default: 0.1
  TORCH_ARG(double, temperature) = 0.1;
};

/// Result of an attention pass.
struct AttentionOutput {
  torch::Tensor context;  ///< [B, dim]
  torch::Tensor weights;  ///< [B, T]; zero at padding, rows sum to 1 (0 for all-padding rows)
  /// [B, H, T]: each head's weights (multi_head; `weights` is their mean), else undefined.
  torch::Tensor head_weights;
};

/// The context split by history position: context = terms.sum(1) + constant.
struct PositionTerms {
  torch::Tensor terms;     ///< [B, T, dim]: position t's part of the context (zero at padding)
  torch::Tensor constant;  ///< [dim] the part no position owns (an output bias), or undefined
};

/// Softmax over the positions where `mask` is true. Rows with no valid position get all-zero
/// weights (not NaN), so their context vector is zero and gradients stay finite.
torch::Tensor masked_softmax(const torch::Tensor& scores, const torch::Tensor& mask);

/// One attention pass's inputs, as AttentionImpl::forward() checked and prepared them.
struct AttentionInput {
  const torch::Tensor& query;           ///< [rows, dim] (undefined for query-free variants)
  const torch::Tensor& keys;            ///< [B, T, dim], or [1, T, dim] when `shared`
  const torch::Tensor& mask;            ///< [B, T] (or [1, T]) bool
  const torch::Tensor& row_mask;        ///< [rows, T]: mask, expanded when `shared`
  const torch::Tensor& key_projection;  ///< project_keys(keys) computed earlier, may be undefined
  bool shared = false;  ///< one history against many queries (broadcast, not copied)
  std::int64_t rows = 0;
};

/// One attention variant (a scoring function). Each lives in its own file under
/// src/model/attention/ with a factory make_NAME_attention(), entered in attention_registry()
/// (src/model/attention_registry.cpp); its name and description are a choice in
/// config/choices.cpp, which makes it a valid, documented `model.attention.type`.
class AttentionScorer {
 public:
  virtual ~AttentionScorer() = default;
  /// Registers the variant's parameters on `module` (their names are the checkpoint's).
  virtual void build(torch::nn::Module& module, const AttentionOptions& options) {
    (void)module;
    (void)options;
  }
  /// The attention output. The default scores() + masked softmax + weighted sum of the keys.
  virtual AttentionOutput attend(const AttentionInput& in);
  /// [rows, T] scores of each query against each key (softmax over valid positions follows).
  virtual torch::Tensor scores(const AttentionInput& in) = 0;
  /// Whether the variant reads the query (false: none).
  virtual bool uses_query() const { return true; }
  /// The query-independent part of the scores (e.g. additive: W_k keys), computed once when one
  /// history is scored against many candidates; undefined when there is none.
  virtual torch::Tensor project_keys(const torch::Tensor& keys) {
    (void)keys;
    return {};
  }
  /// W_k such that project_keys(keys) = keys W_k^T, for encoders that fuse the projection into
  /// their own kernel; undefined when the variant has none.
  virtual torch::Tensor key_weight() const { return {}; }
  /// The part of the scores that depends on the query only (additive: W_q q + b), computed once
  /// per candidate item when one history is ranked against a whole item table; the query itself
  /// for the other variants.
  virtual torch::Tensor prepare_query(const torch::Tensor& query) { return query; }
  /// Contexts [rows, dim] of one history (keys [1, T, dim], mask [1, T], its project_keys() or
  /// undefined) against `prepared` [rows, *] = prepare_query(queries). The default runs attend()
  /// with the history shared.
  virtual torch::Tensor attend_prepared(const torch::Tensor& prepared, const torch::Tensor& keys,
                                        const torch::Tensor& mask,
                                        const torch::Tensor& key_projection);
  /// The context that `weights` ([B, T], or [B, H, T] per head) would give, split by position
  /// (not shared keys). The default: weights x keys, no constant.
  virtual PositionTerms position_terms(const AttentionInput& in, const torch::Tensor& weights);

 protected:
  /// q . k for every (row, position), batched or against the shared keys.
  static torch::Tensor dot_scores(const AttentionInput& in, const torch::Tensor& keys,
                                  const torch::Tensor& query);
  /// Masked softmax of `scores` and the weighted sum of the keys.
  static AttentionOutput pool(const AttentionInput& in, const torch::Tensor& scores);
};

/// Makes the scorer of one variant.
using AttentionFactory = std::function<std::unique_ptr<AttentionScorer>()>;

/// The attention variants by model.attention.type name: an explicit table, filled in one
/// function (src/model/attention_registry.cpp). Adding a variant touches its own file
/// (src/model/attention/NAME.cpp, defining make_NAME_attention()), that function, and the
/// variant's name and description in config/choices.cpp.
const std::map<std::string, AttentionFactory>& attention_registry();

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(AttentionOptions options);
  void reset();
  /// query [B, dim], keys [B, T, dim], mask [B, T] bool. `key_projection`, when defined, is
  /// project_keys(keys) computed earlier (rows may be repeated), so that scoring one history
  /// against many candidates projects its keys once.
  AttentionOutput forward(const torch::Tensor& query, const torch::Tensor& keys,
                          const torch::Tensor& mask, const torch::Tensor& key_projection = {});
  /// The query-independent part of the scores (additive: W_k keys); undefined for the other
  /// types, whose key-side work is a cheap product.
  torch::Tensor project_keys(const torch::Tensor& keys) { return scorer_->project_keys(keys); }
  /// W_k [hidden, dim] such that project_keys(keys) = keys W_k^T (additive; else undefined),
  /// for encoders that can fuse the projection into their own kernel.
  torch::Tensor key_weight() const { return scorer_->key_weight(); }
  /// See AttentionScorer::prepare_query(): once per candidate item when ranking.
  torch::Tensor prepare_query(const torch::Tensor& query) { return scorer_->prepare_query(query); }
  /// See AttentionScorer::attend_prepared(): contexts [rows, dim] of one history ([1, T, dim])
  /// against prepared queries; the same numbers as forward() to float rounding.
  torch::Tensor attend_prepared(const torch::Tensor& prepared, const torch::Tensor& keys,
                                const torch::Tensor& mask, const torch::Tensor& key_projection);
  /// For explanations: the context that `weights` ([B, T] for every head, or [B, H, T] per
  /// head, as forward() returned them) gives over keys [B, T, dim], split by position; its
  /// terms summed plus the constant are forward()'s context for forward()'s weights, exactly.
  PositionTerms position_terms(const torch::Tensor& keys, const torch::Tensor& mask,
                               const torch::Tensor& weights);

  AttentionOptions options;

 private:
  std::unique_ptr<AttentionScorer> scorer_;  // chosen once, by name, in reset()
};
TORCH_MODULE(Attention);

}  // namespace attnrec
