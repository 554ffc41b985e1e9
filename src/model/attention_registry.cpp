// The attention variants' registry: every model.attention.type name and its factory, in one
// table filled in one function (as CTranslate2 registers its models). Each variant lives in
// src/model/attention/NAME.cpp; its name and description are a choice in config/choices.cpp.
#include "attnrec/model/attention.hpp"

namespace attnrec {

// Defined in src/model/attention/*.cpp.
std::unique_ptr<AttentionScorer> make_additive_attention();
std::unique_ptr<AttentionScorer> make_cosine_attention();
std::unique_ptr<AttentionScorer> make_dot_attention();
std::unique_ptr<AttentionScorer> make_last_attention();
std::unique_ptr<AttentionScorer> make_multi_head_attention();
std::unique_ptr<AttentionScorer> make_none_attention();
std::unique_ptr<AttentionScorer> make_scaled_dot_attention();

namespace {

void register_attention_variants(std::map<std::string, AttentionFactory>& registry) {
  registry["additive"] = make_additive_attention;
  registry["cosine"] = make_cosine_attention;
  registry["dot"] = make_dot_attention;
  registry["last"] = make_last_attention;
  registry["multi_head"] = make_multi_head_attention;
  registry["none"] = make_none_attention;
  registry["scaled_dot"] = make_scaled_dot_attention;
}

}  // namespace

const std::map<std::string, AttentionFactory>& attention_registry() {
  static const auto registry = [] {
    std::map<std::string, AttentionFactory> r;
    register_attention_variants(r);
    return r;
  }();
  return registry;
}

}  // namespace attnrec
