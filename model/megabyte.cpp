// The MEGABYTE network: modules, full forward pass and cached incremental decoding.
// Shapes: B batch, T bytes, K = ceil(T / P) patches, P patch size, Dg / Dl global / local
// width, H heads, d = D / H head width, N streams of the decoder.
#include "model/megabyte.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "codec/error.h"
#include "model/torch_compat.h"

namespace mbz::model {

namespace {

namespace F = torch::nn::functional;

// GPT-2's initialisation: N(0, 0.02) everywhere, residual output projections scaled down by
// sqrt(2 * layers) so the residual stream's variance does not grow with depth.
void init_normal(torch::Tensor& w, double std) {
  torch::NoGradGuard no_grad;
  w.normal_(0.0, std);
}

// x rounded to the int8 grid of `scale` (scale times round_to_int8), with the gradient of x
// passed through unchanged: the straight-through estimator (Bengio et al. 2013). The value
// of x + (q(x) - x).detach(), without that form's two extra passes over the activations
// and the float rounding it can leave on q; the rounding is done in place in the one new
// tensor, since fake quantization's cost on the CPU is memory traffic.
struct RoundThrough : torch::autograd::Function<RoundThrough> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& x,
                               const torch::Tensor& scale) {
    return round_to_int8(x.to(torch::kFloat), scale).mul_(scale).to(x.scalar_type());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 const torch::autograd::variable_list& grad) {
    return {grad[0], torch::Tensor()};
  }
};

}  // namespace

torch::Tensor weight_scales(const torch::Tensor& w) {
  return w.abs().amax(1, /*keepdim=*/true).clamp_min(1e-12) / 127;
}

torch::Tensor round_to_int8(const torch::Tensor& x, const torch::Tensor& scale) {
  return (x / scale).round_().clamp_(-127, 127);
}

torch::Tensor FakeQuant::weight(const torch::Tensor& w) const {
  if (!on) return w;
  return RoundThrough::apply(w, weight_scales(w.detach()));
}

torch::Tensor FakeQuant::linear(torch::nn::Linear& l, const torch::Tensor& x) const {
  return on ? F::linear(x, weight(l->weight), l->bias) : l(x);
}

torch::Tensor FakeQuant::activation(const torch::Tensor& x, torch::Tensor& range,
                                    bool training) const {
  if (!on) return x;
  constexpr double kMomentum = 0.99;
  const torch::Tensor detached = x.detach();
  auto max_abs = [&] { return torch::maximum(detached.max(), -detached.min()).to(torch::kFloat); };
  if (training)
    range = range.defined() ? kMomentum * range + (1 - kMomentum) * max_abs() : max_abs();
  // The engine's activation scale: max |x| / 127, at least 1e-6 / 127 (ExactModel::quantize).
  const torch::Tensor scale = (range.defined() ? range : max_abs()).clamp_min(1e-6) / 127;
  return RoundThrough::apply(x, scale);
}

RMSNormImpl::RMSNormImpl(int64_t width) {
  weight = register_parameter("weight", torch::ones({width}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  return compat::rms_norm(x, weight, 1e-6);
}

AttentionImpl::AttentionImpl(int64_t width, int64_t heads,
                             std::shared_ptr<const FakeQuant> fake_quant)
    : heads(heads), fake_quant(std::move(fake_quant)) {
  qkv = register_module("qkv",
                        torch::nn::Linear(torch::nn::LinearOptions(width, 3 * width).bias(false)));
  out =
      register_module("out", torch::nn::Linear(torch::nn::LinearOptions(width, width).bias(false)));
}

std::array<torch::Tensor, 3> AttentionImpl::project(const torch::Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1), d = x.size(2);
  // [B, T, 3D] -> [3, B, H, T, d]
  const torch::Tensor qkv_heads =
      fake_quant->linear(qkv, x).view({b, t, 3, heads, d / heads}).permute({2, 0, 3, 1, 4});
  const bool training = is_training();
  return {fake_quant->activation(qkv_heads[0], q_range, training),
          fake_quant->activation(qkv_heads[1], k_range, training),
          fake_quant->activation(qkv_heads[2], v_range, training)};
}

torch::Tensor AttentionImpl::merge(const torch::Tensor& y) {
  const int64_t b = y.size(0), t = y.size(2), d = y.size(1) * y.size(3);
  const torch::Tensor attended = y.transpose(1, 2).reshape({b, t, d});  // [B, H, T, d] -> [B, T, D]
  return fake_quant->linear(out, fake_quant->activation(attended, attended_range, is_training()));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const auto [q, k, v] = project(x);
  return merge(compat::attention(q, k, v, true));
}

torch::Tensor AttentionImpl::step(const torch::Tensor& x, KvCache& cache) {
  if (cache.length >= cache.k.size(2))
    throw Error(ErrorCode::kUsageBadArgument,
                "decoder: context of " + std::to_string(cache.k.size(2)) + " positions is full");
  const auto [q, k, v] = project(x);
  cache.k.narrow(2, cache.length, 1).copy_(k);  // [N, H, 1, d]
  cache.v.narrow(2, cache.length, 1).copy_(v);
  ++cache.length;
  return merge(compat::attention(q, cache.k.narrow(2, 0, cache.length),
                                 cache.v.narrow(2, 0, cache.length), false));
}

BlockImpl::BlockImpl(int64_t width, int64_t heads, int64_t mlp_ratio, const std::string& activation,
                     std::shared_ptr<const FakeQuant> fake_quant)
    : relu2(activation == "relu2"), fake_quant(std::move(fake_quant)) {
  norm1 = register_module("norm1", RMSNorm(width));
  attn = register_module("attn", Attention(width, heads, this->fake_quant));
  norm2 = register_module("norm2", RMSNorm(width));
  up = register_module(
      "up", torch::nn::Linear(torch::nn::LinearOptions(width, mlp_ratio * width).bias(false)));
  down = register_module(
      "down", torch::nn::Linear(torch::nn::LinearOptions(mlp_ratio * width, width).bias(false)));
}

torch::Tensor BlockImpl::mlp_residual(const torch::Tensor& h) {
  const bool training = is_training();
  const torch::Tensor u =
      fake_quant->linear(up, fake_quant->activation(norm2(h), norm2_range, training));
  // relu(u) * relu(u) rather than .square(): under CUDA autocast square() (a pow) runs in
  // fp32, which turned the widest activation of the block into an fp32 tensor.
  torch::Tensor hidden;
  if (relu2) {
    const torch::Tensor r = torch::relu(u);
    hidden = r * r;
  } else {
    hidden = torch::gelu(u, "tanh");
  }
  return h + fake_quant->linear(down, fake_quant->activation(hidden, hidden_range, training));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  return mlp_residual(x +
                      attn->forward(fake_quant->activation(norm1(x), norm1_range, is_training())));
}

torch::Tensor BlockImpl::step(const torch::Tensor& x, KvCache& cache) {
  return mlp_residual(
      x + attn->step(fake_quant->activation(norm1(x), norm1_range, is_training()), cache));
}

TransformerImpl::TransformerImpl(int64_t width, int64_t layers, int64_t heads, int64_t mlp_ratio,
                                 const std::string& activation,
                                 std::shared_ptr<const FakeQuant> fake_quant)
    : width(width), heads(heads), fake_quant(std::move(fake_quant)) {
  for (int64_t i = 0; i < layers; ++i) {
    Block block(width, heads, mlp_ratio, activation, this->fake_quant);
    init_normal(block->attn->qkv->weight, 0.02);
    init_normal(block->attn->out->weight, 0.02 / std::sqrt(2.0 * layers));
    init_normal(block->up->weight, 0.02);
    init_normal(block->down->weight, 0.02 / std::sqrt(2.0 * layers));
    blocks->push_back(block);
  }
  blocks = register_module("layers", blocks);
  norm = register_module("norm", RMSNorm(width));
}

torch::Tensor TransformerImpl::forward(torch::Tensor x) {
  // Inference on the CPU runs the stack over slices of the batch of about kSliceRows
  // positions: the activations of a slice (the MLP's hidden layer is 4 x 128 x 4 bytes a
  // position in the small preset's local model) then stay in cache and in memory malloc
  // reuses, where the whole batch's (16 MB for one 8 KiB window) went back to the kernel and
  // came back as fresh zeroed pages on every operation. Measured on a 2-core EPYC: the small
  // preset's local stack 3x faster. Rows do not interact, so slicing changes nothing but
  // float rounding.
  constexpr int64_t kSliceRows = 1024;
  const int64_t per_slice = std::max<int64_t>(1, kSliceRows / std::max<int64_t>(1, x.size(1)));
  if (!torch::GradMode::is_enabled() && x.device().is_cpu() && x.size(0) > per_slice) {
    std::vector<torch::Tensor> slices;
    for (int64_t i = 0; i < x.size(0); i += per_slice)
      slices.push_back(forward(x.narrow(0, i, std::min(per_slice, x.size(0) - i))));
    return torch::cat(slices, 0);
  }
  for (const auto& block : *blocks) x = block->as<Block>()->forward(x);
  return fake_quant->activation(norm(x), norm_range, is_training());
}

torch::Tensor TransformerImpl::step(torch::Tensor x, std::vector<KvCache>& caches) {
  for (size_t i = 0; i < blocks->size(); ++i) x = blocks[i]->as<Block>()->step(x, caches[i]);
  return fake_quant->activation(norm(x), norm_range, is_training());
}

std::vector<KvCache> TransformerImpl::new_caches(int64_t n, int64_t capacity,
                                                 const torch::TensorOptions& o) {
  std::vector<KvCache> caches(blocks->size());
  for (KvCache& c : caches) {
    c.k = torch::zeros({n, heads, capacity, width / heads}, o);
    c.v = torch::zeros({n, heads, capacity, width / heads}, o);
  }
  return caches;
}

MegabyteImpl::MegabyteImpl(const Config& c) : config(c) {
  config.validate();
  const int64_t p = c.patch, dg = c.global_width, dl = c.local_width;
  global_bytes = register_module("global_bytes", torch::nn::Embedding(kVocab, dg / p));
  global_start = register_parameter("global_start", torch::zeros({kModalities, dg}));
  global_position = register_parameter("global_position", torch::zeros({c.context, dg}));
  global = register_module("global", Transformer(dg, c.global_layers, c.global_heads, c.mlp_ratio,
                                                 c.activation, fake_quant));
  global_to_local_proj = register_module(
      "global_to_local", torch::nn::Linear(torch::nn::LinearOptions(dg / p, dl).bias(false)));
  local_bytes = register_module("local_bytes", torch::nn::Embedding(kVocab, dl));
  local_position = register_parameter("local_position", torch::zeros({p, dl}));
  local = register_module("local", Transformer(dl, c.local_layers, c.local_heads, c.mlp_ratio,
                                               c.activation, fake_quant));
  head = register_module("head",
                         torch::nn::Linear(torch::nn::LinearOptions(dl, kByteValues).bias(false)));
  for (torch::Tensor* w :
       {&global_bytes->weight, &global_start, &global_position, &global_to_local_proj->weight,
        &local_bytes->weight, &local_position, &head->weight})
    init_normal(*w, 0.02);
}

torch::Tensor MegabyteImpl::embed_patches(const torch::Tensor& patches) {
  const int64_t b = patches.size(0), k = patches.size(1);
  return global_bytes(patches).reshape(
      {b, k, config.global_width});  // [B, K, P, Dg/P] -> [B, K, Dg]
}

torch::Tensor MegabyteImpl::global_to_local(const torch::Tensor& global_out) {
  const int64_t b = global_out.size(0), k = global_out.size(1), p = config.patch;
  // [B, K, Dg] -> [B, K, P, Dg/P] -> [B, K, P, Dl]
  return fake_quant->linear(global_to_local_proj,
                            global_out.reshape({b, k, p, config.global_width / p}));
}

torch::Tensor MegabyteImpl::logits(const torch::Tensor& local_out) {
  return fake_quant->linear(head, local_out);
}

torch::Tensor MegabyteImpl::forward(const torch::Tensor& bytes, const torch::Tensor& modality) {
  const int64_t b = bytes.size(0), t = bytes.size(1), p = config.patch;
  const int64_t k = (t + p - 1) / p;
  if (t == 0 || k > config.context)
    throw Error(ErrorCode::kUsageBadArgument, "megabyte: " + std::to_string(t) +
                                                  " bytes, expected 1 to " +
                                                  std::to_string(config.context_bytes()));
  // [B, K*P] padded with kPadId, then [B, K, P].
  const torch::Tensor patches =
      F::pad(bytes, F::PadFuncOptions({0, k * p - t}).value(kPadId)).view({b, k, p});

  // Global: each patch slot sees the patches before it; slot 0 sees the modality's start patch.
  const torch::Tensor start = global_start.index_select(0, modality).unsqueeze(1);  // [B, 1, Dg]
  const torch::Tensor embedded = embed_patches(patches.narrow(1, 0, k - 1));        // [B, K-1, Dg]
  const torch::Tensor global_in =
      torch::cat({start, embedded}, 1) + global_position.narrow(0, 0, k);       // [B, K, Dg]
  const torch::Tensor condition = global_to_local(global->forward(global_in));  // [B, K, P, Dl]

  // Local: byte j of a patch sees the global output for its patch and bytes 0..j-1 of it.
  const torch::Tensor local_ids = torch::cat(
      {torch::full({b, k, 1}, kStartId, patches.options()), patches.narrow(2, 0, p - 1)}, 2);
  const torch::Tensor local_in =
      condition + local_bytes(local_ids) + local_position;  // [B, K, P, Dl]
  const torch::Tensor local_out =
      local->forward(local_in.reshape({b * k, p, config.local_width}));  // [B*K, P, Dl]
  return logits(local_out).view({b, k * p, kByteValues}).narrow(1, 0, t);  // [B, T, 256]
}

torch::Tensor MegabyteImpl::loss(const torch::Tensor& bytes, const torch::Tensor& modality) {
  const torch::Tensor logits = forward(bytes, modality).to(torch::kFloat);  // fp32 under autocast
  return F::cross_entropy(logits.reshape({-1, kByteValues}), bytes.reshape({-1}));
}

int64_t MegabyteImpl::parameter_count() {
  int64_t n = 0;
  for (const torch::Tensor& p : parameters()) n += p.numel();
  return n;
}

Decoder::Decoder(Megabyte model, const torch::Tensor& modality)
    : model_(std::move(model)), modality_(modality), n_(modality.size(0)) {
  const Config& c = model_->config;
  const torch::TensorOptions o = model_->global_start.options();
  global_caches_ = model_->global->new_caches(n_, c.context, o);
  local_caches_ = model_->local->new_caches(n_, c.patch, o);
  patch_ = torch::zeros({n_, c.patch}, modality.options());
  previous_ = torch::full({n_}, kStartId, modality.options());
}

torch::Tensor Decoder::next_logits() {
  torch::NoGradGuard no_grad;
  const Config& c = model_->config;
  const int64_t j = position_ % c.patch, k = position_ / c.patch;
  if (position_ >= c.context_bytes())
    throw Error(ErrorCode::kUsageBadArgument, "decoder: streams end at the context, " +
                                                  std::to_string(c.context_bytes()) + " bytes");
  if (j == 0) {
    // A new patch: the global model takes the previous patch (or the start patch) once.
    torch::Tensor in = k == 0 ? model_->global_start.index_select(0, modality_).unsqueeze(1)
                              : model_->embed_patches(patch_.unsqueeze(1));  // [N, 1, Dg]
    in = in + model_->global_position.narrow(0, k, 1);
    const torch::Tensor g = model_->global->step(in, global_caches_);  // [N, 1, Dg]
    condition_ = model_->global_to_local(g).squeeze(1);                // [N, P, Dl]
    for (KvCache& cache : local_caches_) cache.length = 0;
  }
  const torch::Tensor in = condition_.select(1, j) + model_->local_bytes(previous_) +
                           model_->local_position[j];                           // [N, Dl]
  const torch::Tensor h = model_->local->step(in.unsqueeze(1), local_caches_);  // [N, 1, Dl]
  pending_ = model_->logits(h.squeeze(1));                                      // [N, 256]
  return pending_;
}

void Decoder::push(const torch::Tensor& bytes) {
  if (!pending_.defined())
    throw Error(ErrorCode::kUsageBadArgument, "decoder: push() without next_logits()");
  const int64_t j = position_ % model_->config.patch;
  patch_.select(1, j).copy_(bytes);
  previous_ = bytes.clone();
  pending_ = torch::Tensor();
  ++position_;
  if (position_ % model_->config.patch == 0) previous_.fill_(kStartId);
}

}  // namespace mbz::model
