#pragma once
// Private to src/model: additive attention for inference, fused over raw float rows.

#include <cstdint>

namespace attnrec::kernels {

/// For each row b of `rows`: scores s_t = v . tanh(key_projection[b, t] + query_projection[b])
/// over the positions with mask[b, t]; weights = softmax over those positions (zero elsewhere,
/// all zero when the row has none); context[b] = sum_t weights[b, t] keys[b, t].
/// Shapes: key_projection [rows, steps, a], query_projection [rows, a], v [a],
/// keys [rows, steps, d], mask [rows, steps]; outputs weights [rows, steps], context [rows, d].
void additive_attention_forward(const float* key_projection, const float* query_projection,
                                const float* v, const float* keys, const bool* mask, float* weights,
                                float* context, std::int64_t rows, std::int64_t steps,
                                std::int64_t a, std::int64_t d);

/// One history against many queries (ranking): for each row r, s_t = v . tanh(key_projection[t]
/// + query_projection[r]) over every position t (the caller passes only valid positions),
/// softmax over t, context[r] = sum_t weights_t keys[t]. With steps == 0 the contexts are zero.
/// Shapes: key_projection [steps, a], query_projection [rows, a], v [a], keys [steps, d];
/// `scratch` holds `steps` floats; output context [rows, d].
void additive_attention_shared(const float* key_projection, const float* query_projection,
                               const float* v, const float* keys, float* scratch, float* context,
                               std::int64_t rows, std::int64_t steps, std::int64_t a,
                               std::int64_t d);

}  // namespace attnrec::kernels
