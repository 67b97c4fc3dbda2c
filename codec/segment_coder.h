// Coding one segment (a chunk of a version 2 archive) as K lanes in lockstep
// (codec/lanes.h, codec/FORMAT.md "Lanes"), with the three methods that predict bytes:
//
//   model   the byte model's tables through the range coder, byte t of lane 0, 1, .. K-1
//           in round t (with one lane, a version 1 model chunk);
//   cm      the context mixer alone (codec/cm): from version 3 on in one lane whatever K
//           (lanes only buy the byte model a batch, and cost cm ratio), in version 2 in the
//           K lanes, its statistics and match model shared by all of them;
//   hybrid  the context mixer with the byte model's table of each byte as one more input.
//
// The byte model runs the lanes as K streams, one batched step a round; it is by far the
// slowest part, so one pass over the rounds feeds every method at once and each table
// is computed once for both the model and the hybrid coder. The model alone needs only
// each byte's interval in its table, and takes it from BatchByteModel::intervals where the
// model has that (a model on a GPU then sends 8 bytes a byte instead of a table).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/byte_model.h"
#include "codec/cm/predictor.h"
#include "codec/format.h"

namespace mbz {

// What a version 2 or 3 header fixes for a segment's coding.
struct SegmentSetup {
  uint32_t lanes = 1;  // of the methods with the byte model (model, hybrid)
  cm::Config cm;       // the largest tables; a segment gets cm::config_for(its size, cm)
  uint32_t cm_lanes = 1;  // of cm: 1 from version 3 on, the header's lanes in version 2
  // The model method codes each lane with a range coder of its own (version 4 on), so
  // that a decoder may find every lane's byte of a round at once; before version 4, one
  // range coder codes all lanes round by round.
  bool lane_streams = true;
};
// The setup of segment `index` (its layout's offset is the segment's in the stream).
SegmentSetup segment_setup(const Header& header, uint64_t index = 0);

// How the stream is laid out, from the header's modality and transform parameters
// (io/TRANSFORMS.md: an image's width, height, channels less a constant alpha, and tile;
// an audio stream's channels), for the context mixer of revision 2 on; kBytes for raw and
// text, for parameters it does not know, and before revision 2. Never throws: io/ checks
// the parameters, and encoder and decoder read the same header alike.
cm::Layout stream_layout(const Header& header);

// The oldest context mixer revision that codes `header`'s stream as the newest does: 1
// unless the stream has an image or audio layout. The writer writes it, so that archives
// of text and raw bytes stay readable by builds that know revision 1 only.
uint8_t cm_revision_needed(const Header& header);

// Which of the methods that predict a pass codes.
struct SegmentMethods {
  bool model = true;
  bool cm = true;
  bool hybrid = true;
};

// The payloads of one encode_segment pass, by ChunkMethod; empty for a method that was not
// tried or was given up.
struct SegmentPayloads {
  std::array<std::vector<uint8_t>, kMethodCount> payload;
  std::array<bool, kMethodCount> coded{};  // payload holds a complete coding
};

// Codes `raw` (1 <= size < 2^32) with the `methods` asked for (cm first, in a pass of its
// own, when its lanes are not the others'; its size then bounds theirs); model and hybrid only when
// `model` is not null (it is reset to the segment's lanes, its modality already set). A
// method is given up once its output reaches `give_up` bytes, or when at a 64th, two
// 64ths, .. of the segment (but no closer than every 16 KiB) it has not saved 1/64 of
// what it coded (the data is incompressible to it); the pass ends early when every
// method is given up.
SegmentPayloads encode_segment(std::span<const uint8_t> raw, const SegmentSetup& setup,
                               BatchByteModel* model, SegmentMethods methods, size_t give_up);

// Decodes a model, cm or hybrid payload into `out` (its size the segment's). `model` is
// needed for model and hybrid. A damaged payload may decode to wrong bytes (the caller's
// checksum tells) or throw Error(kCorruptTruncated or kCorruptChunk); never more.
void decode_segment(ChunkMethod method, std::span<const uint8_t> payload, std::span<uint8_t> out,
                    const SegmentSetup& setup, BatchByteModel* model);

}  // namespace mbz
