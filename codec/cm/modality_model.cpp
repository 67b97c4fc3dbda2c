#include "codec/cm/modality_model.h"

#include "codec/cm/audio_model.h"
#include "codec/cm/image_model.h"

namespace mbz::cm {

std::unique_ptr<ModalityModel> ModalityModel::make(const Layout& layout, int table_bits,
                                                   const Lanes& lanes) {
  switch (layout.kind) {
    case Layout::Kind::kImage:
      return std::make_unique<ImageModel>(layout, table_bits);
    case Layout::Kind::kAudio:
      return std::make_unique<AudioModel>(layout, table_bits, lanes.count());
    case Layout::Kind::kBytes:
      break;
  }
  return nullptr;
}

}  // namespace mbz::cm
