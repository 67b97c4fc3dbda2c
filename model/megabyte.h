// The MEGABYTE byte transformer (Yu et al. 2023, arXiv 2305.07185): a global transformer
// over patches of P bytes and a local transformer inside each patch. One readable file for
// the network, as nanoGPT's model.py: the config, the modules, the full forward pass and
// the cached incremental decoder, with tensor shapes in comments.
//
//   bytes x[0..T)  ──patch embed──►  [B, K, Dg]  ──shift right one patch (start patch of the
//   modality)──► global causal transformer ──► [B, K, Dg] ──split into P slices, project──►
//   [B, K, P, Dl] + local byte embeddings (shifted right one byte, local start) + local
//   positions ──► local causal transformer per patch ──► logits [B, T, 256]
//
// Norm and activation are RMSNorm and ReLU²: both are computed exactly in integer
// arithmetic by the exact engine (model/exact.h), whose int8 rounding the network can
// train against (FakeQuant, quantization-aware training).
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace mbz::model {

// Token ids. Byte values are 0..255 (0x00 is an ordinary byte); two more ids follow.
inline constexpr int64_t kByteValues = 256;
inline constexpr int64_t kPadId = 256;    // fills the last patch when T is not a multiple of P
inline constexpr int64_t kStartId = 257;  // local start: the byte before each patch's first
inline constexpr int64_t kVocab = 258;
// Start patches, one per modality, numbered as io::Modality (raw, text, image, audio).
inline constexpr int64_t kModalities = 4;

struct Config {
  std::string name = "custom";       // preset name, or "custom" for a JSON file
  int64_t patch = 8;                 // P: bytes per patch (the paper's default is 8)
  int64_t global_width = 256;        // Dg: global model width; a multiple of P and of global_heads
  int64_t global_layers = 4;         // global transformer blocks
  int64_t global_heads = 4;          // global attention heads
  int64_t local_width = 128;         // Dl: local model width; a multiple of local_heads
  int64_t local_layers = 2;          // local transformer blocks
  int64_t local_heads = 4;           // local attention heads
  int64_t context = 1024;            // K: context in patches, so K * P bytes
  int64_t mlp_ratio = 4;             // hidden width of each MLP, in multiples of the block width
  std::string norm = "rmsnorm";      // only "rmsnorm": integer-friendly, no mean subtraction
  std::string activation = "relu2";  // "relu2" (max(x,0)^2) or "gelu" (tanh approximation)

  int64_t context_bytes() const { return context * patch; }
  // Forward-pass FLOPs per byte (matrix products and attention; a multiply-add is 2) for
  // windows of `window` bytes: what MFU figures count. Training costs about 3 times this.
  double forward_flops_per_byte(int64_t window) const;
  // Throws mbz::Error (kUsageBadArgument) naming the field that is out of range.
  void validate() const;
  // A flat JSON object with every field, readable by config_from_json.
  std::string to_json() const;
};

// "tiny" (tests: trains in seconds), "small" (fast on a 2-core CPU, 8 KiB context),
// "base" (GPU, ~30M parameters, 32 KiB context). Throws kUsageBadArgument for other names.
Config preset(const std::string& name);
// A JSON object of Config fields; missing fields keep the defaults, unknown ones are an error.
Config config_from_json(const std::string& json);
// A flat JSON object whose values are numbers, strings or words ({"patch": 8, "qat": true})
// as key -> value text; nested values are refused (kUsageBadArgument). Configs and the
// training flags of checkpoints are written in it.
std::map<std::string, std::string> parse_flat_json(const std::string& text);
// A preset name, or the path of a JSON file.
Config load_config(const std::string& name_or_path);

// The exact engine's int8 rounding (model/EXACT.md, "Quantization"), one rule for
// ExactModel::quantize and for fake quantization. weight_scales: per output channel scales
// of a weight [O, I], max_i |w[o, i]| / 127 (at least 1e-12 / 127), as [O, 1].
// round_to_int8: round(x / scale) clamped to -127..127, as a float tensor.
torch::Tensor weight_scales(const torch::Tensor& w);
torch::Tensor round_to_int8(const torch::Tensor& x, const torch::Tensor& scale);

// Quantization-aware training (model/EXACT.md, "Quantization-aware training"). With `on`,
// the forward pass computes with what the exact engine rounds to int8: the weight of every
// Linear it quantizes, per output channel, and the activation at each of its int8 sites
// (the RMSNorm outputs, q, k, v, the attention output, the ReLU² output), with the scale
// range / 127 of the site's running max |x|. Gradients pass straight through the rounding
// (Bengio et al. 2013). Off, the default, every function returns what the float network
// computes, bit for bit. One object is shared by all the modules of a network.
struct FakeQuant {
  bool on = false;
  // l(x), l's weight rounded as ExactModel::quantize rounds it.
  torch::Tensor linear(torch::nn::Linear& l, const torch::Tensor& x) const;
  // The weight [O, I] as the engine computes with it: int8 times its row's scale.
  torch::Tensor weight(const torch::Tensor& w) const;
  // x at an int8 site whose running max |x| is `range` (a scalar; undefined before the
  // first pass). Training updates it before rounding: the first batch's max, then an
  // average weighted 0.99 to the past, as PyTorch's moving-average observer does. Eval
  // leaves it as it is, so the scales are fixed as the engine's are (undefined: this x's
  // own max).
  torch::Tensor activation(const torch::Tensor& x, torch::Tensor& range, bool training) const;
};

// x * rsqrt(mean(x^2) + eps) * weight, over the last dim.
struct RMSNormImpl : torch::nn::Module {
  explicit RMSNormImpl(int64_t width);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  // [D]
};
TORCH_MODULE(RMSNorm);

// Keys and values of one attention layer for incremental decoding: [N, H, capacity, d].
struct KvCache {
  torch::Tensor k, v;
  int64_t length = 0;  // positions filled
};

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t width, int64_t heads, std::shared_ptr<const FakeQuant> fake_quant);
  // x: [B, T, D] -> [B, T, D], causal.
  torch::Tensor forward(const torch::Tensor& x);
  // x: [N, 1, D], one new position appended to `cache` -> [N, 1, D].
  torch::Tensor step(const torch::Tensor& x, KvCache& cache);
  // x: [B, T, D] -> q, k, v: [B, H, T, d] each.
  std::array<torch::Tensor, 3> project(const torch::Tensor& x);
  // Attention output y: [B, H, T, d] -> [B, T, D], at its int8 site, through `out`.
  torch::Tensor merge(const torch::Tensor& y);
  int64_t heads;
  torch::nn::Linear qkv{nullptr}, out{nullptr};  // [3D, D], [D, D]; no biases
  std::shared_ptr<const FakeQuant> fake_quant;
  torch::Tensor q_range, k_range, v_range, attended_range;  // int8 sites (FakeQuant)
};
TORCH_MODULE(Attention);

struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t width, int64_t heads, int64_t mlp_ratio, const std::string& activation,
            std::shared_ptr<const FakeQuant> fake_quant);
  torch::Tensor forward(const torch::Tensor& x);               // [B, T, D] -> [B, T, D]
  torch::Tensor step(const torch::Tensor& x, KvCache& cache);  // [N, 1, D] -> [N, 1, D]
  // The second half of the block, after attention's residual: h [.., D] -> [.., D].
  torch::Tensor mlp_residual(const torch::Tensor& h);
  bool relu2;
  RMSNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  torch::nn::Linear up{nullptr}, down{nullptr};  // [rD, D], [D, rD]
  std::shared_ptr<const FakeQuant> fake_quant;
  torch::Tensor norm1_range, norm2_range, hidden_range;  // int8 sites (FakeQuant)
};
TORCH_MODULE(Block);

// A stack of pre-norm blocks and a final norm.
struct TransformerImpl : torch::nn::Module {
  TransformerImpl(int64_t width, int64_t layers, int64_t heads, int64_t mlp_ratio,
                  const std::string& activation, std::shared_ptr<const FakeQuant> fake_quant);
  torch::Tensor forward(torch::Tensor x);                             // [B, T, D]
  torch::Tensor step(torch::Tensor x, std::vector<KvCache>& caches);  // [N, 1, D]
  // Empty caches for `n` streams of up to `capacity` positions.
  std::vector<KvCache> new_caches(int64_t n, int64_t capacity, const torch::TensorOptions& o);
  int64_t width, heads;
  torch::nn::ModuleList blocks;
  RMSNorm norm{nullptr};
  std::shared_ptr<const FakeQuant> fake_quant;
  torch::Tensor norm_range;  // the int8 site of the final norm (FakeQuant)
};
TORCH_MODULE(Transformer);

struct MegabyteImpl : torch::nn::Module {
  explicit MegabyteImpl(const Config& config);

  // bytes: [B, T] int64 (0..255, T <= context_bytes; padded to whole patches inside),
  // modality: [B] int64 (0..3) -> logits [B, T, 256].
  torch::Tensor forward(const torch::Tensor& bytes, const torch::Tensor& modality);
  // Mean cross-entropy of the next-byte predictions over all of `bytes`, in nats.
  torch::Tensor loss(const torch::Tensor& bytes, const torch::Tensor& modality);
  int64_t parameter_count();

  // Pieces shared by forward() and Decoder.
  // patches: [B, K, P] ids -> [B, K, Dg] (concatenated byte embeddings, no position).
  torch::Tensor embed_patches(const torch::Tensor& patches);
  // global output [B, K, Dg] -> per-byte local conditioning [B, K, P, Dl].
  torch::Tensor global_to_local(const torch::Tensor& global_out);
  // local output [.., Dl] -> logits [.., 256].
  torch::Tensor logits(const torch::Tensor& local_out);

  Config config;
  // Quantization-aware training: set fake_quant->on to train against the exact engine's
  // rounding. Its running ranges are not parameters: checkpoints do not hold them.
  std::shared_ptr<FakeQuant> fake_quant = std::make_shared<FakeQuant>();
  torch::nn::Embedding global_bytes{nullptr};  // [258, Dg/P]
  torch::Tensor global_start;                  // [4, Dg]: the start patch of each modality
  torch::Tensor global_position;               // [K, Dg]
  Transformer global{nullptr};
  torch::nn::Linear global_to_local_proj{nullptr};  // [Dl, Dg/P]
  torch::nn::Embedding local_bytes{nullptr};        // [258, Dl]
  torch::Tensor local_position;                     // [P, Dl]
  Transformer local{nullptr};
  torch::nn::Linear head{nullptr};  // [256, Dl]
};
TORCH_MODULE(Megabyte);

// Incremental decoding for a batch of N independent streams moving in step: the global
// model runs once per patch (when the stream enters a new one), the local model once per
// byte, each against its key/value caches. Gives the same distributions as forward() on
// the stream so far, up to float rounding. Streams end at context_bytes().
class Decoder {
 public:
  // modality: [N] int64, on the model's device.
  Decoder(Megabyte model, const torch::Tensor& modality);
  // Logits for the next byte of every stream: [N, 256]. Call once per position.
  torch::Tensor next_logits();
  // The byte that came next in each stream: [N] int64 (0..255).
  void push(const torch::Tensor& bytes);
  int64_t position() const { return position_; }

 private:
  Megabyte model_;
  torch::Tensor modality_;  // [N]
  int64_t n_;
  int64_t position_ = 0;  // bytes pushed so far
  std::vector<KvCache> global_caches_, local_caches_;
  torch::Tensor patch_;      // [N, P] bytes of the current patch so far
  torch::Tensor previous_;   // [N] id of the previous byte (kStartId at a patch start)
  torch::Tensor condition_;  // [N, P, Dl] the global model's output for this patch
  torch::Tensor pending_;    // [N, 256] logits computed by next_logits, not yet pushed
};

}  // namespace mbz::model
