// The exactness check by hand: the hash of every table an exact model file gives for the
// fixed input of the tests (codec/byte_model.h: table_hash_streams(64, 600)), for each
// batch size and thread count asked, on one device. Equal lines on every machine, CPU or
// CUDA, are the point; tests/model_bundled_test.cpp holds the CPU value of the bundled model.
//
//   table_hash MODEL cpu|cuda BATCH[,BATCH...] [THREADS[,...]] [MODALITY[,...]]
//
// Modalities: 0 raw, 1 text (the default), 2 image, 3 audio.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "codec/byte_model.h"
#include "codec/error.h"
#include "model/exact_codec.h"

namespace {

std::vector<size_t> numbers(const std::string& list) {
  std::vector<size_t> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoul(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: table_hash MODEL cpu|cuda BATCH[,BATCH...] [THREADS[,...]] [MODALITY[,...]]\n");
    return 2;
  }
  try {
    const auto factory = mbz::model::load_exact_model(argv[1], argv[2]);
    const auto streams = mbz::table_hash_streams(64, 600);
    for (size_t modality : numbers(argc > 5 ? argv[5] : "1"))
      for (size_t threads : numbers(argc > 4 ? argv[4] : "1"))
        for (size_t batch : numbers(argv[3]))
          std::printf("%s device=%s modality=%zu batch=%zu threads=%zu tables=%016" PRIx64 "\n",
                      factory->identity().name.c_str(), argv[2], modality, batch, threads,
                      mbz::table_hash(*factory, streams, static_cast<uint8_t>(modality), batch,
                                      static_cast<unsigned>(threads)));
  } catch (const mbz::Error& e) {
    std::fprintf(stderr, "table_hash: %s\n", e.what());
    return 1;
  }
  return 0;
}
