// The context mixer's models for a known layout (layout.h): an image's neighbouring pixels
// (image_model.h) or an audio channel's previous samples (audio_model.h). The Predictor
// owns one when the segment has such a layout; its kInputs inputs join the byte-oriented
// ones in two more layer-1 mixers, whose weight sets the model's small contexts select
// (predictor.h).
#pragma once

#include <cstdint>
#include <memory>

#include "codec/cm/history.h"
#include "codec/cm/layout.h"

namespace mbz::cm {

class ModalityModel {
 public:
  static constexpr int kInputs = 16;
  static constexpr int kGroups = 32;  // values of group()
  static constexpr int kKinds = 8;    // values of kind()

  virtual ~ModalityModel() = default;

  // The model for `layout` (kind kImage or kAudio, valid()), with a hashed table of
  // 2^table_bits buckets, over a segment laid out as history.lanes(); nullptr for kBytes.
  static std::unique_ptr<ModalityModel> make(const Layout& layout, int table_bits,
                                             const Lanes& lanes);

  // The next byte is of `lane`: computes its contexts from what `history` knows.
  virtual void begin_byte(const History& history, uint32_t lane) = 0;
  // Writes kInputs inputs for the next bit (c0, bitpos as ContextModel::predict).
  virtual void predict(int c0, int bitpos, int16_t* inputs) = 0;
  virtual void update(int bit) = 0;
  // The byte has been completed and pushed to `history` (the lane of begin_byte).
  virtual void end_byte(const History& history, uint32_t lane) = 0;

  // For selecting mixer weights, constant over a byte: how hard the byte looks to predict
  // (< kGroups), what kind of byte it is (< kKinds: an image's channel, an audio
  // sample's high or low byte), and the model's best guess of it.
  virtual int group() const = 0;
  virtual int kind() const = 0;
  virtual int expected() const = 0;
};

}  // namespace mbz::cm
