#include "attnrec/config/fields.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "attnrec/config/choices.hpp"
#include "attnrec/util/device_spec.hpp"
#include "attnrec/util/error.hpp"
#include "attnrec/util/files.hpp"
#include "attnrec/util/strings.hpp"

namespace attnrec {
namespace {

using nlohmann::json;

/// Chainable declaration of one option; keeps the table below readable.
class Decl {
 public:
  Decl(std::string name, std::function<FieldRef(Config&)> ref) {
    spec_.name = std::move(name);
    spec_.ref = std::move(ref);
  }
  Decl& def(json v) {
    spec_.default_value = std::move(v);
    return *this;
  }
  Decl& help(std::string h) {
    spec_.help = std::move(h);
    return *this;
  }
  Decl& min(double v, bool exclusive = false) {
    spec_.min = v;
    spec_.min_exclusive = exclusive;
    return *this;
  }
  Decl& max(double v, bool exclusive = false) {
    spec_.max = v;
    spec_.max_exclusive = exclusive;
    return *this;
  }
  Decl& choices(std::vector<std::string> c) {
    spec_.choices = std::move(c);
    return *this;
  }
  Decl& one_of(const std::vector<ChoiceInfo>& list) {
    spec_.choice_list = &list;
    spec_.choices = choice_names(list);
    return *this;
  }
  /// The option may change when a run is resumed.
  Decl& resumable() {
    spec_.resumable = true;
    return *this;
  }
  /// An option of `attnrec preprocess` only: training ignores it.
  Decl& preprocess_only() {
    spec_.training = false;
    return *this;
  }
  Decl& check(std::function<std::optional<std::string>(const json&)> f, std::string doc) {
    spec_.check = std::move(f);
    spec_.check_doc = std::move(doc);
    return *this;
  }
  operator FieldSpec() const { return spec_; }  // NOLINT: implicit by design, for the table

 private:
  FieldSpec spec_;
};

template <class E>
ChoiceRef choice_ref(E& field) {
  return {&choices<E>(), [&field] { return static_cast<std::size_t>(field); },
          [&field](std::size_t i) { field = static_cast<E>(i); }};
}

template <class E>
const std::vector<ChoiceInfo>& choices_of(E*) {
  return choices<E>();
}

// The option name is the member path in Config, so one token gives both.
#define ATTNREC_FIELD(path) Decl(#path, [](Config& c) -> FieldRef { return &c.path; })
// A choice option: an enum in Config, its allowed values from choices.hpp.
#define ATTNREC_CHOICE(path)              \
  Decl(#path, [](Config& c) -> FieldRef { \
    return choice_ref(c.path);            \
  }).one_of(choices_of(static_cast<decltype(Config{}.path)*>(nullptr)))

std::optional<std::string> check_init_method(const json& v) {
  const auto& text = v.get_ref<const std::string&>();
  if (text == "env://") return std::nullopt;
  if (text.rfind("file:///", 0) == 0 && text.size() > 8) return std::nullopt;
  return fmt::format("expected env:// or file:///ABSOLUTE/PATH, got {}", quote_for_message(text));
}

std::optional<std::string> check_device(const json& v) {
  const auto& text = v.get_ref<const std::string&>();
  if (parse_device_spec(text)) return std::nullopt;
  return fmt::format("expected auto, cpu, cuda or cuda:N (N from 0 to {}), got {}", kMaxCudaIndex,
                     quote_for_message(text));
}

std::optional<std::string> check_single_char(const json& v) {
  const auto s = v.get<std::string>();
  if (s.size() == 1 && s != "\t" && s != "\n" && s != "\r") return std::nullopt;
  return "expected a single character other than tab or newline, got " + v.dump();
}

std::vector<FieldSpec> data_fields() {
  return {
      ATTNREC_FIELD(data.train)
          .def("")
          .help(
              "Training samples (TSV, see data/README.md). The vocabulary is built from this file "
              "only. Relative paths are relative to the working directory."),
      ATTNREC_FIELD(data.valid)
          .resumable()
          .def("")
          .help("Validation samples, scored after every epoch (empty: no validation)."),
      ATTNREC_FIELD(data.valid_candidates)
          .resumable()
          .def("")
          .help("Frozen ranking candidates of the validation positives (`user, item, history, "
                "time, negatives`, as `attnrec preprocess` writes valid_candidates.tsv), ranked "
                "at every validation when train.early_stopping.metric is hr@10, ndcg@10 or mrr. "
                "Empty: the valid_candidates.tsv beside data.valid, if there is one."),
      ATTNREC_FIELD(data.test).resumable().def("").help(
          "Test samples, scored at the end of training "
          "(empty: no test evaluation)."),
      ATTNREC_FIELD(data.columns)
          .def({"label", "user", "item", "history"})
          .choices(choice_names(column_roles()))
          .help("Role of each tab-separated column, in file order. `history` is required; "
                "`label`, `user`, `item` and `time` at most once; `ignore` skips a column. "
                "`time` is the integer timestamp of the target event (written by `attnrec "
                "preprocess`, checked by `attnrec check-data`); the model does not use it."),
      ATTNREC_CHOICE(data.header)
          .def("auto")
          .help("Whether the first line names the columns. `auto`: it does when every field is a "
                "column role name; a header whose order differs from `data.columns` is an error."),
      ATTNREC_FIELD(data.history_separator)
          .def(",")
          .check(check_single_char, "a single character")
          .help("Separator between the item ids of a history."),
      ATTNREC_FIELD(data.max_history)
          .def(50)
          .min(1)
          .max(100000)
          .help("Longest history kept; longer ones keep their most recent items."),
      ATTNREC_FIELD(data.min_count)
          .def(1)
          .min(1)
          .help(
              "Item and user ids seen fewer times in the training file map to out-of-vocabulary."),
      ATTNREC_FIELD(data.max_vocab)
          .def(0)
          .min(0)
          .help("Keep at most this many of the most frequent ids per vocabulary (0: no cap); the "
                "rest map to out-of-vocabulary."),
      ATTNREC_CHOICE(data.on_bad_line)
          .def("error")
          .help("What a malformed line does: `error` stops with file, line and problem; `skip` "
                "drops it and counts it in the log and the run summary."),
      ATTNREC_FIELD(data.shuffle)
          .def(true)
          .help("Shuffle the training samples every epoch (deterministic from `train.seed`)."),
      ATTNREC_FIELD(data.prefetch_batches)
          .resumable()
          .def(2)
          .min(0)
          .max(64)
          .help(
              "Batches prepared ahead on a background thread (0: prepare in the training thread)."),
      ATTNREC_FIELD(data.item_categories)
          .def("")
          .help(
              "Item side feature: a file of `item<TAB>category` lines with an `item<TAB>category` "
              "header (`attnrec preprocess` writes `item_categories.tsv` when the log has "
              "categories). Used when `model.embedding.category` is true."),
  };
}

std::vector<FieldSpec> model_fields() {
  return {
      ATTNREC_FIELD(model.embedding.dim)
          .def(64)
          .min(1)
          .max(4096)
          .help("Size of the item (and user) embeddings."),
      ATTNREC_FIELD(model.embedding.user)
          .def(false)
          .help("Add a user embedding to the dense head's input (needs a `user` column)."),
      ATTNREC_FIELD(model.embedding.share_candidate)
          .def(true)
          .help("The candidate item uses the history's embedding table (false: a separate table)."),
      ATTNREC_FIELD(model.embedding.category)
          .def(false)
          .help(
              "Embed each item's category (from `data.item_categories`) and concatenate it to the "
              "item embedding, for history items and the candidate alike."),
      ATTNREC_FIELD(model.embedding.category_dim)
          .def(16)
          .min(1)
          .max(4096)
          .help("Size of the category embedding."),
      ATTNREC_FIELD(model.embedding.init_std)
          .def(0.0)
          .min(0.0)
          .max(10.0)
          .help("Standard deviation of the initial embeddings (items, users, categories, the "
                "transformer's learned positions; padding rows stay zero). 0 keeps LibTorch's "
                "N(0, 1). Small values (SASRec and RecBole use about 0.02) keep the first dot "
                "products near zero, so a dot head with scaled inputs does not start saturated."),
      ATTNREC_FIELD(model.embedding.dropout)
          .def(0.0)
          .min(0.0)
          .max(1.0, true)
          .help("Dropout on the history's item embeddings during training (a regulariser for "
                "sparse logs; the candidate's embedding is not dropped)."),
      ATTNREC_CHOICE(model.encoder.type).def("lstm").help("Sequence encoder over the history."),
      ATTNREC_FIELD(model.encoder.hidden)
          .def(64)
          .min(1)
          .max(4096)
          .help("Hidden size of the LSTM/GRU (per direction); a transformer keeps the item "
                "representation's size."),
      ATTNREC_FIELD(model.encoder.layers)
          .def(1)
          .min(1)
          .max(8)
          .help("Stacked encoder layers (transformer: blocks)."),
      ATTNREC_FIELD(model.encoder.bidirectional)
          .def(false)
          .help("Run the encoder in both directions and concatenate the outputs."),
      ATTNREC_FIELD(model.encoder.dropout)
          .def(0.0)
          .min(0.0)
          .max(1.0, true)
          .help("LSTM/GRU: dropout between stacked layers (needs `layers` > 1). Transformer: "
                "dropout on its input, inside the feed-forward network and on each residual "
                "branch."),
      ATTNREC_FIELD(model.encoder.heads)
          .def(1)
          .min(1)
          .max(64)
          .help("Transformer: self-attention heads; must divide the item representation size."),
      ATTNREC_FIELD(model.encoder.ff_size)
          .def(0)
          .min(0)
          .max(65536)
          .help("Transformer: hidden size of the position-wise feed-forward network (0: the item "
                "representation size)."),
      ATTNREC_CHOICE(model.encoder.activation)
          .def("relu")
          .help("Transformer: activation inside the feed-forward network."),
      ATTNREC_CHOICE(model.encoder.norm).def("pre").help("Transformer: where layer norm sits."),
      ATTNREC_FIELD(model.encoder.attention_dropout)
          .def(0.0)
          .min(0.0)
          .max(1.0, true)
          .help("Transformer: dropout on the self-attention weights."),
      ATTNREC_FIELD(model.encoder.causal)
          .def(true)
          .help("Transformer: position t attends to positions up to t only (SASRec); false lets "
                "every position see the whole history (BST, BERT4Rec). Padding is always "
                "masked."),
      ATTNREC_CHOICE(model.encoder.positional)
          .def("learned")
          .help("Transformer: position encoding added to its input, counted back from the newest "
                "event (which always gets position 0)."),
      ATTNREC_FIELD(model.encoder.scale_input)
          .def(false)
          .help("Transformer: multiply the item embeddings by sqrt(size) before adding positions "
                "(as SASRec does)."),
      ATTNREC_FIELD(model.attention.type)
          .def("additive")
          .one_of(attention_variants())
          .help("Attention scoring function over the encoder outputs (softmax over valid positions "
                "only; an all-padding history gets a zero context vector)."),
      ATTNREC_CHOICE(model.attention.query).def("target").help("What the attention query is."),
      ATTNREC_FIELD(model.attention.heads)
          .def(4)
          .min(1)
          .max(64)
          .help("Heads of `multi_head` attention; must divide the encoder output size."),
      ATTNREC_FIELD(model.attention.hidden)
          .def(64)
          .min(1)
          .max(4096)
          .help("Hidden size of the `additive` attention MLP."),
      ATTNREC_CHOICE(model.attention.positional)
          .def("none")
          .help("Positional encoding added before attention."),
      ATTNREC_CHOICE(model.head.type).def("mlp").help("How the logit is computed."),
      ATTNREC_CHOICE(model.head.inputs)
          .def("all")
          .help("What the dense head sees: `all` = [attended context, candidate embedding, query ⊙ "
                "context, user embedding]; `context_candidate` = [attended context, candidate "
                "embedding] only (the plain DIN-style head, and the benchmark's peer model)."),
      ATTNREC_FIELD(model.head.hidden)
          .def(json::array({64, 32}))
          .min(1)
          .max(65536)
          .help("Hidden layer sizes of the dense head's MLP (empty: a single linear layer)."),
      ATTNREC_CHOICE(model.head.activation)
          .def("relu")
          .help("Activation between the head's layers."),
      ATTNREC_FIELD(model.head.dropout)
          .def(0.0)
          .min(0.0)
          .max(1.0, true)
          .help("Dropout after each hidden layer of the head."),
      ATTNREC_FIELD(model.head.item_bias)
          .def(false)
          .help("Add a learned per-item scalar to the logit (the candidate's popularity prior). "
                "Needs an item column; with `lazy_adam` it is a sparse table like the embeddings."),
  };
}

std::vector<FieldSpec> train_fields() {
  return {
      ATTNREC_FIELD(train.epochs)
          .resumable()
          .def(3)
          .min(1)
          .max(100000)
          .help("Passes over the training data."),
      ATTNREC_FIELD(train.batch_size).def(256).min(1).max(1 << 20).help("Samples per step."),
      ATTNREC_CHOICE(train.optimizer)
          .def("adam")
          .help("`adam`: torch's dense Adam over every parameter each step. `lazy_adam`: embedding "
                "tables get sparse gradients and only the rows in the batch are updated (moments "
                "included), as PyTorch's SparseAdam; other parameters get dense Adam. The step's "
                "cost then no longer grows with the vocabulary; untouched rows keep their value "
                "instead of drifting with momentum. `weight_decay` is then lazy on the tables (see "
                "there)."),
      ATTNREC_FIELD(train.lr).def(1e-3).min(0.0, true).max(10.0).help("Adam learning rate."),
      ATTNREC_FIELD(train.beta1).def(0.9).min(0.0).max(1.0, true).help("Adam beta1."),
      ATTNREC_FIELD(train.beta2).def(0.999).min(0.0).max(1.0, true).help("Adam beta2."),
      ATTNREC_FIELD(train.eps).def(1e-8).min(0.0, true).max(1.0).help("Adam epsilon."),
      ATTNREC_FIELD(train.weight_decay)
          .def(0.0)
          .min(0.0)
          .max(1.0)
          .help("L2 penalty added to the gradients (Adam's `weight_decay`). With `lazy_adam` it is "
                "lazy on the embedding tables, as TensorFlow's LazyAdam: a row decays only in the "
                "steps whose batch touches it (its gradient gets weight_decay x row); dense "
                "parameters decay every step."),
      ATTNREC_CHOICE(train.schedule)
          .def("constant")
          .help("Learning-rate schedule: `constant`, or `warmup_linear` (linear warm-up over "
                "`warmup_steps`, then linear decay to 0 at the last step)."),
      ATTNREC_FIELD(train.warmup_steps)
          .def(0)
          .min(0)
          .help("Warm-up steps of the `warmup_linear` schedule."),
      ATTNREC_FIELD(train.grad_clip)
          .def(0.0)
          .min(0.0)
          .help("Clip the global gradient norm to this value (0: no clipping)."),
      ATTNREC_FIELD(train.seed)
          .def(42)
          .min(0)
          .help("Seed of every random choice: initialisation, shuffling, dropout."),
      ATTNREC_FIELD(train.device)
          .resumable()
          .def("auto")
          .check(check_device, "auto, cpu, cuda or cuda:N")
          .help("Where to train: `auto` picks CUDA when available."),
      ATTNREC_CHOICE(train.precision)
          .resumable()
          .def("fp32")
          .help("Arithmetic of the training forward pass. `bf16` runs it under LibTorch's "
                "autocast (bfloat16 matrix products; weights, gradients, Adam's moments and the "
                "loss stay float32): faster on GPUs and on CPUs with bfloat16 instructions "
                "(AVX-512 BF16, AMX), slower on CPUs without them. Validation and `evaluate` "
                "always run in float32. A resumed run may change it; bit-identical resume holds "
                "only when it does not."),
      ATTNREC_FIELD(train.deterministic)
          .resumable()
          .def(true)
          .help("On CUDA, use deterministic kernels only (cuDNN's deterministic algorithms, "
                "PyTorch's deterministic algorithms, cuBLAS's fixed workspace "
                "CUBLAS_WORKSPACE_CONFIG=:4096:8 unless set), so that a run repeats and resumes "
                "bit for bit. `false` lets CUDA pick faster non-deterministic kernels (atomic "
                "scatter-adds in embedding backward, cuDNN's own choice): results then differ "
                "in the last bits from run to run. No effect on the CPU, whose kernels are "
                "deterministic."),
      ATTNREC_FIELD(train.threads)
          .resumable()
          .def(0)
          .min(0)
          .max(1024)
          .help("Intra-op CPU threads (0: the physical cores). Use fewer when other processes "
                "compete for the cores."),
      ATTNREC_FIELD(train.validate_every_steps)
          .resumable()
          .def(0)
          .min(0)
          .help("Also validate every N steps (0: only at the end of each epoch)."),
      ATTNREC_FIELD(train.log_every_steps)
          .resumable()
          .def(100)
          .min(1)
          .help("Steps between progress log lines when stderr is not a terminal (or TERM=dumb)."),
      ATTNREC_FIELD(train.tensorboard)
          .resumable()
          .def(true)
          .help("Write TensorBoard event files to RUN/tb/ as training goes: the training loss, "
                "learning rate and samples/s at every progress update, and every numeric field "
                "of each validation row of metrics.jsonl (tag split/field), by global step. A "
                "resumed run starts a new file that continues the step axis."),
      ATTNREC_FIELD(train.distributed.init)
          .resumable()
          .def("env://")
          .check(check_init_method, "env:// or file:///PATH")
          .help("Rendezvous of a multi-process run (ignored by a single process): `env://` "
                "connects to a TCP store that rank 0 serves at MASTER_ADDR:MASTER_PORT; "
                "`file:///PATH` uses a file on a filesystem that every rank sees (it must not "
                "exist from an earlier run)."),
      ATTNREC_FIELD(train.distributed.timeout_s)
          .resumable()
          .def(300.0)
          .min(1.0)
          .max(86400.0)
          .help("Seconds a process waits for the others, at the rendezvous and in every "
                "collective; a dead or hung rank ends the job after at most this long."),
      ATTNREC_FIELD(train.distributed.bucket_mb)
          .def(25)
          .min(1)
          .max(4096)
          .help("Dense gradients are summed across processes in buckets of this many MiB (all "
                "in flight at once). Part of what makes a run bit-identical, so fixed on resume."),
      ATTNREC_CHOICE(train.distributed.backend)
          .resumable()
          .def("auto")
          .help("The c10d process group of a multi-process run (ignored by a single process). "
                "Every process of a CUDA run uses the GPU train.device names, or cuda:LOCAL_RANK "
                "when it says `cuda` or `auto`. `nccl` needs CUDA devices and a LibTorch built "
                "with NCCL (the PyPI build; `attnrec --version` says). A resumed run may change "
                "it; bit-identical resume holds only when it does not."),
      ATTNREC_CHOICE(train.on_nonfinite)
          .resumable()
          .def("error")
          .help(
              "A non-finite loss (or clipped gradient norm): `error` stops naming the step, before "
              "the optimizer applies it (no checkpoint is written from a diverged model); `skip` "
              "drops that batch's update and counts it in the summary."),
  };
}

/// The loss, drawn negatives and early stopping (after train_fields() in the table).
std::vector<FieldSpec> train_objective_fields() {
  return {
      ATTNREC_CHOICE(train.loss)
          .def("bce")
          .help("Training loss. `bpr` and `sampled_softmax` need drawn negatives "
                "(`train.negatives.per_positive` >= 1); each scores a positive and its negatives "
                "against one history, encoded once."),
      ATTNREC_FIELD(train.next_item)
          .def(false)
          .help("Next-item training (SASRec): every position t of a history is trained to score "
                "the event after it (history item t + 1, the sample's item for the newest "
                "position) against `negatives.per_positive` drawn negatives of its own, all "
                "positions in one forward pass. Reads sequence windows (train_sequences.tsv from "
                "`attnrec preprocess`); needs a factorised model (head.type dot, attention.query "
                "self, attention.type last) over a causal encoder."),
      ATTNREC_FIELD(train.gbce_t)
          .def(0.75)
          .min(0.0)
          .max(1.0)
          .help("`gbce` only: calibration t of gSASRec's beta = 1 - t (1 - alpha), alpha the "
                "negative sampling rate (negatives / (items - 1)). 0 is plain BCE; 1 calibrates "
                "fully; the paper's recommended 0.75 is the default."),
      ATTNREC_FIELD(train.softmax_block)
          .def(8192)
          .min(1)
          .help("`softmax` only: items scored per block of the full softmax. Peak memory of the "
                "loss beyond the model and its gradients is about 2 x (positions in a batch) x "
                "block floats, whatever the catalogue's size. With block >= the catalogue the "
                "softmax is kept for the backward pass instead of recomputed (a quarter fewer "
                "matrix products, M x items floats)."),
      ATTNREC_FIELD(train.label_smoothing)
          .def(0.0)
          .min(0.0)
          .max(0.5, true)
          .help("`bce` only: targets become 1 - s/2 and s/2 instead of 1 and 0."),
      ATTNREC_FIELD(train.negatives.per_positive)
          .def(0)
          .min(0)
          .max(1024)
          .help("Negatives drawn by the trainer for every positive training sample, afresh each "
                "epoch (0: train on the file's samples and labels as they are). The training "
                "file's own negatives (label 0) are then ignored; validation and test keep their "
                "frozen negatives. A draw depends only on (train.seed, epoch, sample), so resume "
                "stays exact."),
      ATTNREC_FIELD(train.negatives.shared_pool)
          .def(0)
          .min(0)
          .max(65536)
          .help("A pool of this many negatives drawn for each batch and shared by all its "
                "samples (and, with next_item, positions), scored as one matrix product; 0: "
                "`per_positive` negatives of each sample's own. A pool item equal to a case's "
                "positive is masked out of that case's loss. Needs a factorised model; exclusive "
                "with `per_positive`. A pool depends only on (train.seed, epoch, batch)."),
      ATTNREC_CHOICE(train.negatives.sampling)
          .def("uniform")
          .help("How drawn negatives are distributed over the items."),
      ATTNREC_FIELD(train.negatives.exponent)
          .def(0.75)
          .min(0.0)
          .max(2.0)
          .help("`popularity` sampling: weight = (positive count)^exponent."),
      ATTNREC_CHOICE(train.negatives.exclude)
          .def("train")
          .help("Which interactions a drawn negative must avoid (always: the sample's own "
                "history and positive)."),
      ATTNREC_CHOICE(train.early_stopping.metric)
          .def("auc")
          .help("Validation metric that selects the best model and drives early stopping."),
      ATTNREC_CHOICE(train.early_stopping.protocol)
          .def("sampled")
          .help("How hr@10, ndcg@10 and mrr rank the validation positives: against their "
                "frozen candidates, or against every item the user has not interacted with in "
                "the training data (a factorised model: one blocked matrix product)."),
      ATTNREC_FIELD(train.early_stopping.patience)
          .resumable()
          .def(0)
          .min(0)
          .help("Stop after this many validations without improvement (0: never stop early)."),
  };
}

std::vector<FieldSpec> eval_and_checkpoint_fields() {
  return {
      ATTNREC_FIELD(eval.batch_size)
          .resumable()
          .def(1024)
          .min(1)
          .max(1 << 22)
          .help("Samples per batch when scoring (validation, evaluate, predict)."),
      ATTNREC_FIELD(eval.threshold)
          .resumable()
          .def(0.5)
          .min(0.0, true)
          .max(1.0, true)
          .help("Probability threshold for accuracy, precision, recall and F1."),

      ATTNREC_FIELD(checkpoint.every_steps)
          .resumable()
          .def(0)
          .min(0)
          .help("Write a checkpoint every N optimizer steps (0: off)."),
      ATTNREC_FIELD(checkpoint.every_epoch)
          .resumable()
          .def(true)
          .help("Write a checkpoint at the end of every epoch."),
      ATTNREC_FIELD(checkpoint.keep_last)
          .resumable()
          .def(3)
          .min(1)
          .max(1000)
          .help("Periodic checkpoints kept (older ones are deleted; `best.pt` and `final.pt` are "
                "kept "
                "separately)."),
  };
}

std::optional<std::string> check_delimiter(const json& v) {
  const auto s = v.get<std::string>();
  if (s.size() == 1 && s != "\n" && s != "\r") return std::nullopt;
  return "expected a single character other than a newline (on the command line $'\\t' for a "
         "tab), got " +
         v.dump();
}

/// `attnrec preprocess` (training ignores them: a resume or scoring never compares them).
std::vector<FieldSpec> preprocess_fields() {
  return {
      ATTNREC_CHOICE(preprocess.format)
          .preprocess_only()
          .def("auto")
          .help("Format of the interaction log."),
      ATTNREC_FIELD(preprocess.delimiter)
          .preprocess_only()
          .def(",")
          .check(check_delimiter, "a single character")
          .help("Generic csv: the field delimiter."),
      ATTNREC_FIELD(preprocess.columns)
          .preprocess_only()
          .def(json::array())
          .help("Generic csv: `ROLE=COLUMN` pairs for the roles user and item (required), time, "
                "rating, category and behavior; COLUMN is a 0-based index or a header name (a "
                "name implies a header line). E.g. `user=0,item=1,time=3`."),
      ATTNREC_FIELD(preprocess.header)
          .preprocess_only()
          .def(false)
          .help("Generic csv with index-only columns: the first line is a header (skipped)."),
      ATTNREC_FIELD(preprocess.min_rating)
          .preprocess_only()
          .def(nullptr)
          .help("Keep only interactions rated at least this (formats with a rating; e.g. 4 for "
                "MovieLens positives). null: keep every interaction."),
      ATTNREC_FIELD(preprocess.behaviors)
          .preprocess_only()
          .def(json::array())
          .help("Taobao, or csv with a behavior column: keep only these behaviours (e.g. "
                "`pv,buy`); empty: all."),
      ATTNREC_CHOICE(preprocess.dedup)
          .preprocess_only()
          .def("first")
          .help("Repeated (user, item) interactions."),
      ATTNREC_FIELD(preprocess.min_user_interactions)
          .preprocess_only()
          .def(0)
          .min(0)
          .help("k-core: drop users with fewer interactions, repeatedly (with the items rule)."),
      ATTNREC_FIELD(preprocess.min_item_interactions)
          .preprocess_only()
          .def(0)
          .min(0)
          .help("k-core: drop items with fewer interactions, repeatedly."),
      ATTNREC_FIELD(preprocess.max_history)
          .preprocess_only()
          .def(50)
          .min(1)
          .max(100000)
          .help("Most recent events kept in a sample's history."),
      ATTNREC_FIELD(preprocess.min_history)
          .preprocess_only()
          .def(1)
          .min(0)
          .max(100000)
          .help("Targets with fewer earlier events make no sample (at most "
                "preprocess.max_history)."),
      ATTNREC_CHOICE(preprocess.split)
          .preprocess_only()
          .def("leave_last_out")
          .help("How events are split into train, validation and test targets."),
      ATTNREC_FIELD(preprocess.valid_fraction)
          .preprocess_only()
          .def(0.1)
          .min(0.0)
          .max(1.0, true)
          .help("temporal split: share of events (by timestamp) in validation."),
      ATTNREC_FIELD(preprocess.test_fraction)
          .preprocess_only()
          .def(0.1)
          .min(0.0, true)
          .max(1.0, true)
          .help("temporal split: share of events in test (with valid_fraction, under 1)."),
      ATTNREC_FIELD(preprocess.negatives)
          .preprocess_only()
          .def(1)
          .min(1)
          .max(1000)
          .help("Negative samples drawn per positive, in every split (from items the user never "
                "interacted with)."),
      ATTNREC_CHOICE(preprocess.sampling)
          .preprocess_only()
          .def("uniform")
          .help("How the negatives of the sample files are drawn."),
      ATTNREC_FIELD(preprocess.ranking_negatives)
          .preprocess_only()
          .def(100)
          .min(0)
          .max(100000)
          .help("Frozen negatives per test (and validation) positive for sampled ranking "
                "(test_candidates.tsv; 0: no candidates files)."),
      ATTNREC_CHOICE(preprocess.ranking_sampling)
          .preprocess_only()
          .def("uniform")
          .help("How the ranking candidates are drawn."),
      ATTNREC_FIELD(preprocess.seed)
          .preprocess_only()
          .def(42)
          .min(0)
          .help("Seed of all sampling: the same log, options and seed give the same files."),
  };
}

/// The table, in documentation order: data, model, train, eval, checkpoint, preprocess.
std::vector<FieldSpec> build_table() {
  std::vector<FieldSpec> table;
  for (auto part : {data_fields(), model_fields(), train_fields(), train_objective_fields(),
                    eval_and_checkpoint_fields(), preprocess_fields()}) {
    table.insert(table.end(), part.begin(), part.end());
  }
  return table;
}

#undef ATTNREC_FIELD

std::string number_text(double v) {
  if (std::floor(v) == v && std::fabs(v) < 1e15)
    return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

std::string range_text(const FieldSpec& f) {
  if (f.min && f.max) {
    return fmt::format("{}{}, {}{}", f.min_exclusive ? "(" : "[", number_text(*f.min),
                       number_text(*f.max), f.max_exclusive ? ")" : "]");
  }
  if (f.min) return fmt::format("{} {}", f.min_exclusive ? ">" : ">=", number_text(*f.min));
  if (f.max) return fmt::format("{} {}", f.max_exclusive ? "<" : "<=", number_text(*f.max));
  return "";
}

std::string describe(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return "the string " + v.dump();
    case json::value_t::boolean:
      return "the boolean " + v.dump();
    case json::value_t::array:
      return "an array";
    case json::value_t::object:
      return "an object";
    case json::value_t::null:
      return "null";
    default:
      return "the number " + v.dump();
  }
}

std::optional<std::string> check_number(const FieldSpec& f, double v) {
  const bool low = f.min && (f.min_exclusive ? v <= *f.min : v < *f.min);
  const bool high = f.max && (f.max_exclusive ? v >= *f.max : v > *f.max);
  if (!std::isfinite(v) || low || high) {
    return fmt::format("out of range: expected {}, got {}", range_text(f), number_text(v));
  }
  return std::nullopt;
}

std::optional<std::string> check_choice(const FieldSpec& f, const std::string& v) {
  if (f.choices.empty() || std::find(f.choices.begin(), f.choices.end(), v) != f.choices.end()) {
    return std::nullopt;
  }
  std::string msg = "unknown value " + quote_for_message(v);
  if (auto hint = closest_match(v, f.choices)) msg += "; did you mean \"" + *hint + "\"?";
  return msg + " (allowed: " + join(f.choices, ", ") + ")";
}

std::optional<std::int64_t> as_integer(const json& v) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  return std::nullopt;
}

/// Converts `v` to the field's type and stores it; returns the problem otherwise.
std::optional<std::string> assign(const FieldSpec& f, Config& config, const json& v) {
  const FieldRef ref = f.ref(config);
  const std::string expected = "expected " + f.type_name() + ", got " + describe(v);
  std::optional<std::string> problem;
  if (auto p = std::get_if<std::int64_t*>(&ref)) {
    auto i = as_integer(v);
    if (!i) return expected;
    if ((problem = check_number(f, static_cast<double>(*i)))) return problem;
    **p = *i;
  } else if (auto p = std::get_if<double*>(&ref)) {
    if (!v.is_number()) return expected;
    if ((problem = check_number(f, v.get<double>()))) return problem;
    **p = v.get<double>();
  } else if (auto p = std::get_if<std::optional<double>*>(&ref)) {
    if (v.is_null()) {
      (*p)->reset();
      return std::nullopt;
    }
    if (!v.is_number()) return expected;
    if ((problem = check_number(f, v.get<double>()))) return problem;
    **p = v.get<double>();
  } else if (auto p = std::get_if<bool*>(&ref)) {
    if (!v.is_boolean()) return expected;
    **p = v.get<bool>();
  } else if (auto p = std::get_if<std::string*>(&ref)) {
    if (!v.is_string()) return expected;
    if ((problem = check_choice(f, v.get<std::string>()))) return problem;
    **p = v.get<std::string>();
  } else if (auto p = std::get_if<std::vector<std::int64_t>*>(&ref)) {
    if (!v.is_array()) return expected;
    std::vector<std::int64_t> out;
    for (std::size_t k = 0; k < v.size(); ++k) {
      auto i = as_integer(v[k]);
      if (!i) return fmt::format("element {}: expected an integer, got {}", k, describe(v[k]));
      if ((problem = check_number(f, static_cast<double>(*i)))) {
        return fmt::format("element {}: {}", k, *problem);
      }
      out.push_back(*i);
    }
    **p = std::move(out);
  } else if (auto p = std::get_if<std::vector<std::string>*>(&ref)) {
    if (!v.is_array()) return expected;
    std::vector<std::string> out;
    for (std::size_t k = 0; k < v.size(); ++k) {
      if (!v[k].is_string()) {
        return fmt::format("element {}: expected a string, got {}", k, describe(v[k]));
      }
      if ((problem = check_choice(f, v[k].get<std::string>()))) {
        return fmt::format("element {}: {}", k, *problem);
      }
      out.push_back(v[k].get<std::string>());
    }
    **p = std::move(out);
  } else if (auto p = std::get_if<ChoiceRef>(&ref)) {
    if (!v.is_string()) return expected;
    if ((problem = check_choice(f, v.get<std::string>()))) return problem;
    const auto names = choice_names(*p->choices);
    p->set(static_cast<std::size_t>(std::find(names.begin(), names.end(), v.get<std::string>()) -
                                    names.begin()));
  }
  if (f.check) return f.check(v);
  return std::nullopt;
}

std::string to_pointer(const std::string& dotted) {
  std::string p = "/" + dotted;
  std::replace(p.begin(), p.end(), '.', '/');
  return p;
}

/// Names of the direct children (fields or sections) of the section `prefix` ("" = top level).
std::vector<std::string> children_of(const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& f : config_fields()) {
    if (f.name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = f.name.substr(prefix.size());
    const std::string child = rest.substr(0, rest.find('.'));
    if (std::find(out.begin(), out.end(), child) == out.end()) out.push_back(child);
  }
  return out;
}

bool is_section(const std::string& dotted) {
  const std::string prefix = dotted + ".";
  for (const auto& f : config_fields()) {
    if (f.name.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

std::string unknown_key_message(const std::string& prefix, const std::string& key) {
  const auto siblings = children_of(prefix);
  if (auto hint = closest_match(key, siblings)) {
    return "unknown key; did you mean \"" + *hint + "\"?";
  }
  // The key may exist in another section ("hidden" under "model" instead of "model.encoder").
  std::vector<std::string> elsewhere;
  for (const auto& f : config_fields()) {
    const auto dot = f.name.rfind('.');
    if (f.name.substr(dot + 1) == key) elsewhere.push_back(to_pointer(f.name));
  }
  if (!elsewhere.empty()) return "unknown key here; did you mean " + join(elsewhere, " or ") + "?";
  return "unknown key; valid keys here: " + join(siblings, ", ");
}

void apply_object(Config& config, const json& j, const std::string& prefix,
                  const std::string& source, std::vector<std::string>& errors) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string dotted = prefix + it.key();
    const std::string where = source + ": " + to_pointer(dotted);
    if (const FieldSpec* f = find_field(dotted)) {
      if (auto problem = assign(*f, config, it.value())) errors.push_back(where + ": " + *problem);
    } else if (is_section(dotted)) {
      if (!it.value().is_object()) {
        errors.push_back(where + ": expected an object with keys " +
                         join(children_of(dotted + "."), ", ") + ", got " + describe(it.value()));
      } else {
        apply_object(config, it.value(), dotted + ".", source, errors);
      }
    } else {
      errors.push_back(where + ": " + unknown_key_message(prefix, it.key()));
    }
  }
}

void throw_if_any(const std::vector<std::string>& errors) {
  if (!errors.empty()) throw ConfigError(join(errors, "\n"));
}

}  // namespace

std::string FieldSpec::type_name() const {
  Config scratch;
  return std::visit(
      [this](auto p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, ChoiceRef>) return "a string";
        if constexpr (std::is_same_v<T, std::int64_t>) return "an integer";
        if constexpr (std::is_same_v<T, double>) return "a number";
        if constexpr (std::is_same_v<T, std::optional<double>>) return "a number or null";
        if constexpr (std::is_same_v<T, bool>) return "a boolean";
        if constexpr (std::is_same_v<T, std::string>) return "a string";
        if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) return "a list of integers";
        if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of strings";
        (void)this;
        return "";
      },
      ref(scratch));
}

std::string FieldSpec::pointer() const { return to_pointer(name); }

json field_value(const FieldSpec& f, const Config& config) {
  Config& c = const_cast<Config&>(config);  // ref() hands out mutable pointers; only read here
  return std::visit(
      [](auto p) {
        if constexpr (std::is_same_v<decltype(p), ChoiceRef>) {
          return json((*p.choices)[p.get()].name);
        } else if constexpr (std::is_same_v<decltype(p), std::optional<double>*>) {
          return *p ? json(**p) : json();
        } else {
          return json(*p);
        }
      },
      f.ref(c));
}

const std::vector<FieldSpec>& config_fields() {
  static const std::vector<FieldSpec> table = build_table();
  return table;
}

std::vector<std::string> resumable_fields() {
  std::vector<std::string> out;
  for (const auto& f : config_fields()) {
    if (f.resumable) out.push_back(f.name);
  }
  return out;
}

const FieldSpec* find_field(const std::string& name) {
  for (const auto& f : config_fields()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Config default_config() {
  Config config;
  std::vector<std::string> errors;
  for (const auto& f : config_fields()) {
    if (auto problem = assign(f, config, f.default_value)) {
      errors.push_back("internal: default of " + f.name + ": " + *problem);
    }
  }
  throw_if_any(errors);
  return config;
}

void apply_json(Config& config, const json& j, const std::string& source) {
  if (!j.is_object()) {
    throw ConfigError(source + ": expected a JSON object at the top level, got " + describe(j));
  }
  std::vector<std::string> errors;
  apply_object(config, j, "", source, errors);
  throw_if_any(errors);
}

json parse_json_text(const std::string& text, const std::string& source) {
  // Duplicate keys are legal JSON but almost always a mistake in a config; nlohmann keeps the
  // last silently, so they are detected during parsing.
  std::vector<std::set<std::string>> seen;
  std::vector<std::string> duplicates;
  auto callback = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      seen.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      seen.pop_back();
    } else if (event == json::parse_event_t::key && !seen.empty()) {
      if (!seen.back().insert(parsed.get<std::string>()).second) {
        duplicates.push_back(parsed.get<std::string>());
      }
    }
    return true;
  };
  try {
    json j = json::parse(text, callback, /*allow_exceptions=*/true, /*ignore_comments=*/true);
    if (!duplicates.empty()) {
      throw ConfigError(source + ": duplicate key \"" + duplicates.front() +
                        "\" (JSON objects must not repeat a key)");
    }
    return j;
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based offset of the offending character; turn it into line:column.
    const std::size_t end = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 2: ".
    const auto col = what.find("column ");
    const auto colon = col == std::string::npos ? std::string::npos : what.find(": ", col);
    if (colon != std::string::npos) what = what.substr(colon + 2);
    throw ConfigError(fmt::format("{}:{}:{}: invalid JSON: {}", source, line, column, what));
  } catch (const json::out_of_range& e) {
    // Number overflow (e.g. 1e400) is reported without a position: find the literal.
    std::string what = e.what();
    const auto quote = what.find('\'');
    const auto literal = quote == std::string::npos
                             ? std::string()
                             : what.substr(quote + 1, what.find('\'', quote + 1) - quote - 1);
    const std::size_t at = literal.empty() ? std::string::npos : text.find(literal);
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; at != std::string::npos && i < at; ++i) {
      column = text[i] == '\n' ? 1 : column + 1;
      line += text[i] == '\n' ? 1 : 0;
    }
    throw ConfigError(
        fmt::format("{}:{}:{}: number {} is out of range (not a finite "
                    "double-precision value)",
                    source, line, column, literal));
  } catch (const json::exception& e) {
    throw ConfigError(fmt::format("{}: invalid JSON: {}", source, e.what()));
  }
}

void apply_overrides(Config& config, const std::vector<std::string>& assignments) {
  std::vector<std::string> errors;
  for (const auto& a : assignments) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      errors.push_back("--set " + a + ": expected KEY=VALUE, e.g. model.encoder.hidden=128");
      continue;
    }
    const std::string key = a.substr(0, eq);
    const std::string text = a.substr(eq + 1);
    // Config values are stored as JSON, which holds only UTF-8 text.
    if (!is_valid_utf8(a)) {
      errors.push_back("--set " + to_pointer(is_valid_utf8(key) ? key : "?") +
                       ": not valid UTF-8 text; config keys and values must be UTF-8");
      continue;
    }
    const FieldSpec* f = find_field(key);
    if (!f) {
      const auto dot = key.rfind('.');
      const std::string prefix = dot == std::string::npos ? "" : key.substr(0, dot + 1);
      const std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
      std::string msg = is_section(key) ? "is a section; set one of its keys: " +
                                              join(children_of(key + "."), ", ")
                                        : unknown_key_message(prefix, leaf);
      errors.push_back("--set: " + to_pointer(key) + ": " + msg);
      continue;
    }
    json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) {
      char* end = nullptr;
      const double number = std::strtod(text.c_str(), &end);
      const bool numeric = f->type_name() == "a number" || f->type_name() == "an integer";
      if (numeric && !text.empty() && end == text.c_str() + text.size() && !std::isfinite(number)) {
        errors.push_back("--set: " + f->pointer() + ": " + quote_for_message(text) +
                         " is not a finite number");
        continue;
      }
      value = text;  // unquoted strings: --set train.device=cpu
    }
    if (auto problem = assign(*f, config, value)) {
      errors.push_back("--set: " + f->pointer() + ": " + *problem);
    }
  }
  throw_if_any(errors);
}

namespace {

/// Whether the model's score is state(user) . item_vector(item) + bias (RecommenderImpl::
/// factorised(): the dot head with a self query).
bool is_factorised(const ModelConfig& m) {
  return m.head.type == HeadKind::dot && m.attention.query == QueryKind::self;
}

/// The rules of the loss, drawn negatives and regularisers.
/// train.next_item's needs: per-position states (the newest position's output is the user
/// state, and position t sees nothing after t) and a factorised score.
void check_next_item(const Config& c, std::vector<std::string>& errors) {
  if (!c.train.next_item) return;
  const auto& m = c.model;
  if (!draws_negatives(c.train) && !is_full_catalogue(c.train.loss)) {
    errors.push_back(
        "/train/next_item: every position is scored against drawn negatives or the whole "
        "catalogue, but /train/negatives/per_positive and /train/negatives/shared_pool are 0; "
        "set one of them, or /train/loss \"softmax\"");
  }
  if (!is_factorised(m) || m.attention.type != "last") {
    errors.push_back(
        "/train/next_item: needs a factorised model: /model/head/type \"dot\", "
        "/model/attention/query \"self\" and /model/attention/type \"last\" (see "
        "configs/sasrec.json)");
  }
  const bool causal = m.encoder.type == EncoderKind::transformer
                          ? m.encoder.causal
                          : !m.encoder.bidirectional;  // an RNN reads left to right
  if (!causal) {
    errors.push_back(
        "/train/next_item: position t would see the event it is trained to predict; use a "
        "causal encoder (transformer with causal: true, or a unidirectional LSTM/GRU)");
  }
}

/// A shared pool and the full softmax score user states against item vectors as one matrix
/// product: a factorised model, and no per-sample negatives beside them.
void check_catalogue_scoring(const Config& c, std::vector<std::string>& errors) {
  const auto& n = c.train.negatives;
  if (n.shared_pool > 0 && n.per_positive > 0) {
    errors.push_back(
        "/train/negatives/shared_pool: a shared pool replaces the per-sample negatives, but "
        "/train/negatives/per_positive is also set; set one of them to 0");
  }
  if (is_full_catalogue(c.train.loss) && draws_negatives(c.train)) {
    errors.push_back(
        fmt::format("/train/loss: \"{}\" scores every item and draws no negatives; set "
                    "/train/negatives/per_positive and /train/negatives/shared_pool to 0",
                    name_of(c.train.loss)));
  }
  if ((n.shared_pool > 0 || is_full_catalogue(c.train.loss)) && !is_factorised(c.model)) {
    errors.push_back(fmt::format(
        "{}: needs a factorised model (/model/head/type \"dot\" and /model/attention/query "
        "\"self\"), whose scores are one matrix product of user states and item vectors",
        n.shared_pool > 0 ? "/train/negatives/shared_pool" : "/train/loss"));
  }
}

void check_training_objective(const Config& c, std::vector<std::string>& errors) {
  const bool has_item = has_column(c.data, "item");
  const auto& n = c.train.negatives;
  if (c.train.loss != LossKind::bce && !draws_negatives(c.train) &&
      !is_full_catalogue(c.train.loss)) {
    errors.push_back(
        fmt::format("/train/loss: \"{}\" compares a positive with drawn negatives, but "
                    "/train/negatives/per_positive is 0; set it to 1 or more (4 is a good start), "
                    "or set /train/negatives/shared_pool",
                    name_of(c.train.loss)));
  }
  if ((draws_negatives(c.train) || is_full_catalogue(c.train.loss)) && !has_item) {
    errors.push_back(
        "/train/negatives/per_positive: drawn negatives replace a sample's candidate item, but "
        "/data/columns has no \"item\" column");
  }
  if (c.train.label_smoothing > 0 && c.train.loss != LossKind::bce) {
    errors.push_back(fmt::format(
        "/train/label_smoothing: applies to the \"bce\" loss only, but /train/loss is \"{}\"",
        name_of(c.train.loss)));
  }
  if (c.model.head.item_bias && !has_item) {
    errors.push_back(
        "/model/head/item_bias: true needs a candidate item, but /data/columns has no "
        "\"item\" column");
  }
  check_next_item(c, errors);
  check_catalogue_scoring(c, errors);
  if (n.exclude == NegativeExclusion::all && n.per_positive > 0 && c.data.valid.empty() &&
      c.data.test.empty()) {
    errors.push_back(
        "/train/negatives/exclude: \"all\" also avoids the items of /data/valid and /data/test, "
        "but both are empty; use \"train\"");
  }
}

}  // namespace

/// The transformer's and the dot head's rules.
void check_encoder_and_head(const Config& c, bool has_item, std::vector<std::string>& errors) {
  const auto& enc = c.model.encoder;
  if (!is_recurrent(enc.type) && enc.bidirectional) {
    errors.push_back(fmt::format(
        "/model/encoder/bidirectional: true has no effect with encoder type \"{}\"; set it to "
        "false or choose \"lstm\"/\"gru\"{}",
        name_of(enc.type),
        enc.type == EncoderKind::transformer ? " (a transformer sees both directions with "
                                               "causal: false)"
                                             : ""));
  }
  const std::int64_t e = item_representation_size(c.model);
  if (enc.type == EncoderKind::transformer && e % enc.heads != 0) {
    errors.push_back(fmt::format(
        "/model/encoder/heads: {} heads must divide the transformer's size {} (the item "
        "representation: embedding dim{})",
        enc.heads, e, c.model.embedding.category ? " + category_dim" : ""));
  }
  if (c.model.head.type != HeadKind::dot) return;
  if (!has_item) {
    errors.push_back(
        "/model/head/type: \"dot\" scores the candidate's embedding, but /data/columns has no "
        "\"item\" column");
  }
  const std::int64_t d = encoder_output_size(c.model);
  if (d != e) {
    errors.push_back(fmt::format(
        "/model/head/type: \"dot\" needs the context as large as an item representation ({}), "
        "but the encoder outputs {}; use encoder type \"transformer\" or \"none\", or set "
        "/model/encoder/hidden to {}",
        e, d, e));
  }
  if (c.model.embedding.user) {
    errors.push_back(
        "/model/embedding/user: true has no effect with /model/head/type \"dot\"; set it to "
        "false or use the \"mlp\" head");
  }
}

void validate_config(const Config& c) {
  std::vector<std::string> errors;
  check_training_objective(c, errors);
  auto count = [&](const std::string& role) {
    return std::count(c.data.columns.begin(), c.data.columns.end(), role);
  };
  const std::string columns = json(c.data.columns).dump();
  if (count("history") != 1) {
    errors.push_back("/data/columns: needs exactly one \"history\" column, got " + columns);
  }
  for (const char* role : {"label", "user", "item", "time"}) {
    if (count(role) > 1) {
      errors.push_back(
          fmt::format("/data/columns: \"{}\" appears more than once in {}", role, columns));
    }
  }
  if (count("label") == 0) {
    errors.push_back("/data/columns: needs a \"label\" column (0/1 clicks), got " + columns);
  }
  if (c.model.attention.query == QueryKind::target && count("item") == 0) {
    errors.push_back(
        "/model/attention/query: \"target\" attention needs a candidate item, but "
        "/data/columns has no \"item\" column (" +
        columns + "); add one or use \"self\"");
  }
  if (c.model.head.inputs == HeadInputs::context_candidate && count("item") == 0) {
    errors.push_back(
        "/model/head/inputs: \"context_candidate\" needs a candidate item, but "
        "/data/columns has no \"item\" column (" +
        columns + ")");
  }
  if (c.model.head.inputs == HeadInputs::context_candidate && c.model.embedding.user) {
    errors.push_back(
        "/model/head/inputs: \"context_candidate\" leaves out the user embedding; "
        "set /model/embedding/user to false or use \"all\"");
  }
  if (c.model.embedding.category && c.data.item_categories.empty()) {
    errors.push_back(
        "/model/embedding/category: true needs /data/item_categories (an "
        "item<TAB>category file)");
  }
  if (!c.model.embedding.category && !c.data.item_categories.empty()) {
    errors.push_back(
        "/data/item_categories: set, but /model/embedding/category is false, so it "
        "would be ignored; set category to true or remove the file");
  }
  if (c.model.embedding.user && count("user") == 0) {
    errors.push_back("/model/embedding/user: true needs a \"user\" column, but /data/columns is " +
                     columns);
  }
  check_encoder_and_head(c, count("item") > 0, errors);
  if (is_recurrent(c.model.encoder.type) && c.model.encoder.dropout > 0 &&
      c.model.encoder.layers < 2) {
    errors.push_back(fmt::format(
        "/model/encoder/dropout: {} applies between stacked layers, but /model/encoder/layers "
        "is {}; set layers >= 2 or dropout to 0",
        c.model.encoder.dropout, c.model.encoder.layers));
  }
  const std::int64_t d = encoder_output_size(c.model);
  if (c.model.attention.type == "multi_head" && d % c.model.attention.heads != 0) {
    errors.push_back(fmt::format(
        "/model/attention/heads: {} heads must divide the encoder output size {} (hidden {}{})",
        c.model.attention.heads, d, c.model.encoder.hidden,
        c.model.encoder.bidirectional ? " x 2 directions" : ""));
  }
  if (c.train.early_stopping.metric == StopMetric::gauc && count("user") == 0) {
    errors.push_back(
        "/train/early_stopping/metric: \"gauc\" groups samples by user, but "
        "/data/columns has no \"user\" column; use \"auc\" or \"logloss\"");
  }
  if (is_ranking_metric(c.train.early_stopping.metric) && c.data.valid.empty()) {
    errors.push_back(fmt::format(
        "/train/early_stopping/metric: \"{}\" ranks the validation positives, but /data/valid "
        "is empty",
        name_of(c.train.early_stopping.metric)));
  }
  if (c.train.early_stopping.protocol == RankingProtocol::full) {
    if (!is_ranking_metric(c.train.early_stopping.metric)) {
      errors.push_back(fmt::format(
          "/train/early_stopping/protocol: \"full\" ranks the validation positives for hr@10, "
          "ndcg@10 or mrr, but /train/early_stopping/metric is \"{}\"; choose one of those "
          "metrics, or leave the protocol at \"sampled\"",
          name_of(c.train.early_stopping.metric)));
    }
    if (count("user") == 0) {
      errors.push_back(
          "/train/early_stopping/protocol: \"full\" leaves out each user's training items, "
          "but /data/columns has no \"user\" column; add it, or use \"sampled\"");
    }
  }
  if (c.train.schedule == LrSchedule::constant && c.train.warmup_steps > 0) {
    errors.push_back(
        "/train/warmup_steps: only used by the \"warmup_linear\" schedule, but "
        "/train/schedule is \"constant\"");
  }
  if (c.train.early_stopping.patience > 0 && c.data.valid.empty()) {
    errors.push_back(
        "/train/early_stopping/patience: early stopping needs validation data, but "
        "/data/valid is empty");
  }
  if (c.train.validate_every_steps > 0 && c.data.valid.empty()) {
    errors.push_back(
        "/train/validate_every_steps: needs validation data, but /data/valid is "
        "empty");
  }
  if (!errors.empty()) {
    for (auto& e : errors) e = "config: " + e;
    throw ConfigError(join(errors, "\n"));
  }
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config config = default_config();
  if (!path.empty()) {
    std::string text;
    try {
      text = read_file(path);
    } catch (const IoError& e) {
      throw ConfigError(e.what());  // an unreadable config is the user's to fix: exit code 2
    }
    apply_json(config, parse_json_text(text, path), path);
  }
  apply_overrides(config, overrides);
  validate_config(config);
  return config;
}

json config_to_json(const Config& config) {
  json out = json::object();
  for (const auto& f : config_fields()) {
    out[json::json_pointer(f.pointer())] = field_value(f, config);
  }
  return out;
}

Config config_from_json(const json& j, const std::string& source) {
  Config config = default_config();
  apply_json(config, j, source);
  validate_config(config);
  return config;
}

std::string config_reference_markdown() {
  std::string out =
      "# Configuration reference\n\n"
      "<!-- Generated by `attnrec config --doc` from the option table in "
      "src/config/fields.cpp. Do not edit by hand; a test checks it is up to date. -->\n\n"
      "A run is described by one JSON file (comments allowed) with the sections below. Values "
      "are resolved as **defaults < config file < `--set KEY=VALUE`** (repeatable; VALUE is "
      "JSON, or a plain string). `attnrec config --dump --config FILE` prints the resolved "
      "config. Unknown keys, wrong types, out-of-range values and conflicting options are "
      "errors (exit code 2) reported before any data is read.\n\n"
      "`attnrec train --resume RUN --set KEY=VALUE` may change only these options (every other "
      "difference from the checkpoint's config is refused): " +
      [] {
        std::string list;
        for (const auto& name : resumable_fields())
          list += (list.empty() ? "`" : ", `") + name + "`";
        return list;
      }() +
      ".\n";
  std::string section;
  Config defaults = default_config();
  for (const auto& f : config_fields()) {
    const std::string top = f.name.substr(0, f.name.find('.'));
    if (top != section) {
      section = top;
      out += "\n## `" + section + "`\n\n";
      if (section == "preprocess") {
        out +=
            "The options of `attnrec preprocess` (docs/data.md). Its flags are these names "
            "with dashes (`--min-rating 4` sets `preprocess.min_rating`); it also reads them "
            "from the `preprocess` section of `--config FILE` and from `--set "
            "preprocess.NAME=VALUE` (defaults < config file < `--set` < flags). Training "
            "ignores this section.\n\n";
      }
    }
    out += "### `" + f.name + "`\n\n";
    out += "- type: " + f.type_name() + "; default: `" + field_value(f, defaults).dump() + "`\n";
    std::vector<std::string> allowed;
    if (!f.choices.empty()) allowed.push_back("one of " + join(f.choices, ", "));
    if (f.min || f.max) allowed.push_back(range_text(f));
    if (!f.check_doc.empty()) allowed.push_back(f.check_doc);
    if (!allowed.empty()) out += "- allowed: " + join(allowed, "; ") + "\n";
    if (f.resumable)
      out += "- may change on resume (`train --resume RUN --set " + f.name + "=...`)\n";
    out += "\n" + f.help + "\n";
    if (f.choice_list && !choice_docs(*f.choice_list).empty()) {
      out += "\n" + choice_docs(*f.choice_list);
    }
    out += "\n";
  }
  return out;
}

}  // namespace attnrec
