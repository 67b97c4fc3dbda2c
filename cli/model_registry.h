// Which models this mbz knows: the built-in ones, found by name or by the identity an
// archive records. Model files (the neural models) join here later.
#pragma once

#include <string>
#include <vector>

#include "codec/byte_model.h"

namespace mbz::cli {

// The model used when no --model is given.
const ModelFactory& default_model();
// By name ("order2-v1"); throws kModelUnknown naming the known ones.
const ModelFactory& model_by_name(const std::string& name);
// The model an archive needs; throws kModelUnknown naming its name and id.
const ModelFactory& model_for(const ModelIdentity& identity);
std::vector<const ModelFactory*> builtin_models();

}  // namespace mbz::cli
