#include "codec/order2_model.h"

#include <algorithm>
#include <array>

namespace mbz {
namespace {

constexpr size_t kContexts2 = 65536, kContexts1 = 256;
constexpr size_t kContexts = kContexts2 + kContexts1 + 1;
constexpr size_t kOffset1 = kContexts2, kOffset0 = kContexts2 + kContexts1;

// Probability mass shared out per byte. 2^24 keeps every product count × share inside
// 32 bits (a count never exceeds its context's total, and total × share <= 2^24).
constexpr uint32_t kMass = 1u << 24;

// Halving limits per order 0, 1, 2. Measured with `mbz score` on vim's version8.txt,
// GPL-3 and perldiag.pod (2.2055 bits/byte over the three): no halving gave 2.2108,
// {1024, 512, 255} 2.2483, {8192, 4096, 4096} 2.2085. The PPM-C escape n + q beat
// n + q/2 (2.2073) and n + 2q (2.2173) there too.
constexpr uint16_t kLimit[3] = {8192, 2048, 1024};

}  // namespace

Order2Model::Order2Model()
    : counts_(new uint16_t[kContexts * 256]),
      totals_(kContexts),
      distinct_(kContexts),
      stamps_(kContexts, 0) {}

void Order2Model::reset() {
  if (++epoch_ == 0) {  // after 2^32 resets: make every stamp stale again
    std::fill(stamps_.begin(), stamps_.end(), 0);
    epoch_ = 1;
  }
  history_ = 0;
}

Order2Model::Context Order2Model::context(int order) {
  const size_t index = order == 2   ? (history_ & 0xFFFF)
                       : order == 1 ? kOffset1 + (history_ & 0xFF)
                                    : kOffset0;
  uint16_t* counts = counts_.get() + index * 256;
  if (stamps_[index] != epoch_) {
    std::fill(counts, counts + 256, 0);
    totals_[index] = distinct_[index] = 0;
    stamps_[index] = epoch_;
  }
  return {counts, &totals_[index], &distinct_[index], kLimit[order]};
}

void Order2Model::predict(Cdf& out) {
  // Shares, highest order first: order k gets share / (n + q) per count, the rest escapes.
  uint32_t share[3];
  const uint16_t* counts[3];
  uint32_t left = kMass;
  for (int order = 2; order >= 0; --order) {
    const Context ctx = context(order);
    counts[order] = ctx.counts;
    const uint32_t n = *ctx.total, q = *ctx.distinct;
    share[order] = n == 0 ? 0 : left / (n + q);
    left -= share[order] * n;
  }
  const uint32_t floor = left / 256;
  std::array<uint64_t, 256> weights;
  for (int s = 0; s < 256; ++s)
    weights[s] =
        floor + counts[2][s] * share[2] + counts[1][s] * share[1] + counts[0][s] * share[0];
  cdf_from_weights(weights, out);
}

void Order2Model::add(const Context& ctx, uint8_t byte) {
  if (ctx.counts[byte] == 0) ++*ctx.distinct;
  ++ctx.counts[byte];
  if (++*ctx.total < ctx.limit) return;
  // Halve, rounding up, so that a byte once seen stays seen and `distinct` stays true.
  uint32_t total = 0;
  for (int s = 0; s < 256; ++s) {
    ctx.counts[s] = static_cast<uint16_t>((ctx.counts[s] + 1) >> 1);
    total += ctx.counts[s];
  }
  *ctx.total = static_cast<uint16_t>(total);
}

void Order2Model::update(uint8_t byte) {
  for (int order = 0; order <= 2; ++order) add(context(order), byte);
  history_ = ((history_ << 8) | byte) & 0xFFFF;
}

namespace {

// Spare models kept for reuse; beyond this many, released models are freed.
constexpr size_t kMaxSpare = 8;

class Order2Batch final : public BatchByteModel {
 public:
  Order2Batch(const Order2Factory& factory, size_t max_streams) : factory_(factory) {
    for (size_t i = 0; i < max_streams; ++i) models_.push_back(factory.take());
  }
  ~Order2Batch() override {
    for (auto& model : models_) factory_.give_back(std::move(model));
  }
  void reset(size_t n_streams) override {
    for (size_t i = 0; i < n_streams; ++i) models_[i]->reset();
  }
  size_t max_streams() const override { return models_.size(); }
  void predict(std::span<const uint32_t> ids, std::span<Cdf> tables) override {
    for (size_t k = 0; k < ids.size(); ++k) models_[ids[k]]->predict(tables[k]);
  }
  void update(std::span<const uint32_t> ids, std::span<const uint8_t> bytes) override {
    for (size_t k = 0; k < ids.size(); ++k) models_[ids[k]]->update(bytes[k]);
  }

 private:
  const Order2Factory& factory_;
  std::vector<std::unique_ptr<Order2Model>> models_;
};

}  // namespace

Order2Factory::Order2Factory()
    : identity_(builtin_identity(kName,
                                 "mbz built-in: order-0/1/2 PPM-C blend, mass 2^24, "
                                 "limits 8192/2048/1024, version 1")) {}

Order2Factory::~Order2Factory() = default;

std::unique_ptr<BatchByteModel> Order2Factory::create(size_t max_streams) const {
  return std::make_unique<Order2Batch>(*this, max_streams);
}

std::unique_ptr<Order2Model> Order2Factory::take() const {
  {
    std::lock_guard lock(mutex_);
    if (!spare_.empty()) {
      std::unique_ptr<Order2Model> model = std::move(spare_.back());
      spare_.pop_back();
      return model;
    }
  }
  return std::make_unique<Order2Model>();
}

void Order2Factory::give_back(std::unique_ptr<Order2Model> model) const {
  std::lock_guard lock(mutex_);
  if (spare_.size() < kMaxSpare) spare_.push_back(std::move(model));
}

}  // namespace mbz
