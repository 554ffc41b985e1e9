#include "attnrec/model/factory.hpp"

namespace attnrec {

RecommenderOptions make_recommender_options(const Config& config, std::int64_t item_vocab,
                                            std::int64_t user_vocab, std::int64_t category_vocab) {
  const auto& m = config.model;
  RecommenderOptions o(item_vocab, m.embedding.dim);
  o.user_vocab(m.embedding.user ? user_vocab : 0)
      .has_item(has_column(config.data, "item"))
      .share_candidate(m.embedding.share_candidate)
      .query(m.attention.query)
      .positional(m.attention.positional)
      .max_history(config.data.max_history)
      .sparse_embeddings(config.train.optimizer == OptimizerKind::lazy_adam)
      .head_type(m.head.type)
      .head_inputs(m.head.inputs)
      .head_hidden(m.head.hidden)
      .activation(m.head.activation)
      .head_dropout(m.head.dropout)
      .embedding_dropout(m.embedding.dropout)
      .embedding_init_std(m.embedding.init_std)
      .item_bias(m.head.item_bias)
      .category_vocab(m.embedding.category ? category_vocab : 0)
      .category_dim(m.embedding.category_dim)
      .encoder(SequenceEncoderOptions(item_representation_size(m))
                   .type(m.encoder.type)
                   .hidden_size(m.encoder.hidden)
                   .layers(m.encoder.layers)
                   .bidirectional(m.encoder.bidirectional)
                   .dropout(m.encoder.dropout)
                   .transformer(TransformerEncoderOptions(item_representation_size(m))
                                    .layers(m.encoder.layers)
                                    .heads(m.encoder.heads)
                                    .ff_size(m.encoder.ff_size)
                                    .activation(m.encoder.activation)
                                    .norm(m.encoder.norm)
                                    .dropout(m.encoder.dropout)
                                    .attention_dropout(m.encoder.attention_dropout)
                                    .causal(m.encoder.causal)
                                    .positional(m.encoder.positional)
                                    .max_length(config.data.max_history)
                                    .scale_input(m.encoder.scale_input)))
      .attention(AttentionOptions(encoder_output_size(m))
                     .type(m.attention.type)
                     .heads(m.attention.heads)
                     .hidden(m.attention.hidden));
  return o;
}

Recommender build_recommender(const Config& config, std::int64_t item_vocab,
                              std::int64_t user_vocab, std::int64_t category_vocab) {
  return Recommender(make_recommender_options(config, item_vocab, user_vocab, category_vocab));
}

}  // namespace attnrec
