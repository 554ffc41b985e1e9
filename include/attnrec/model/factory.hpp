#pragma once
/// \file The one place where configuration becomes module options.

#include "attnrec/config/config.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Options of the recommender described by `config` for the given vocabulary sizes
/// (`category_vocab` counts padding and unknown; it matters only with model.embedding.category).
RecommenderOptions make_recommender_options(const Config& config, std::int64_t item_vocab,
                                            std::int64_t user_vocab,
                                            std::int64_t category_vocab = 0);

/// Builds the model; parameters are initialised from the current torch seed.
Recommender build_recommender(const Config& config, std::int64_t item_vocab,
                              std::int64_t user_vocab, std::int64_t category_vocab = 0);

}  // namespace attnrec
