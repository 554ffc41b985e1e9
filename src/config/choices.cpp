#include "attnrec/config/choices.hpp"

#include <algorithm>

namespace attnrec {

template <>
const std::vector<ChoiceInfo>& choices<HeaderMode>() {
  static const std::vector<ChoiceInfo> v = {{"auto", ""}, {"yes", ""}, {"no", ""}};
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<BadLinePolicy>() {
  static const std::vector<ChoiceInfo> v = {{"error", ""}, {"skip", ""}};
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<NonFinitePolicy>() {
  static const std::vector<ChoiceInfo> v = {{"error", ""}, {"skip", ""}};
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<EncoderKind>() {
  static const std::vector<ChoiceInfo> v = {
      {"lstm", "LSTM over the history (padding masked, never seen by attention)"},
      {"gru", "GRU over the history"},
      {"none", "attention directly over the item embeddings (DIN-style)"},
      {"transformer",
       "self-attention blocks over the history (SASRec, BST): each position attends to the "
       "others (causal or not), then a feed-forward network; see the other model.encoder "
       "options"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<TransformerNorm>() {
  static const std::vector<ChoiceInfo> v = {
      {"pre", "x + f(norm(x)) in each sub-layer, one norm after the last block (stable to train)"},
      {"post", "norm(x + f(x)) in each sub-layer (the original Transformer, BST)"},
      {"sasrec",
       "Kang & McAuley's arrangement: the normalised input is the attention query and the "
       "residual, the raw input gives keys and values; one norm after the last block"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<HeadKind>() {
  static const std::vector<ChoiceInfo> v = {
      {"mlp", "an MLP over [context, candidate, ...] (see model.head.inputs and hidden)"},
      {"dot",
       "logit = context . candidate embedding (+ item bias): a factorised score; with a self "
       "query the user state is computed once and full ranking is one matrix product"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<QueryKind>() {
  static const std::vector<ChoiceInfo> v = {
      {"target", "the candidate item's embedding, projected to the encoder size (DIN-style)"},
      {"self", "a learned query vector (sequence-only tasks without a candidate)"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<PositionalKind>() {
  static const std::vector<ChoiceInfo> v = {
      {"none", "no positional information beyond what the encoder carries"},
      {"sinusoidal", "fixed sine/cosine encoding added to the encoder outputs"},
      {"learned", "a learned vector per position added to the encoder outputs"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<HeadInputs>() {
  static const std::vector<ChoiceInfo> v = {{"all", ""}, {"context_candidate", ""}};
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<ActivationKind>() {
  static const std::vector<ChoiceInfo> v = {
      {"relu", "max(0, x)"},
      {"gelu", "Gaussian error linear unit"},
      {"tanh", "hyperbolic tangent"},
      {"sigmoid", "logistic function"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<OptimizerKind>() {
  static const std::vector<ChoiceInfo> v = {{"adam", ""}, {"lazy_adam", ""}};
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<Precision>() {
  static const std::vector<ChoiceInfo> v = {
      {"fp32", "every operation in float32"},
      {"bf16",
       "autocast: matrix products and convolutions in bfloat16 (CUDA, or CPU where LibTorch "
       "supports it), reductions, softmax and the loss in float32; weights, gradients and "
       "Adam's moments stay float32"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<DistBackend>() {
  static const std::vector<ChoiceInfo> v = {
      {"auto", "nccl when train.device is CUDA and this build has NCCL, else gloo"},
      {"gloo", "Gloo: CPU tensors over TCP (CUDA gradients are copied through host memory)"},
      {"nccl",
       "NCCL: CUDA tensors, GPU to GPU (a CUDA build of LibTorch with NCCL, one GPU "
       "per process)"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<LrSchedule>() {
  static const std::vector<ChoiceInfo> v = {{"constant", ""}, {"warmup_linear", ""}};
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<StopMetric>() {
  static const std::vector<ChoiceInfo> v = {
      {"auc", "ROC AUC of the validation samples (higher is better)"},
      {"gauc", "AUC per user, weighted by the user's samples (needs a user column)"},
      {"logloss", "binary cross-entropy of the validation samples (lower is better)"},
      {"hr@10",
       "hit rate at 10 of each validation positive ranked against its frozen candidates "
       "(data.valid_candidates)"},
      {"ndcg@10", "NDCG at 10 over the frozen validation candidates (data.valid_candidates)"},
      {"mrr", "mean reciprocal rank over the frozen validation candidates"}};
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<LossKind>() {
  static const std::vector<ChoiceInfo> v = {
      {"bce",
       "binary cross-entropy on every labelled sample, or on the positive and each of its "
       "drawn negatives (optimises logloss, and AUC through it)"},
      {"bpr",
       "pairwise: -log sigmoid(positive - negative) over each drawn negative (optimises "
       "AUC and rank directly; scores are not probabilities)"},
      {"sampled_softmax",
       "softmax over the positive and its drawn negatives (or the batch's shared pool, "
       "train.negatives.shared_pool), with the log-q correction for popularity sampling "
       "(optimises rank at the top: HR/NDCG/MRR; scores are not probabilities)"},
      {"gbce",
       "gSASRec's generalised BCE (Petrov & Macdonald 2023): BCE over the positive and its "
       "drawn negatives with the positive's probability raised to beta = 1 - t (1 - alpha), "
       "alpha the negative sampling rate and t = train.gbce_t (counters the overconfidence "
       "of BCE with few negatives)"},
      {"softmax",
       "full softmax cross-entropy over every item of the catalogue (no drawn negatives; "
       "next-item training of a factorised model), computed in blocks of "
       "train.softmax_block items so that memory stays bounded"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<RankingProtocol>() {
  static const std::vector<ChoiceInfo> v = {
      {"sampled", "each validation positive against its frozen candidates (data.valid_candidates)"},
      {"full",
       "each validation positive against every item its user has not interacted with "
       "(a factorised model ranks them as one blocked matrix product)"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<NegativeDistribution>() {
  static const std::vector<ChoiceInfo> v = {
      {"uniform", "every item equally likely"},
      {"popularity", "proportional to count^exponent, counting positive training targets"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<NegativeExclusion>() {
  static const std::vector<ChoiceInfo> v = {
      {"train", "never an item the user interacted with anywhere in the training file"},
      {"all",
       "nor in data.valid or data.test (uses the held-out files' items: leaks which "
       "items a user will interact with into training, as some papers do; not the default)"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<LogFormat>() {
  static const std::vector<ChoiceInfo> v = {
      {"auto", "detected from the first lines"},
      {"movielens", "ratings.dat of MovieLens-1M: `user::item::rating::time`"},
      {"movielens_tsv", "u.data of MovieLens-100K: `user<TAB>item<TAB>rating<TAB>time`"},
      {"sequence", "`user item1 item2 ...` per line, oldest first (no timestamps)"},
      {"amazon", "JSON lines with reviewerID, asin, unixReviewTime and (optional) overall"},
      {"taobao", "`user,item,category,behavior,timestamp` (UserBehavior.csv)"},
      {"csv", "any delimited file, columns mapped by preprocess.columns"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<DedupPolicy>() {
  static const std::vector<ChoiceInfo> v = {
      {"first", "keep the earliest interaction of each (user, item) pair"},
      {"last", "keep the latest"},
      {"none", "keep every repetition"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<SplitProtocol>() {
  static const std::vector<ChoiceInfo> v = {
      {"leave_last_out",
       "each user's last interaction is the test target, the one before the validation target"},
      {"temporal",
       "global time cut: the latest preprocess.test_fraction of events by timestamp are test, "
       "the preprocess.valid_fraction before them validation"},
  };
  return v;
}

template <>
const std::vector<ChoiceInfo>& choices<PreprocessSampling>() {
  static const std::vector<ChoiceInfo> v = {
      {"uniform", "every item equally likely"},
      {"popularity", "proportional to the item's frequency in the training split"},
  };
  return v;
}

const std::vector<ChoiceInfo>& column_roles() {
  static const std::vector<ChoiceInfo> v = {{"label", "0/1 click"},
                                            {"user", "user id"},
                                            {"item", "candidate item id"},
                                            {"history", "item ids, oldest first"},
                                            {"time", "integer timestamp of the target event"},
                                            {"ignore", "a column that is skipped"}};
  return v;
}

std::vector<std::string> choice_names(const std::vector<ChoiceInfo>& list) {
  std::vector<std::string> names;
  names.reserve(list.size());
  for (const auto& c : list) names.push_back(c.name);
  return names;
}

std::string choice_docs(const std::vector<ChoiceInfo>& list) {
  std::string out;
  for (const auto& c : list) {
    if (!c.help.empty()) out += "- `" + c.name + "`: " + c.help + "\n";
  }
  return out;
}

const std::vector<ChoiceInfo>& attention_variants() {
  // Sorted by name. Each has a factory in model/attention_registry.cpp (a test checks both).
  static const std::vector<ChoiceInfo> v = {
      {"additive", "Bahdanau/MLP: score = v . tanh(W_h h_t + W_q q)"},
      {"cosine", "score = cos(q, h_t) / temperature (temperature 0.1, fixed)"},
      {"dot", "score = q . h_t"},
      {"last",
       "no scoring: the encoder output at the newest valid position (SASRec's user state; pair it "
       "with a causal transformer)"},
      {"multi_head", "scaled dot product in `model.attention.heads` heads, outputs concatenated"},
      {"none", "no attention: masked mean of the encoder outputs (the pooling baseline)"},
      {"scaled_dot", "score = q . h_t / sqrt(d)"}};
  return v;
}

}  // namespace attnrec
