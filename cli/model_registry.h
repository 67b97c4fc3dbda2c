// Which models this mbz knows: the built-in ones, found by name or by the identity an
// archive records, and exact model files (mbz quantize), found by path or by the identity
// an archive records in $MBZ_MODEL_PATH and then ~/.local/share/mbz/models.
#pragma once

#include <string>
#include <vector>

#include "codec/byte_model.h"

namespace mbz::cli {

// Where model files run from now on: "cpu" (the default) or "cuda". Never changes the
// bytes an archive gets, only the speed.
void set_model_device(const std::string& device);

// The model used when no --model is given: the bundled one (model/bundled.h), loaded on
// first use onto the device set by then.
const ModelFactory& default_model();
const ModelFactory& bundled_model();
// By name ("order2-v1", "default" or the bundled model's name) or the path of an exact model file; throws kModelUnknown naming
// the known ones.
const ModelFactory& model_by_name(const std::string& name);
// The model an archive needs: the file `path` when given (kModelMismatch when it is not
// the one), else a built-in one or a model file named as the identity in the search path.
// Throws kModelUnknown naming its name and id.
const ModelFactory& model_for(const ModelIdentity& identity, const std::string& path = "");
std::vector<const ModelFactory*> builtin_models();

}  // namespace mbz::cli
