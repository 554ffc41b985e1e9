#include "attnrec/model/recommender.hpp"

#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>

#include "attnrec/model/layers.hpp"

namespace attnrec {

RecommenderImpl::RecommenderImpl(RecommenderOptions options_) : options(std::move(options_)) {
  reset();
}

std::int64_t RecommenderImpl::item_size() const {
  return options.embedding_dim() + (options.category_vocab() > 0 ? options.category_dim() : 0);
}

void RecommenderImpl::set_item_categories(const torch::Tensor& categories) {
  TORCH_CHECK(item_category_.defined(), "set_item_categories: the model has no category feature");
  TORCH_CHECK(categories.dim() == 1 && categories.size(0) == options.item_vocab(),
              "item categories: expected [", options.item_vocab(), "], got ", categories.sizes());
  TORCH_CHECK(
      categories.numel() == 0 || (categories.min().item<std::int64_t>() >= 0 &&
                                  categories.max().item<std::int64_t>() < options.category_vocab()),
      "item categories: expected ids in [0, ", options.category_vocab(), ")");
  torch::NoGradGuard guard;
  item_category_.copy_(categories);
}

torch::Tensor RecommenderImpl::embed_items(const torch::Tensor& ids, torch::nn::Embedding& table) {
  auto x = table(ids);
  if (!category_embedding_) return x;
  return torch::cat({x, category_embedding_(item_category_.index({ids}))}, /*dim=*/-1);
}

void RecommenderImpl::reset() {
  const std::int64_t e = item_size();
  const std::int64_t ed = options.embedding_dim();
  TORCH_CHECK(options.encoder().input_size() == e, "encoder input size: expected ", e,
              " (the item representation size), got ", options.encoder().input_size());
  TORCH_CHECK(options.query() != QueryKind::target || options.has_item(),
              "target attention needs a candidate item");
  item_embedding_ = register_module(
      "item_embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options.item_vocab(), ed)
                                                 .padding_idx(0)
                                                 .sparse(options.sparse_embeddings())));
  if (options.has_item() && !options.share_candidate()) {
    candidate_embedding_ =
        register_module("candidate_embedding",
                        torch::nn::Embedding(torch::nn::EmbeddingOptions(options.item_vocab(), ed)
                                                 .padding_idx(0)
                                                 .sparse(options.sparse_embeddings())));
  }
  if (options.category_vocab() > 0) {
    category_embedding_ =
        register_module("category_embedding",
                        torch::nn::Embedding(torch::nn::EmbeddingOptions(options.category_vocab(),
                                                                         options.category_dim())
                                                 .padding_idx(0)
                                                 .sparse(options.sparse_embeddings())));
    // Padding items map to the padding category; everything else starts as "unknown" (1).
    auto categories = torch::ones({options.item_vocab()}, torch::kInt64);
    categories[0] = 0;
    item_category_ = register_buffer("item_category", categories);
  }
  if (options.user_vocab() > 0) {
    user_embedding_ = register_module(
        "user_embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(options.user_vocab(), ed)
                                                   .padding_idx(0)
                                                   .sparse(options.sparse_embeddings())));
  }
  encoder_ = register_module("encoder", SequenceEncoder(options.encoder()));
  const std::int64_t d = encoder_->output_size();
  TORCH_CHECK(options.attention().dim() == d, "attention dim: expected ", d,
              " (the encoder output size), got ", options.attention().dim());
  attention_ = register_module("attention", Attention(options.attention()));

  if (options.positional() == PositionalKind::learned) {
    position_embedding_ =
        register_module("position_embedding", torch::nn::Embedding(options.max_history(), d));
  } else if (options.positional() == PositionalKind::sinusoidal) {
    sinusoid_ = register_buffer("sinusoid", sinusoidal_table(options.max_history(), d));
  }

  std::int64_t features = d;  // attended context
  const bool all_inputs = options.head_inputs() == HeadInputs::all;
  TORCH_CHECK(all_inputs || options.has_item(), "head inputs context_candidate need a candidate");
  if (options.query() == QueryKind::target) {
    query_proj_ = register_module("query_proj", torch::nn::Linear(e, d));
    features += all_inputs ? e + d : e;  // candidate embedding[, query (.) context]
  } else {
    self_query_ = register_parameter("self_query", torch::randn({d}) / std::sqrt(double(d)));
    if (options.has_item()) features += e;
  }
  if (user_embedding_ && all_inputs) features += ed;
  head_ = register_module("head", torch::nn::ModuleList());
  if (options.head_type() == HeadKind::dot) {
    TORCH_CHECK(options.has_item(), "the dot head needs a candidate item");
    TORCH_CHECK(d == e, "dot head: expected the context size to equal the item size ", e, ", got ",
                d);
  } else {
    for (const std::int64_t h : options.head_hidden()) {
      head_->push_back(torch::nn::Linear(features, h));
      features = h;
    }
    head_->push_back(torch::nn::Linear(features, 1));
  }
  head_dropout_ = register_module("head_dropout", torch::nn::Dropout(options.head_dropout()));
  // Registered only when used: a dropout layer draws from the generator, and a model without
  // one must keep the random stream (and so its results) of earlier versions.
  if (options.embedding_dropout() > 0) {
    embedding_dropout_ =
        register_module("embedding_dropout", torch::nn::Dropout(options.embedding_dropout()));
  }
  if (options.item_bias()) {
    TORCH_CHECK(options.has_item(), "item_bias needs a candidate item");
    item_bias_ = register_module(
        "item_bias", torch::nn::Embedding(torch::nn::EmbeddingOptions(options.item_vocab(), 1)
                                              .padding_idx(0)
                                              .sparse(options.sparse_embeddings())));
    torch::NoGradGuard no_grad;
    item_bias_->weight.zero_();  // starts neutral; learns the popularity prior
  }
  if (options.embedding_init_std() > 0) init_embeddings(options.embedding_init_std());
}

void RecommenderImpl::init_embeddings(double std) {
  torch::NoGradGuard no_grad;
  for (const auto& module : modules(/*include_self=*/false)) {
    auto* table = module->as<torch::nn::EmbeddingImpl>();
    if (!table || (item_bias_ && table == item_bias_.get())) continue;
    table->weight.normal_(0.0, std);
    if (const auto& padding = table->options.padding_idx()) table->weight[*padding].zero_();
  }
}

torch::Tensor RecommenderImpl::activation(const torch::Tensor& x) const {
  return activate(options.activation(), x);
}

bool RecommenderImpl::factorised() const {
  return options.head_type() == HeadKind::dot && options.query() == QueryKind::self;
}

torch::Tensor RecommenderImpl::user_states(const EncodedHistory& h) {
  TORCH_CHECK(factorised(), "user_states: needs the dot head and a self query");
  const auto query = self_query_.unsqueeze(0).expand({h.keys.size(0), -1});
  return attention_(query, h.keys, h.mask, h.key_projection).context;
}

std::tuple<torch::Tensor, torch::Tensor> RecommenderImpl::item_vectors(const torch::Tensor& ids) {
  TORCH_CHECK(factorised(), "item_vectors: needs the dot head and a self query");
  auto vectors = embed_items(ids, candidate_embedding_ ? candidate_embedding_ : item_embedding_);
  auto bias =
      item_bias_ ? item_bias_(ids).squeeze(1) : torch::zeros({ids.size(0)}, vectors.options());
  return {vectors, bias};
}

std::vector<torch::Tensor> RecommenderImpl::head_parts() const {
  std::vector<torch::Tensor> parts(4);
  if (options.head_type() != HeadKind::mlp) return parts;
  const auto& w = (*head_)[0]->as<torch::nn::Linear>()->weight;  // [H1, features]
  const bool all_inputs = options.head_inputs() == HeadInputs::all;
  const std::int64_t sizes[4] = {
      encoder_->output_size(), options.has_item() ? item_size() : 0,
      options.query() == QueryKind::target && all_inputs ? encoder_->output_size() : 0,
      user_embedding_ && all_inputs ? options.embedding_dim() : 0};
  std::int64_t offset = 0;
  for (int i = 0; i < 4; ++i) {  // the order of score_embedded()'s features
    if (sizes[i] > 0) parts[i] = w.narrow(1, offset, sizes[i]).t().contiguous();
    offset += sizes[i];
  }
  TORCH_CHECK(offset == w.size(1), "head inputs: expected ", w.size(1), " features, got ", offset);
  return parts;
}

CandidateSide RecommenderImpl::candidate_side(const torch::Tensor& ids) {
  TORCH_CHECK(options.has_item(), "candidate_side: the model has no candidate item");
  TORCH_CHECK(!is_training(), "candidate_side: expected a model in eval mode");
  torch::NoGradGuard no_grad;
  CandidateSide side;
  side.candidate = embed_items(ids, candidate_embedding_ ? candidate_embedding_ : item_embedding_);
  if (options.query() == QueryKind::target) {
    side.query = query_proj_(side.candidate);
    side.prepared = attention_->prepare_query(side.query);
  }
  if (options.head_type() == HeadKind::mlp) {
    const auto& first = head_[0]->as<torch::nn::Linear>()->bias;
    side.head_term = torch::addmm(first, side.candidate, head_parts()[1]);
  }
  if (item_bias_) side.bias = item_bias_(ids).squeeze(1);
  return side;
}

torch::Tensor RecommenderImpl::head_logits(const torch::Tensor& context, const CandidateSide& side,
                                           std::int64_t begin, std::int64_t end,
                                           const std::vector<torch::Tensor>& columns,
                                           const torch::Tensor& history_term) {
  const std::int64_t n = end - begin;
  torch::Tensor logits;
  if (options.head_type() == HeadKind::dot) {
    logits = (context * side.candidate.narrow(0, begin, n)).sum(1);
  } else {
    auto x = torch::addmm(side.head_term.narrow(0, begin, n), context, columns[0]);
    if (columns[2].defined()) x.addmm_(side.query.narrow(0, begin, n) * context, columns[2]);
    if (history_term.defined()) x.add_(history_term);
    for (std::size_t i = 1; i < head_->size(); ++i) {
      x = head_[i]->as<torch::nn::Linear>()->forward(activation(x));
    }
    logits = x.squeeze(1);
  }
  return side.bias.defined() ? logits + side.bias.narrow(0, begin, n) : logits;
}

torch::Tensor RecommenderImpl::score_candidates(const EncodedHistory& h,
                                                const CandidateSide& side) {
  TORCH_CHECK(side.candidate.defined(), "score_candidates: expected a candidate side");
  TORCH_CHECK(!is_training(), "score_candidates: expected a model in eval mode");
  torch::NoGradGuard no_grad;
  const std::int64_t rows = h.keys.size(0), n = side.candidate.size(0);
  auto out = torch::empty({rows, n}, side.candidate.options());
  const auto columns = head_parts();
  const bool target = options.query() == QueryKind::target;
  const bool inference = c10::InferenceMode::is_enabled();
  const bool cpu = h.keys.device().is_cpu();
  // Items per call: bounds the [items, T, *] temporaries of the attention variants.
  constexpr std::int64_t kItems = 1024;
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto one = h.select_rows(
        torch::full({1}, r, torch::TensorOptions().dtype(torch::kInt64).device(h.keys.device())));
    torch::Tensor context, history_term;
    if (!target) {  // a self query: the context does not depend on the candidate
      context =
          attention_(self_query_.unsqueeze(0), one.keys, one.mask, one.key_projection).context;
    }
    if (columns[3].defined()) history_term = one.user.matmul(columns[3]);
    auto row = out[r];
    const auto range = [&](std::int64_t begin, std::int64_t end) {
      c10::InferenceMode mode(inference);  // thread-local: the pool's threads take the caller's
      torch::NoGradGuard no_grad_here;
      for (std::int64_t b = begin; b < end; b += kItems) {
        const std::int64_t e = std::min(end, b + kItems);
        const auto ctx = target
                             ? attention_->attend_prepared(side.prepared.narrow(0, b, e - b),
                                                           one.keys, one.mask, one.key_projection)
                             : context.expand({e - b, -1});
        row.narrow(0, b, e - b).copy_(head_logits(ctx, side, b, e, columns, history_term));
      }
    };
    if (cpu) {
      at::parallel_for(0, n, 256, range);
    } else {
      range(0, n);
    }
  }
  return out;
}

EncodedHistory EncodedHistory::select_rows(const torch::Tensor& rows) const {
  auto pick = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, rows) : t; };
  return {pick(keys), pick(mask), pick(key_projection), pick(user)};
}

bool RecommenderImpl::cache_item_gates(bool enable) {
  item_gates_ = torch::Tensor();
  if (!enable || !encoder_->supports_item_gates()) return false;
  const auto& w = item_embedding_->weight;
  const std::int64_t bytes = options.item_vocab() * 4 * options.encoder().hidden_size() * 4;
  if (!w.device().is_cpu() || w.scalar_type() != torch::kFloat32 || bytes > kMaxItemGatesBytes) {
    return false;
  }
  torch::NoGradGuard no_grad;
  const auto ids = torch::arange(options.item_vocab(), torch::kInt64);
  item_gates_ = encoder_->input_gates(embed_items(ids, item_embedding_)).contiguous();
  return true;
}

bool RecommenderImpl::use_item_gates(const Batch& batch) const {
  return item_gates_.defined() && !torch::GradMode::is_enabled() &&
         batch.history.device().is_cpu() && batch.lengths.defined();
}

RecommenderOutput RecommenderImpl::forward(const Batch& batch) {
  // (With the item-gate table, encode() needs no history embeddings: no shared lookup then.)
  if (!use_item_gates(batch) && options.has_item() && !candidate_embedding_ &&
      batch.item.defined() && batch.item.dim() == 1 && batch.history.dim() == 2 &&
      batch.item.size(0) == batch.history.size(0)) {
    // History and candidates share the table: one lookup, so that the backward pass builds one
    // embedding gradient (a dense one is the size of the table) instead of two and a sum.
    const std::int64_t b = batch.history.size(0), t = batch.history.size(1);
    const auto all =
        embed_items(torch::cat({batch.history.reshape({-1}), batch.item}), item_embedding_);
    return score_embedded(encode_embedded(batch, all.narrow(0, 0, b * t).view({b, t, -1})),
                          all.narrow(0, b * t, b), batch.item);
  }
  return score(encode(batch), batch.item);
}

EncodedHistory RecommenderImpl::encode(const Batch& batch) {
  if (use_item_gates(batch)) {
    // Target attention projects the keys; with no position term added to them first, the
    // recurrent kernel does it while each step's hidden states are in cache.
    const bool fuse_keys = options.query() == QueryKind::target && !has_position_term();
    auto [keys, projected] =
        encoder_->forward_items(batch.history, batch.lengths, item_gates_,
                                fuse_keys ? attention_->key_weight() : torch::Tensor());
    return finish_encoding(batch, std::move(keys), std::move(projected));
  }
  return encode_embedded(batch, embed_items(batch.history, item_embedding_));  // [B, T, E]
}

EncodedHistory RecommenderImpl::encode_embedded(const Batch& batch, const torch::Tensor& history) {
  const auto input = embedding_dropout_ ? embedding_dropout_(history) : history;
  return finish_encoding(batch, encoder_(input, batch.mask, batch.lengths));
}

EncodedHistory RecommenderImpl::finish_encoding(const Batch& batch, torch::Tensor keys,
                                                torch::Tensor key_projection) {
  EncodedHistory h;
  h.keys = std::move(keys);
  const std::int64_t t = h.keys.size(1);
  if (has_position_term()) {
    TORCH_CHECK(t <= options.max_history(), "history length ", t, " exceeds max_history ",
                options.max_history());
    const auto pos = position_embedding_ ? position_embedding_->weight.narrow(0, 0, t)
                                         : sinusoid_.narrow(0, 0, t);
    h.keys = h.keys + pos.unsqueeze(0) * batch.mask.unsqueeze(2).to(h.keys.dtype());
  }
  h.mask = batch.mask;
  if (key_projection.defined()) {
    h.key_projection = std::move(key_projection);
  } else if (options.query() == QueryKind::target) {
    h.key_projection = attention_->project_keys(h.keys);
  }
  if (user_embedding_) {
    TORCH_CHECK(batch.user.defined(), "the model needs a user column");
    h.user = user_embedding_(batch.user);
  }
  return h;
}

torch::Tensor RecommenderImpl::embed_candidates(const EncodedHistory& h,
                                                const torch::Tensor& item) {
  if (!options.has_item()) return {};
  TORCH_CHECK(item.defined(), "the model needs a candidate item column");
  TORCH_CHECK(item.dim() == 1 && (item.size(0) == h.keys.size(0) || h.keys.size(0) == 1),
              "candidates: expected [", h.keys.size(0), "], got ", item.sizes());
  return embed_items(item, candidate_embedding_ ? candidate_embedding_ : item_embedding_);
}

RecommenderOutput RecommenderImpl::score(const EncodedHistory& h, const torch::Tensor& item) {
  return score_embedded(h, embed_candidates(h, item), item);
}

torch::Tensor RecommenderImpl::attention_query(const torch::Tensor& candidate, std::int64_t rows) {
  if (options.query() == QueryKind::target) return query_proj_(candidate);
  return self_query_.unsqueeze(0).expand({rows, -1});
}

RecommenderOutput RecommenderImpl::score_embedded(const EncodedHistory& h,
                                                  const torch::Tensor& candidate,
                                                  const torch::Tensor& item) {
  // One encoded history may be scored against many candidates (rows = candidates).
  const std::int64_t rows = candidate.defined() ? candidate.size(0) : h.keys.size(0);
  const auto query = attention_query(candidate, rows);
  const auto attended = attention_(query, h.keys, h.mask, h.key_projection);
  return {head_forward(h, attended.context, candidate, query, item), attended.weights,
          attended.head_weights};
}

torch::Tensor RecommenderImpl::head_forward(const EncodedHistory& h, const torch::Tensor& context,
                                            const torch::Tensor& candidate,
                                            const torch::Tensor& query, const torch::Tensor& item) {
  const std::int64_t rows = context.size(0);
  torch::Tensor logits;
  if (options.head_type() == HeadKind::dot) {
    logits = (context * candidate).sum(1);
  } else {
    std::vector<torch::Tensor> features{context};
    const bool all_inputs = options.head_inputs() == HeadInputs::all;
    if (options.has_item()) features.push_back(candidate);
    if (options.query() == QueryKind::target && all_inputs) features.push_back(query * context);
    if (user_embedding_ && all_inputs) features.push_back(h.user.expand({rows, -1}));
    auto x = torch::cat(features, /*dim=*/1);
    const std::size_t layers = head_->size();
    for (std::size_t i = 0; i < layers; ++i) {
      x = head_[i]->as<torch::nn::Linear>()->forward(x);
      if (i + 1 < layers) x = head_dropout_(activation(x));
    }
    logits = x.squeeze(1);
  }
  return item_bias_ ? logits + item_bias_(item).squeeze(1) : logits;
}

Attribution RecommenderImpl::attribute(const EncodedHistory& h, const torch::Tensor& item) {
  const auto candidate = embed_candidates(h, item);
  const std::int64_t rows = h.keys.size(0);
  TORCH_CHECK(!candidate.defined() || candidate.size(0) == rows,
              "attribute: expected one candidate per history row, got ", candidate.size(0), " for ",
              rows);
  const auto query = attention_query(candidate, rows);
  Attribution a;
  // Uniform weights over the valid positions: a masked softmax of equal scores.
  const auto uniform = masked_softmax(torch::zeros(h.mask.sizes(), h.keys.options()), h.mask);
  const auto even = attention_->position_terms(h.keys, h.mask, uniform);
  const auto even_context =
      even.constant.defined() ? even.terms.sum(1) + even.constant : even.terms.sum(1);
  a.uniform_logits = head_forward(h, even_context, candidate, query, item);
  if (options.head_type() != HeadKind::dot) return a;
  const auto attended = attention_(query, h.keys, h.mask, h.key_projection);
  const auto split = attention_->position_terms(
      h.keys, h.mask, attended.head_weights.defined() ? attended.head_weights : attended.weights);
  a.contributions = (split.terms * candidate.unsqueeze(1)).sum(2);
  a.rest = split.constant.defined() ? candidate.matmul(split.constant)
                                    : torch::zeros({rows}, candidate.options());
  if (item_bias_) a.rest = a.rest + item_bias_(item).squeeze(1);
  return a;
}

}  // namespace attnrec
