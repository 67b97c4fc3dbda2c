// Contexts of a tiled image (layout.h, io/TRANSFORMS.md "Tile order"): for each byte, the
// same channel's value at the neighbouring pixels that are already known,
//
//          NN  NNE
//      NW  N   NE
//  WW  W   ?
//
// and predictions made of them (the gradient W + N - NW, LOCO-I's median, N + NE - NNE,
// W + (NE - NW)/2, 2N - NN, ...), and for the second and later channels the pixel's
// previous channel P corrected by its neighbours (P + W - PW, ...). Each is hashed with
// the channel into a context whose counters learn the byte's distribution around it.
//
// A neighbour's stream position comes from the tile layout. It is used only if the
// predictor already knows its byte (History::known): earlier in the same lane, or in
// another lane at a position already coded; otherwise (also at the image's edges and
// before the segment's start) a nearer neighbour stands in for it.
#pragma once

#include <cstdint>

#include "codec/cm/modality_model.h"
#include "codec/cm/nibble_contexts.h"

namespace mbz::cm {

class ImageModel final : public ModalityModel {
 public:
  static constexpr int kContexts = 16;
  static_assert(kContexts <= kInputs);

  ImageModel(const Layout& layout, int table_bits);

  void begin_byte(const History& history, uint32_t lane) override;
  void predict(int c0, int bitpos, int16_t* inputs) override;
  void update(int bit) override;
  void end_byte(const History&, uint32_t) override {}
  int group() const override { return group_; }
  int kind() const override { return channel_; }
  int expected() const override { return expected_; }

  // The stream offset of channel c of pixel (x, y), for x < width, y < height.
  uint64_t offset_of(uint32_t x, uint32_t y, uint32_t c) const;

 private:
  Layout layout_;
  uint64_t row_bytes_;  // a full row of tiles
  NibbleContexts<kContexts> contexts_;
  int group_ = 0;
  int channel_ = 0;
  int expected_ = 0;
};

}  // namespace mbz::cm
