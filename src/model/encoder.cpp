#include "attnrec/model/encoder.hpp"

#include "attnrec/model/fused_lstm.hpp"

namespace attnrec {

namespace {
template <class Rnn, class RnnOptions>
Rnn make_rnn(const SequenceEncoderOptions& o) {
  return Rnn(RnnOptions(o.input_size(), o.hidden_size())
                 .num_layers(o.layers())
                 .bidirectional(o.bidirectional())
                 .dropout(o.dropout())
                 .batch_first(true));
}
}  // namespace

SequenceEncoderImpl::SequenceEncoderImpl(SequenceEncoderOptions options_)
    : options(std::move(options_)) {
  reset();
}

void SequenceEncoderImpl::reset() {
  switch (options.type()) {
    case EncoderKind::lstm:
      lstm_ = register_module("lstm", make_rnn<torch::nn::LSTM, torch::nn::LSTMOptions>(options));
      break;
    case EncoderKind::gru:
      gru_ = register_module("gru", make_rnn<torch::nn::GRU, torch::nn::GRUOptions>(options));
      break;
    case EncoderKind::none:
      break;
    case EncoderKind::transformer:
      TORCH_CHECK(options.transformer().dim() == options.input_size(), "transformer dim: expected ",
                  options.input_size(), " (the input size), got ", options.transformer().dim());
      transformer_ = register_module("transformer", TransformerEncoder(options.transformer()));
      break;
  }
}

std::int64_t SequenceEncoderImpl::output_size() const {
  if (options.type() == EncoderKind::none || transformer_) return options.input_size();
  return options.hidden_size() * (options.bidirectional() ? 2 : 1);
}

torch::Tensor SequenceEncoderImpl::forward(const torch::Tensor& inputs, const torch::Tensor& mask,
                                           const torch::Tensor& lengths) {
  TORCH_CHECK(inputs.dim() == 3 && inputs.size(2) == options.input_size(),
              "encoder inputs: expected [B, T, ", options.input_size(), "], got ", inputs.sizes());
  const auto m = mask.unsqueeze(2).to(inputs.dtype());
  if (options.type() == EncoderKind::none) return inputs * m;
  if (transformer_) return transformer_(inputs, mask, lengths);
  if (lstm_ && options.fused() && !options.bidirectional() && fused_lstm_supported(inputs) &&
      lengths.defined() && lengths.device().is_cpu()) {
    // The parameters stay torch::nn::LSTM's (same names in checkpoints, cuDNN on CUDA); only
    // the CPU computation is replaced. Outputs at padding are already zero.
    return fused_layers(inputs, lengths, /*first=*/0);
  }
  torch::Tensor out;
  if (options.bidirectional()) {
    // The backward direction must start at each sequence's last real item, so pack. Packing
    // rejects length 0; an empty history gets length 1 (a padding step) and is masked below.
    namespace rnn = torch::nn::utils::rnn;
    const auto lens = lengths.clamp_min(1).to(torch::kCPU);  // pack needs CPU lengths
    const auto packed = rnn::pack_padded_sequence(inputs, lens, /*batch_first=*/true,
                                                  /*enforce_sorted=*/false);
    const auto result = lstm_ ? std::get<0>(lstm_->forward_with_packed_input(packed))
                              : std::get<0>(gru_->forward_with_packed_input(packed));
    out = std::get<0>(rnn::pad_packed_sequence(result, /*batch_first=*/true, 0.0, inputs.size(1)));
  } else {
    out = lstm_ ? std::get<0>(lstm_->forward(inputs)) : std::get<0>(gru_->forward(inputs));
  }
  return out * m;
}

bool SequenceEncoderImpl::supports_item_gates() const {
  return lstm_ && options.fused() && !options.bidirectional();
}

torch::Tensor SequenceEncoderImpl::input_gates(const torch::Tensor& x) {
  TORCH_CHECK(supports_item_gates(), "input_gates: needs a fused unidirectional LSTM encoder");
  const auto weights = lstm_->all_weights();
  return torch::addmm(weights[2] + weights[3], x, weights[0].t());
}

std::tuple<torch::Tensor, torch::Tensor> SequenceEncoderImpl::forward_items(
    const torch::Tensor& ids, const torch::Tensor& lengths, const torch::Tensor& item_gates,
    const torch::Tensor& projection) {
  TORCH_CHECK(supports_item_gates() && !torch::GradMode::is_enabled(),
              "forward_items: inference only, with a fused unidirectional LSTM encoder");
  // The kernel projects the first layer's output: only when that is the encoder's output.
  const bool one_layer = options.layers() == 1;
  auto [x, projected] = fused_lstm_items(ids, lengths, item_gates, lstm_->all_weights()[1],
                                         one_layer ? projection : torch::Tensor());
  if (one_layer) return {x, projected};
  return {fused_layers(x, lengths, /*first=*/1), torch::Tensor()};
}

torch::Tensor SequenceEncoderImpl::fused_layers(torch::Tensor x, const torch::Tensor& lengths,
                                                std::int64_t first) {
  const auto weights = lstm_->all_weights();  // per layer: w_ih, w_hh, b_ih, b_hh
  for (std::int64_t l = first; l < options.layers(); ++l) {
    if (l > 0 && options.dropout() > 0 && is_training()) {  // between stacked layers
      x = torch::dropout(x, options.dropout(), /*train=*/true);
    }
    const auto w = static_cast<std::size_t>(4 * l);
    x = fused_lstm(x, lengths, weights[w], weights[w + 1], weights[w + 2], weights[w + 3]);
  }
  return x;
}

}  // namespace attnrec
