// The classical built-in model: order-0, order-1 and order-2 byte contexts, blended as PPM
// blends them. Each context counts the bytes seen after it; the order-2 context gets a
// share n/(n+q) of the probability mass (n bytes seen, q distinct: the PPM method C
// escape estimate), the rest escapes to order 1, then order 0, then a uniform floor. All
// arithmetic is on 32-bit integers, so its tables are the same on every machine.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "codec/byte_model.h"

namespace mbz {

// Counts for one stream: 33 MiB, mostly the order-2 counts (65536 contexts × 256 bytes).
class Order2Model {
 public:
  Order2Model();
  void reset();
  void predict(Cdf& out);
  void update(uint8_t byte);

 private:
  struct Context {
    uint16_t* counts;  // 256 counts
    uint16_t* total;   // sum of counts
    uint16_t* distinct;
    uint16_t limit;  // halve the counts when the total reaches this
  };
  static void add(const Context& ctx, uint8_t byte);
  // The context of `order` for the current history, cleared first if it is stale.
  Context context(int order);

  // Contexts are cleared lazily: one whose stamp is not the current epoch holds counts of
  // an earlier stream and is zeroed on first use, so reset() costs O(1), not 33 MiB.
  std::unique_ptr<uint16_t[]> counts_;  // order 2, then order 1, then order 0: 256 each
  std::vector<uint16_t> totals_;        // one per context, same order
  std::vector<uint16_t> distinct_;      // one per context, same order
  std::vector<uint32_t> stamps_;        // one per context, same order
  uint32_t epoch_ = 1;
  uint32_t history_ = 0;  // the last two bytes, most recent in the low byte
};

// Instances come from a small pool of released models: a model is 33 MiB, and making and
// faulting in a fresh one costs more than decoding a small archive with it.
class Order2Factory final : public ModelFactory {
 public:
  Order2Factory();
  ~Order2Factory() override;
  const ModelIdentity& identity() const override { return identity_; }
  std::unique_ptr<BatchByteModel> create(size_t max_streams) const override;
  size_t preferred_batch() const override { return 1; }

  static constexpr const char* kName = "order2-v1";

  std::unique_ptr<Order2Model> take() const;
  void give_back(std::unique_ptr<Order2Model> model) const;

 private:
  ModelIdentity identity_;
  mutable std::mutex mutex_;
  mutable std::vector<std::unique_ptr<Order2Model>> spare_;
};

}  // namespace mbz
