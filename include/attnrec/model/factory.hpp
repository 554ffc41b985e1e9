#pragma once
/// \file The one place where configuration becomes module options.

#include "attnrec/config/config.hpp"
#include "attnrec/model/recommender.hpp"

namespace attnrec {

/// Options of the recommender described by `config` for the given vocabulary sizes.
RecommenderOptions make_recommender_options(const Config& config, std::int64_t item_vocab,
                                            std::int64_t user_vocab);

/// Builds the model; parameters are initialised from the current torch seed.
Recommender build_recommender(const Config& config, std::int64_t item_vocab,
                              std::int64_t user_vocab);

}  // namespace attnrec
