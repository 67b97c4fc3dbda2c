// The bundled default model (model/weights/mbz-medium-1.mbzq, built into the library): its tables for
// a fixed input hash to the values below on the CPU with 1 and 2 threads and batches of 1, 3
// and 64 streams, for each modality (each has its own activation scales, model/EXACT.md).
// CUDA must give the same values (bench/gpu/exact.sh; results in bench/results/).
// A change of the model file, of the exact engine or of the coder's table procedure changes
// it: then every archive made with the default model stops decoding, which is the point.
#include <gtest/gtest.h>

#include "codec/byte_model.h"
#include "model/bundled.h"
#include "model/exact_codec.h"

namespace {

constexpr uint64_t kBundledTableHash = 0xe3fd363c544edd01ull;  // text
// raw, text, image, audio at batch 64 with 2 threads
constexpr uint64_t kBundledTableHashByModality[4] = {0xeaf48d92317dbe3full, kBundledTableHash,
                                                      0x46255294dc885a9dull, 0x7ae5641275a5e6fcull};

TEST(BundledModel, TablesHashToTheCommittedValueForEveryBatchAndThreadCount) {
  const auto model = mbz::model::load_exact_model(mbz::model::bundled_model_bytes(),
                                                  mbz::model::kBundledModelName, "cpu");
  EXPECT_EQ(model->identity().name, mbz::model::kBundledModelName);
  const auto streams = mbz::table_hash_streams(64, 600);
  for (unsigned threads : {1u, 2u})
    for (size_t batch : {1u, 3u, 64u})
      EXPECT_EQ(mbz::table_hash(*model, streams, /*modality text*/ 1, batch, threads),
                kBundledTableHash)
          << "batch " << batch << ", threads " << threads;
  for (uint8_t modality : {0, 2, 3})
    EXPECT_EQ(mbz::table_hash(*model, streams, modality, 64, 2),
              kBundledTableHashByModality[modality])
        << "modality " << int(modality);
}

TEST(BundledModel, TableHashSeesAChangedTable) {
  // The check itself can fail: another modality's start patch gives other tables.
  const auto model = mbz::model::load_exact_model(mbz::model::bundled_model_bytes(),
                                                  mbz::model::kBundledModelName, "cpu");
  const auto streams = mbz::table_hash_streams(4, 50);
  EXPECT_NE(mbz::table_hash(*model, streams, 1, 4, 1), mbz::table_hash(*model, streams, 0, 4, 1));
}

}  // namespace
