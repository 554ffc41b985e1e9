#include "attnrec/model/fused_lstm.hpp"

#include <ATen/Parallel.h>
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "../kernels/lstm_kernels.hpp"

namespace attnrec {

namespace {

/// Where each valid (sequence, time step) lives in the packed layout. Sequences are sorted by
/// length (longest first, stable) and split into parts; within a part, step t holds the
/// part's sequences still running at t, which are a prefix of the part's rows, so the
/// recurrence of step t reads the first count[t] rows of step t - 1.
struct Plan {
  struct Part {
    std::int64_t base = 0;             ///< first packed row of the part
    std::int64_t rows = 0;             ///< packed rows of the part (its total length)
    std::int64_t sequences = 0;        ///< sequences with at least one step
    std::vector<std::int64_t> offset;  ///< per step: first packed row, relative to base
    std::vector<std::int64_t> count;   ///< per step: sequences still running
    std::vector<std::int64_t> order;   ///< batch rows of the part's sequences, longest first
  };
  std::int64_t total = 0;  ///< packed rows over all parts
  std::vector<Part> parts;
  torch::Tensor index;  ///< [total] int64: packed row -> b * T + t in the padded layout
};

Plan make_plan(const torch::Tensor& lengths, std::int64_t batch, std::int64_t steps,
               std::int64_t max_parts) {
  TORCH_CHECK(lengths.defined() && lengths.device().is_cpu() &&
                  lengths.scalar_type() == torch::kInt64 && lengths.dim() == 1 &&
                  lengths.size(0) == batch,
              "fused_lstm lengths: expected a CPU int64 tensor [", batch, "], got ",
              lengths.defined() ? lengths.sizes() : torch::IntArrayRef{});
  const auto lens = lengths.contiguous();
  const std::int64_t* len = lens.data_ptr<std::int64_t>();
  std::vector<std::int64_t> order(static_cast<std::size_t>(batch));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::int64_t a, std::int64_t b) { return len[a] > len[b]; });
  Plan plan;
  std::int64_t running = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    TORCH_CHECK(len[b] >= 0 && len[b] <= steps, "fused_lstm lengths: expected values in [0, ",
                steps, "], got ", len[b], " at row ", b);
    plan.total += len[b];
    running += len[b] > 0 ? 1 : 0;
  }
  plan.index = torch::empty({plan.total}, torch::kInt64);
  if (plan.total == 0) return plan;
  const std::int64_t parts = std::max<std::int64_t>(1, std::min(max_parts, running));
  std::int64_t* index = plan.index.data_ptr<std::int64_t>();
  // Cut the sorted sequences where the running total passes k / parts of the packed rows, so
  // that the parts do (nearly) the same work.
  std::int64_t first = 0, base = 0;
  for (std::int64_t k = 0; k < parts && first < running; ++k) {
    std::int64_t last = first, rows = 0;
    const std::int64_t target = plan.total * (k + 1) / parts - base;
    while (last < running && (rows < target || last == first || k + 1 == parts)) {
      rows += len[order[static_cast<std::size_t>(last)]];
      ++last;
    }
    Plan::Part part;
    part.base = base;
    part.rows = rows;
    part.sequences = last - first;
    part.order.assign(order.begin() + first, order.begin() + last);
    const std::int64_t longest = len[order[static_cast<std::size_t>(first)]];
    std::int64_t alive = last - first, offset = 0;
    for (std::int64_t t = 0; t < longest; ++t) {
      while (alive > 0 && len[order[static_cast<std::size_t>(first + alive - 1)]] <= t) --alive;
      part.offset.push_back(offset);
      part.count.push_back(alive);
      for (std::int64_t i = 0; i < alive; ++i) {
        index[base + offset + i] = order[static_cast<std::size_t>(first + i)] * steps + t;
      }
      offset += alive;
    }
    plan.parts.push_back(std::move(part));
    base += rows;
    first = last;
  }
  return plan;
}

std::int64_t thread_parts() {
  return at::in_parallel_region() ? 1 : static_cast<std::int64_t>(at::get_num_threads());
}

/// Runs fn(part) for every part, in parallel over the intra-op threads.
template <class Fn>
void for_each_part(const Plan& plan, const Fn& fn) {
  const auto n = static_cast<std::int64_t>(plan.parts.size());
  const bool inference = c10::InferenceMode::is_enabled();
  at::parallel_for(0, n, 1, [&](std::int64_t begin, std::int64_t end) {
    // Grad and inference mode are thread-local: the pool's threads take the caller's.
    c10::InferenceMode inference_mode(inference);
    torch::NoGradGuard no_grad;
    for (std::int64_t p = begin; p < end; ++p) fn(p, plan.parts[static_cast<std::size_t>(p)]);
  });
}

torch::Tensor scatter_padded(const torch::Tensor& packed, const Plan& plan, std::int64_t batch,
                             std::int64_t steps) {
  const std::int64_t width = packed.size(1);
  auto out = torch::zeros({batch * steps, width}, packed.options());
  if (plan.total > 0) out.index_copy_(0, plan.index, packed);
  return out.view({batch, steps, width});
}

void check_arguments(const torch::Tensor& input, const torch::Tensor& w_ih,
                     const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                     const torch::Tensor& b_hh) {
  TORCH_CHECK(fused_lstm_supported(input), "fused_lstm: expected a float32 CPU input, got ",
              input.scalar_type(), " on ", input.device());
  TORCH_CHECK(input.dim() == 3, "fused_lstm input: expected [B, T, E], got ", input.sizes());
  const std::int64_t e = input.size(2), h = w_hh.size(1);
  TORCH_CHECK(w_ih.dim() == 2 && w_ih.size(0) == 4 * h && w_ih.size(1) == e,
              "fused_lstm w_ih: expected [", 4 * h, ", ", e, "], got ", w_ih.sizes());
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == 4 * h, "fused_lstm w_hh: expected [", 4 * h, ", ",
              h, "], got ", w_hh.sizes());
  TORCH_CHECK(b_ih.dim() == 1 && b_ih.size(0) == 4 * h && b_hh.sizes() == b_ih.sizes(),
              "fused_lstm biases: expected [", 4 * h, "], got ", b_ih.sizes(), " and ",
              b_hh.sizes());
  for (const auto* p : {&w_ih, &w_hh, &b_ih, &b_hh}) {
    TORCH_CHECK(p->scalar_type() == torch::kFloat32 && p->device().is_cpu(),
                "fused_lstm: expected float32 CPU parameters, got ", p->scalar_type(), " on ",
                p->device());
  }
}

/// Forward without autograd. `step_gates(part, step, rows, gates)` writes the input part of
/// the gates (x_t W_ih^T + biases) of the part's first `rows` sequences at `step`; only the
/// previous step's state is kept, and hidden states go straight to the padded output.
template <class StepGates>
torch::Tensor forward_inference(const torch::Tensor& lengths, std::int64_t b, std::int64_t t,
                                const torch::Tensor& w_hh, const torch::TensorOptions& options,
                                const StepGates& step_gates) {
  const std::int64_t h = w_hh.size(1);
  const Plan plan = make_plan(lengths, b, t, thread_parts());
  auto out = torch::empty({b, t, h}, options);
  float* out_data = out.data_ptr<float>();
  const auto lens = lengths.contiguous();  // checked by make_plan
  const std::int64_t* len = lens.data_ptr<std::int64_t>();
  const auto w_hh_t = w_hh.t();
  // Rows of the batch that no part owns (empty sequences) are all padding.
  for (std::int64_t row = 0; row < b; ++row) {
    if (len[row] == 0) std::memset(out_data + row * t * h, 0, sizeof(float) * t * h);
  }
  for_each_part(plan, [&](std::int64_t, const Plan::Part& part) {
    const std::int64_t n = part.sequences;
    auto gates = torch::empty({n, 4 * h}, options);
    auto cells = torch::empty({2, n, h}, options);
    auto hidden = torch::empty({2, n, h}, options);
    auto tanh_c = torch::empty({n, h}, options);
    for (std::size_t s = 0; s < part.count.size(); ++s) {
      const std::int64_t rows = part.count[s];
      auto g = gates.narrow(0, 0, rows);
      step_gates(part, static_cast<std::int64_t>(s), rows, g);
      if (s > 0) g.addmm_(hidden[(s - 1) % 2].narrow(0, 0, rows), w_hh_t);
      float* c_prev = s > 0 ? cells[(s - 1) % 2].data_ptr<float>() : nullptr;
      float* h_now = hidden[s % 2].data_ptr<float>();
      kernels::lstm_step_forward(g.data_ptr<float>(), c_prev, cells[s % 2].data_ptr<float>(),
                                 tanh_c.data_ptr<float>(), h_now, rows, h);
      for (std::int64_t i = 0; i < rows; ++i) {
        std::memcpy(
            out_data +
                (part.order[static_cast<std::size_t>(i)] * t + static_cast<std::int64_t>(s)) * h,
            h_now + i * h, sizeof(float) * h);
      }
    }
    for (const std::int64_t row : part.order) {  // zero the padding after each sequence
      std::memset(out_data + (row * t + len[row]) * h, 0, sizeof(float) * (t - len[row]) * h);
    }
  });
  return out;
}

class FusedLstmFunction : public torch::autograd::Function<FusedLstmFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               const torch::Tensor& lengths, const torch::Tensor& w_ih,
                               const torch::Tensor& w_hh, const torch::Tensor& b_ih,
                               const torch::Tensor& b_hh) {
    const std::int64_t b = input.size(0), t = input.size(1), e = input.size(2);
    const std::int64_t h = w_hh.size(1);
    const std::int64_t parts = thread_parts();
    const Plan plan = make_plan(lengths, b, t, parts);
    const auto x = input.contiguous().view({b * t, e}).index_select(0, plan.index);
    auto gates = torch::empty({plan.total, 4 * h}, input.options());
    auto cells = torch::empty({plan.total, h}, input.options());
    auto tanh_c = torch::empty({plan.total, h}, input.options());
    auto hidden = torch::empty({plan.total, h}, input.options());
    const auto bias = b_ih + b_hh;
    const auto w_ih_t = w_ih.t(), w_hh_t = w_hh.t();
    for_each_part(plan, [&](std::int64_t, const Plan::Part& part) {
      // The input projection of all the part's steps in one GEMM, bias included.
      auto part_gates = gates.narrow(0, part.base, part.rows);
      at::addmm_out(part_gates, bias, x.narrow(0, part.base, part.rows), w_ih_t);
      for (std::size_t s = 0; s < part.count.size(); ++s) {
        const std::int64_t rows = part.count[s], off = part.base + part.offset[s];
        auto g = gates.narrow(0, off, rows);
        if (s > 0) g.addmm_(hidden.narrow(0, part.base + part.offset[s - 1], rows), w_hh_t);
        const float* c_prev =
            s > 0 ? cells.data_ptr<float>() + (part.base + part.offset[s - 1]) * h : nullptr;
        kernels::lstm_step_forward(g.data_ptr<float>(), c_prev, cells.data_ptr<float>() + off * h,
                                   tanh_c.data_ptr<float>() + off * h,
                                   hidden.data_ptr<float>() + off * h, rows, h);
      }
    });
    ctx->save_for_backward({x, gates, cells, tanh_c, hidden, lengths, w_ih, w_hh});
    ctx->saved_data["parts"] = parts;
    return scatter_padded(hidden, plan, b, t);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &gates = saved[1], &cells = saved[2], &tanh_c = saved[3],
               &hidden = saved[4], &lengths = saved[5], &w_ih = saved[6], &w_hh = saved[7];
    const auto& grad_out = grad_outputs[0];
    const std::int64_t b = grad_out.size(0), t = grad_out.size(1);
    const std::int64_t e = w_ih.size(1), h = w_hh.size(1);
    const Plan plan = make_plan(lengths, b, t, ctx->saved_data["parts"].toInt());
    // At least one slot, so that the sums below are zeros when nothing ran.
    const auto parts = std::max<std::int64_t>(1, static_cast<std::int64_t>(plan.parts.size()));
    const auto grad_h = grad_out.contiguous().view({b * t, h}).index_select(0, plan.index);
    auto grad_gates = torch::empty({plan.total, 4 * h}, x.options());
    auto grad_x = torch::empty({plan.total, e}, x.options());
    // Per-part weight gradients, summed afterwards (the parts run concurrently).
    auto grad_w_ih = torch::zeros({parts, 4 * h, e}, x.options());
    auto grad_w_hh = torch::zeros({parts, 4 * h, h}, x.options());
    auto grad_bias = torch::zeros({parts, 4 * h}, x.options());
    for_each_part(plan, [&](std::int64_t p, const Plan::Part& part) {
      // Gradients flowing back from step t + 1; rows join as the sweep reaches the step where
      // their sequence ends, and start from zero there.
      auto grad_h_next = torch::zeros({part.sequences, h}, x.options());
      auto grad_c_next = torch::zeros({part.sequences, h}, x.options());
      auto part_grad_w_hh = grad_w_hh[p];
      for (auto s = static_cast<std::int64_t>(part.count.size()) - 1; s >= 0; --s) {
        const auto si = static_cast<std::size_t>(s);
        const std::int64_t rows = part.count[si], off = part.base + part.offset[si];
        const std::int64_t prev = s > 0 ? part.base + part.offset[si - 1] : 0;
        kernels::lstm_step_backward(
            gates.data_ptr<float>() + off * 4 * h, tanh_c.data_ptr<float>() + off * h,
            s > 0 ? cells.data_ptr<float>() + prev * h : nullptr,
            grad_h.data_ptr<float>() + off * h, grad_h_next.data_ptr<float>(),
            grad_c_next.data_ptr<float>(), grad_gates.data_ptr<float>() + off * 4 * h, rows, h);
        if (s > 0) {
          auto dh = grad_h_next.narrow(0, 0, rows);
          at::mm_out(dh, grad_gates.narrow(0, off, rows), w_hh);
        }
      }
      // dW_hh = sum_t dG_t^T h_{t-1} as one GEMM (one large GEMM is several times faster than
      // a small one per step): h_{t-1} of each packed row, laid out like the gate rows; the
      // first step's rows have h_{-1} = 0 and are skipped.
      const std::int64_t first = part.count.empty() ? 0 : part.count[0];
      if (part.rows > first) {
        auto h_prev = torch::empty({part.rows - first, h}, x.options());
        float* dst = h_prev.data_ptr<float>();
        const float* src = hidden.data_ptr<float>();
        for (std::size_t s = 1; s < part.count.size(); ++s) {
          std::memcpy(dst + (part.offset[s] - first) * h,
                      src + (part.base + part.offset[s - 1]) * h,
                      static_cast<std::size_t>(part.count[s] * h) * sizeof(float));
        }
        at::mm_out(part_grad_w_hh, grad_gates.narrow(0, part.base + first, part.rows - first).t(),
                   h_prev);
      }
      const auto dg = grad_gates.narrow(0, part.base, part.rows);
      auto dx = grad_x.narrow(0, part.base, part.rows);
      auto dw_ih = grad_w_ih[p];
      auto db = grad_bias[p];
      at::mm_out(dx, dg, w_ih);
      at::mm_out(dw_ih, dg.t(), x.narrow(0, part.base, part.rows));
      at::sum_out(db, dg, {0});
    });
    auto grad_bias_sum = grad_bias.sum(0);
    return {scatter_padded(grad_x, plan, b, t),
            torch::Tensor(),
            grad_w_ih.sum(0),
            grad_w_hh.sum(0),
            grad_bias_sum.clone(),
            grad_bias_sum};
  }
};

}  // namespace

bool fused_lstm_supported(const torch::Tensor& input) {
  return input.defined() && input.device().is_cpu() && input.scalar_type() == torch::kFloat32 &&
         !input.is_sparse();
}

torch::Tensor fused_lstm(const torch::Tensor& input, const torch::Tensor& lengths,
                         const torch::Tensor& w_ih, const torch::Tensor& w_hh,
                         const torch::Tensor& b_ih, const torch::Tensor& b_hh) {
  check_arguments(input, w_ih, w_hh, b_ih, b_hh);
  const bool needs_grad = torch::GradMode::is_enabled() &&
                          (input.requires_grad() || w_ih.requires_grad() || w_hh.requires_grad() ||
                           b_ih.requires_grad() || b_hh.requires_grad());
  if (!needs_grad) {
    torch::NoGradGuard no_grad;
    const std::int64_t b = input.size(0), t = input.size(1), e = input.size(2);
    const auto x = input.contiguous();
    const float* x_data = x.data_ptr<float>();
    const auto bias = b_ih + b_hh;
    const auto w_ih_t = w_ih.t();
    return forward_inference(
        lengths, b, t, w_hh, input.options(),
        [&](const Plan::Part& part, std::int64_t step, std::int64_t rows, torch::Tensor& gates) {
          // Gather the step's inputs (one row per running sequence), then one GEMM.
          auto xs = torch::empty({rows, e}, input.options());
          float* xs_data = xs.data_ptr<float>();
          for (std::int64_t i = 0; i < rows; ++i) {
            std::memcpy(xs_data + i * e,
                        x_data + (part.order[static_cast<std::size_t>(i)] * t + step) * e,
                        sizeof(float) * e);
          }
          at::addmm_out(gates, bias, xs, w_ih_t);
        });
  }
  return FusedLstmFunction::apply(input, lengths, w_ih, w_hh, b_ih, b_hh);
}

}  // namespace attnrec

namespace attnrec {

std::tuple<torch::Tensor, torch::Tensor> fused_lstm_items(const torch::Tensor& ids,
                                                          const torch::Tensor& lengths,
                                                          const torch::Tensor& item_gates,
                                                          const torch::Tensor& w_hh,
                                                          const torch::Tensor& projection) {
  TORCH_CHECK(ids.dim() == 2 && ids.scalar_type() == torch::kInt64 && ids.device().is_cpu(),
              "fused_lstm_items ids: expected a CPU int64 tensor [B, T], got ", ids.sizes());
  TORCH_CHECK(fused_lstm_supported(item_gates) && item_gates.dim() == 2 &&
                  item_gates.size(1) == 4 * w_hh.size(1),
              "fused_lstm_items item_gates: expected float32 CPU [V, ", 4 * w_hh.size(1), "], got ",
              item_gates.sizes());
  torch::NoGradGuard no_grad;
  const std::int64_t b = ids.size(0), t = ids.size(1), width = item_gates.size(1);
  const std::int64_t h = w_hh.size(1), vocab = item_gates.size(0);
  const auto id = ids.contiguous();
  const std::int64_t* id_data = id.data_ptr<std::int64_t>();
  const auto table = item_gates.contiguous();
  const float* table_data = table.data_ptr<float>();
  const auto item_row = [&](std::int64_t row, std::int64_t step) {
    const std::int64_t item = id_data[row * t + step];
    TORCH_CHECK(item >= 0 && item < vocab, "fused_lstm_items: item id ", item, " outside [0, ",
                vocab, ")");
    return table_data + item * width;
  };
  if (h % kernels::kRecurrentBlock != 0) {
    // Generic path: a BLAS GEMM per step on gates gathered from the table (no projection).
    auto out = forward_inference(
        lengths, b, t, w_hh.contiguous(), item_gates.options(),
        [&](const Plan::Part& part, std::int64_t step, std::int64_t rows, torch::Tensor& gates) {
          float* g = gates.data_ptr<float>();
          for (std::int64_t i = 0; i < rows; ++i) {
            std::memcpy(g + i * width, item_row(part.order[static_cast<std::size_t>(i)], step),
                        sizeof(float) * width);
          }
        });
    return {out, torch::Tensor()};
  }
  // Fused path: the recurrent product, the table row and the cell update in one kernel that
  // reads the previous hidden state from, and writes the new one to, the padded output.
  const Plan plan = make_plan(lengths, b, t, thread_parts());
  auto out = torch::empty({b, t, h}, item_gates.options());
  float* out_data = out.data_ptr<float>();
  const auto lens = lengths.contiguous();  // checked by make_plan
  const std::int64_t* len = lens.data_ptr<std::int64_t>();
  std::vector<float> packed(static_cast<std::size_t>(4 * h * h));
  const auto w = w_hh.contiguous();
  kernels::pack_recurrent_weights(w.data_ptr<float>(), packed.data(), h);
  const bool project = projection.defined() && projection.size(0) % kernels::kProjectionBlock == 0;
  const std::int64_t a = project ? projection.size(0) : 0;
  TORCH_CHECK(
      !project || (projection.dim() == 2 && projection.size(1) == h &&
                   projection.scalar_type() == torch::kFloat32 && projection.device().is_cpu()),
      "fused_lstm_items projection: expected float32 CPU [a, ", h, "], got ", projection.sizes());
  torch::Tensor proj;
  float* proj_data = nullptr;
  std::vector<float> packed_proj(static_cast<std::size_t>(a * h));
  if (project) {
    proj = torch::empty({b, t, a}, item_gates.options());
    proj_data = proj.data_ptr<float>();
    const auto pw = projection.contiguous();
    kernels::pack_projection_weights(pw.data_ptr<float>(), packed_proj.data(), a, h);
  }
  for (std::int64_t row = 0; row < b; ++row) {
    if (len[row] == 0) std::memset(out_data + row * t * h, 0, sizeof(float) * t * h);
    if (len[row] == 0 && project) std::memset(proj_data + row * t * a, 0, sizeof(float) * t * a);
  }
  for_each_part(plan, [&](std::int64_t, const Plan::Part& part) {
    const auto n = static_cast<std::size_t>(part.sequences);
    std::vector<float> cells(n * static_cast<std::size_t>(h));
    std::vector<const float*> x(n), h_prev(n);
    std::vector<float*> h_out(n), proj_out(project ? n : 0);
    for (std::size_t s = 0; s < part.count.size(); ++s) {
      const std::int64_t rows = part.count[s], step = static_cast<std::int64_t>(s);
      for (std::int64_t i = 0; i < rows; ++i) {
        const std::int64_t row = part.order[static_cast<std::size_t>(i)];
        x[static_cast<std::size_t>(i)] = item_row(row, step);
        h_out[static_cast<std::size_t>(i)] = out_data + (row * t + step) * h;
        if (project) proj_out[static_cast<std::size_t>(i)] = proj_data + (row * t + step) * a;
      }
      kernels::lstm_items_step(packed.data(), x.data(), s > 0 ? h_prev.data() : nullptr,
                               cells.data(), h_out.data(), rows, h,
                               project ? packed_proj.data() : nullptr, proj_out.data(), a);
      std::copy(h_out.begin(), h_out.begin() + rows, h_prev.begin());
    }
    for (const std::int64_t row : part.order) {  // zero the padding after each sequence
      std::memset(out_data + (row * t + len[row]) * h, 0, sizeof(float) * (t - len[row]) * h);
      if (project) {
        std::memset(proj_data + (row * t + len[row]) * a, 0, sizeof(float) * (t - len[row]) * a);
      }
    }
  });
  return {out, proj};
}

}  // namespace attnrec
