// `attnrec export --format torchscript`: a torch::jit::Module that holds the model's weights and
// a forward written in TorchScript for exactly the architecture of the model (generated here,
// compiled by LibTorch's define()), so that it loads with torch.jit.load in Python and
// torch::jit::load in C++ without attnrec. The maths are those of scripts/attnrec_reference.py.
#include <fmt/format.h>
#include <torch/script.h>
#include <string>

#include "attnrec/config/choices.hpp"
#include "attnrec/tools/export.hpp"
#include "attnrec/util/error.hpp"

namespace attnrec {

namespace {

/// The attribute name of a state_dict entry on the flat module ("encoder.lstm.weight_ih_l0"
/// becomes "encoder_lstm_weight_ih_l0": TorchScript attributes cannot contain dots).
std::string flat(std::string name) {
  for (auto& c : name) c = c == '.' ? '_' : c;
  return name;
}

std::string activation_call(ActivationKind kind, const std::string& x) {
  return fmt::format("torch.{}({})", name_of(kind), x);
}

/// TorchScript of the encoder: `x` [B, T, E], `mask`, `m` (mask as floats), `lengths` -> `keys`.
std::string encoder_source(const SequenceEncoderOptions& e) {
  if (e.type() == EncoderKind::none) return "    keys = x * m\n";
  if (e.type() == EncoderKind::lstm || e.type() == EncoderKind::gru) {
    if (e.bidirectional()) {
      throw UsageError(
          "export --format torchscript: a bidirectional RNN encoder needs packed sequences, "
          "which this export does not express; use --format safetensors (and "
          "scripts/attnrec_reference.py) for this model");
    }
    const std::string rnn = name_of(e.type());
    std::string params;
    for (std::int64_t l = 0; l < e.layers(); ++l) {
      for (const char* w : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) {
        params += fmt::format("{}self.encoder_{}_{}_l{}", params.empty() ? "" : ", ", rnn, w, l);
      }
    }
    std::string s =
        fmt::format("    h0 = torch.zeros([{}, x.size(0), {}], dtype=x.dtype, device=x.device)\n",
                    e.layers(), e.hidden_size());
    const std::string state = e.type() == EncoderKind::lstm ? "[h0, h0]" : "h0";
    s += fmt::format("    keys = torch.{}(x, {}, [{}], True, {}, 0.0, False, False, True)[0] * m\n",
                     rnn, state, params, e.layers());
    return s;
  }
  const auto& t = e.transformer();
  std::string s;
  if (t.scale_input()) s += fmt::format("    x = x * {:.17g}\n", std::sqrt(double(t.dim())));
  if (t.positional() != PositionalKind::none) {
    s += "    pos = (lengths.unsqueeze(1) - 1 - torch.arange(x.size(1), device=x.device)"
         ".unsqueeze(0)).clamp_min(0) * mask.long()\n";
    s += t.positional() == PositionalKind::learned
             ? "    x = x + torch.embedding(self.encoder_transformer_positions_weight, pos)\n"
             : "    x = x + self.encoder_transformer_sinusoid[pos]\n";
  }
  s += "    x = x * m\n";
  s += "    allowed = mask.unsqueeze(1).expand(x.size(0), x.size(1), x.size(1))\n";
  if (t.causal()) {
    s += "    allowed = allowed & mask.new_ones([x.size(1), x.size(1)]).tril().unsqueeze(0)\n";
  }
  for (std::int64_t l = 0; l < t.layers(); ++l)
    s += fmt::format("    x = self.block_{}(x, allowed) * m\n", l);
  if (t.norm() != TransformerNorm::post) {
    s += fmt::format(
        "    x = torch.layer_norm(x, [{}], self.encoder_transformer_final_norm_weight, "
        "self.encoder_transformer_final_norm_bias, {:.17g}) * m\n",
        t.dim(), t.norm_eps());
  }
  return s + "    keys = x\n";
}

/// TorchScript methods block_L, attend_L and feed_forward_L of each transformer block.
std::string transformer_block_methods(const TransformerEncoderOptions& t) {
  std::string s;
  const std::int64_t h = t.heads(), dh = t.dim() / t.heads();
  for (std::int64_t l = 0; l < t.layers(); ++l) {
    const std::string p = fmt::format("self.encoder_transformer_blocks_{}_", l);
    const auto linear = [&](const std::string& name, const std::string& x) {
      return fmt::format("torch.linear({}, {}{}_weight, {}{}_bias)", x, p, name, p, name);
    };
    const auto norm = [&](const std::string& name, const std::string& x) {
      return fmt::format("torch.layer_norm({}, [{}], {}{}_weight, {}{}_bias, {:.17g})", x, t.dim(),
                         p, name, p, name, t.norm_eps());
    };
    s +=
        fmt::format("def attend_{}(self, qi: Tensor, ki: Tensor, allowed: Tensor) -> Tensor:\n", l);
    s += fmt::format("    b = qi.size(0)\n    t = qi.size(1)\n");
    s += fmt::format("    q = {}.view(b, -1, {}, {}).transpose(1, 2)\n", linear("query", "qi"), h,
                     dh);
    s +=
        fmt::format("    k = {}.view(b, -1, {}, {}).transpose(1, 2)\n", linear("key", "ki"), h, dh);
    s += fmt::format("    v = {}.view(b, -1, {}, {}).transpose(1, 2)\n", linear("value", "ki"), h,
                     dh);
    s += fmt::format("    scores = torch.matmul(q, k.transpose(-2, -1)) / {:.17g}\n",
                     std::sqrt(double(dh)));
    s += "    scores = scores.masked_fill(allowed.logical_not().unsqueeze(1), -1e9)\n";
    s += fmt::format(
        "    context = torch.matmul(torch.softmax(scores, -1), v).transpose(1, 2).reshape(b, t, "
        "{})\n",
        t.dim());
    s += fmt::format("    return {}\n\n", linear("out", "context"));
    s += fmt::format("def feed_forward_{}(self, x: Tensor) -> Tensor:\n", l);
    s += fmt::format("    return {}\n\n",
                     linear("ff_out", activation_call(t.activation(), linear("ff_in", "x"))));
    s += fmt::format("def block_{}(self, x: Tensor, allowed: Tensor) -> Tensor:\n", l);
    switch (t.norm()) {
      case TransformerNorm::pre:
        s += fmt::format("    n = {}\n", norm("norm_attention", "x"));
        s += fmt::format("    y = x + self.attend_{}(n, n, allowed)\n", l);
        s += fmt::format("    return y + self.feed_forward_{}({})\n\n", l, norm("norm_ff", "y"));
        break;
      case TransformerNorm::post:
        s += fmt::format("    y = {}\n", norm("norm_attention",
                                              fmt::format("x + self.attend_{}(x, x, allowed)", l)));
        s += fmt::format("    return {}\n\n",
                         norm("norm_ff", fmt::format("y + self.feed_forward_{}(y)", l)));
        break;
      case TransformerNorm::sasrec:
        s += fmt::format("    q = {}\n", norm("norm_attention", "x"));
        s += fmt::format("    y = q + self.attend_{}(q, x, allowed)\n", l);
        s += fmt::format("    return y + self.feed_forward_{}({})\n\n", l, norm("norm_ff", "y"));
        break;
    }
  }
  return s;
}

/// TorchScript of the attention: `query` [B, D], `keys`, `mask` -> `context`.
std::string attention_source(const AttentionOptions& a) {
  const std::string& type = a.type();
  if (type == "last") {
    return "    lengths_ = mask.sum(1)\n"
           "    weights = torch.zeros(mask.size(), dtype=keys.dtype, device=keys.device)\n"
           "    weights = weights.scatter(1, (lengths_ - 1).clamp_min(0).unsqueeze(1), 1.0)\n"
           "    weights = weights * (lengths_ > 0).unsqueeze(1).to(weights.dtype)\n"
           "    context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)\n";
  }
  if (type == "multi_head") {
    const std::int64_t h = a.heads(), dh = a.dim() / a.heads();
    std::string s = "    b = keys.size(0)\n    t = keys.size(1)\n";
    s += fmt::format(
        "    q = torch.linear(query, self.attention_q_proj_weight, self.attention_q_proj_bias)"
        ".view(b, {}, 1, {})\n",
        h, dh);
    s += fmt::format(
        "    k = torch.linear(keys, self.attention_k_proj_weight, self.attention_k_proj_bias)"
        ".view(b, t, {}, {}).transpose(1, 2)\n",
        h, dh);
    s += fmt::format(
        "    v = torch.linear(keys, self.attention_v_proj_weight, self.attention_v_proj_bias)"
        ".view(b, t, {}, {}).transpose(1, 2)\n",
        h, dh);
    s += fmt::format("    s = torch.matmul(q, k.transpose(2, 3)).squeeze(2) / {:.17g}\n",
                     std::sqrt(double(dh)));
    s += fmt::format(
        "    w = self.masked_softmax(s.reshape(b * {0}, t), mask.unsqueeze(1).expand(b, {0}, "
        "t).reshape(b * {0}, t))\n",
        h);
    s += fmt::format(
        "    context = torch.linear(torch.matmul(w.view(b, {}, 1, t), v).view(b, {}), "
        "self.attention_o_proj_weight, self.attention_o_proj_bias)\n",
        h, a.dim());
    return s;
  }
  std::string s;
  if (type == "additive") {
    s = "    scores = torch.linear(torch.tanh(torch.linear(keys, self.attention_w_key_weight) + "
        "torch.linear(query, self.attention_w_query_weight, self.attention_w_query_bias)"
        ".unsqueeze(1)), self.attention_v_weight).squeeze(2)\n";
  } else if (type == "dot" || type == "scaled_dot") {
    s = "    scores = (keys * query.unsqueeze(1)).sum(2)\n";
    if (type == "scaled_dot")
      s += fmt::format("    scores = scores / {:.17g}\n", std::sqrt(double(a.dim())));
  } else if (type == "cosine") {
    s = "    qn = query / query.norm(2, -1, True).clamp_min(1e-8)\n"
        "    kn = keys / keys.norm(2, -1, True).clamp_min(1e-8)\n";
    s += fmt::format("    scores = (kn * qn.unsqueeze(1)).sum(2) / {:.17g}\n", a.temperature());
  } else if (type == "none") {
    s = "    scores = torch.zeros(mask.size(), dtype=keys.dtype, device=keys.device)\n";
  } else {
    throw UsageError("export --format torchscript: attention type \"" + type +
                     "\" has no TorchScript form; use --format safetensors");
  }
  return s + "    context = (self.masked_softmax(scores, mask).unsqueeze(2) * keys).sum(1)\n";
}

/// TorchScript of the head: `context`, `candidate`, `query`, `user` -> `logits`.
std::string head_source(const RecommenderOptions& o, std::size_t layers) {
  std::string s;
  if (o.head_type() == HeadKind::dot) {
    s = "    logits = (context * candidate).sum(1)\n";
  } else {
    const bool all = o.head_inputs() == HeadInputs::all;
    std::string features = "context";
    if (o.has_item()) features += ", candidate";
    if (o.query() == QueryKind::target && all) features += ", query * context";
    if (o.user_vocab() > 0 && all) features += ", torch.embedding(self.user_embedding_weight, u)";
    s = fmt::format("    x = torch.cat([{}], 1)\n", features);
    for (std::size_t i = 0; i < layers; ++i) {
      const std::string x = i == 0 ? "x" : activation_call(o.activation(), "x");
      s += fmt::format("    x = torch.linear({}, self.head_{}_weight, self.head_{}_bias)\n", x, i,
                       i);
    }
    s += "    logits = x.squeeze(1)\n";
  }
  if (o.item_bias()) {
    s += "    logits = logits + torch.embedding(self.item_bias_weight, candidates).squeeze(1)\n";
  }
  return s;
}

/// The whole TorchScript source of the module's methods.
std::string model_source(const RecommenderOptions& o) {
  if (!o.has_item()) {
    throw UsageError(
        "export --format torchscript: the model has no candidate item (data.columns without "
        "\"item\"), and the scripted forward scores (history, candidate) pairs; use --format "
        "safetensors");
  }
  std::string s =
      "def masked_softmax(self, scores: Tensor, mask: Tensor) -> Tensor:\n"
      "    masked = scores.masked_fill(mask.logical_not(), float('-inf'))\n"
      "    masked = masked.masked_fill(mask.any(1, True).logical_not(), 0.0)\n"
      "    return torch.softmax(masked, -1) * mask.to(scores.dtype)\n\n";
  s += "def embed_items(self, ids: Tensor, table: Tensor) -> Tensor:\n"
       "    x = torch.embedding(table, ids)\n";
  if (o.category_vocab() > 0) {
    s += "    x = torch.cat([x, torch.embedding(self.category_embedding_weight, "
         "self.item_category[ids])], -1)\n";
  }
  s += "    return x\n\n";
  if (o.encoder().type() == EncoderKind::transformer)
    s += transformer_block_methods(o.encoder().transformer());
  s += "def forward(self, history: Tensor, lengths: Tensor, candidates: Tensor, "
       "user: Optional[Tensor] = None) -> Tensor:\n"
       "    mask = torch.arange(history.size(1), device=history.device).unsqueeze(0) < "
       "lengths.unsqueeze(1)\n"
       "    x = self.embed_items(history, self.item_embedding_weight)\n"
       "    m = mask.unsqueeze(2).to(x.dtype)\n";
  s += encoder_source(o.encoder());
  if (o.positional() != PositionalKind::none) {
    const char* table = o.positional() == PositionalKind::learned ? "self.position_embedding_weight"
                                                                  : "self.sinusoid";
    s += fmt::format("    keys = keys + {}[:history.size(1)].unsqueeze(0) * m\n", table);
  }
  s += fmt::format("    candidate = self.embed_items(candidates, self.{}_weight)\n",
                   o.share_candidate() ? "item_embedding" : "candidate_embedding");
  if (o.query() == QueryKind::target) {
    s += "    query = torch.linear(candidate, self.query_proj_weight, self.query_proj_bias)\n";
  } else {
    s += "    query = self.self_query.unsqueeze(0).expand(history.size(0), -1)\n";
  }
  if (o.user_vocab() > 0 && o.head_type() == HeadKind::mlp && o.head_inputs() == HeadInputs::all) {
    s += "    assert user is not None, 'this model needs the user ids'\n    u = user\n";
  }
  s += attention_source(o.attention());
  // The mlp head: one Linear per hidden size, then the output layer (the dot head has none).
  const std::size_t head_layers = o.head_type() == HeadKind::mlp ? o.head_hidden().size() + 1 : 0;
  return s + head_source(o, head_layers) + "    return logits\n";
}

}  // namespace

torch::jit::Module to_torchscript(Recommender& model) {
  torch::NoGradGuard no_grad;
  torch::jit::Module module(c10::QualifiedName("__torch__.attnrec.ExportedRecommender"));
  for (const auto& p : model->named_parameters()) {
    module.register_parameter(flat(p.key()), p.value().detach().clone(), /*is_buffer=*/false);
  }
  for (const auto& b : model->named_buffers())
    module.register_buffer(flat(b.key()), b.value().clone());
  module.define(model_source(model->options));
  module.eval();
  return module;
}

}  // namespace attnrec
