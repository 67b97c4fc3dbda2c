#include "cli/model_registry.h"

#include "codec/error.h"
#include "codec/order2_model.h"

namespace mbz::cli {

std::vector<const ModelFactory*> builtin_models() {
  static const Order2Factory order2;
  return {&order2};
}

const ModelFactory& default_model() {
  return *builtin_models().front();
}

const ModelFactory& model_by_name(const std::string& name) {
  std::string known;
  for (const ModelFactory* model : builtin_models()) {
    if (model->identity().name == name) return *model;
    known += (known.empty() ? "" : ", ") + model->identity().name;
  }
  throw Error(ErrorCode::kModelUnknown, "unknown model '" + name + "' (known: " + known + ")");
}

const ModelFactory& model_for(const ModelIdentity& identity) {
  for (const ModelFactory* model : builtin_models())
    if (model->identity().id == identity.id) return *model;
  for (const ModelFactory* model : builtin_models())
    if (model->identity().name == identity.name)
      throw Error(ErrorCode::kModelMismatch, "archive needs model " + identity.name + " with id " +
                                                 identity.id_hex() + ", but this mbz's " +
                                                 identity.name + " has id " +
                                                 model->identity().id_hex());
  throw Error(ErrorCode::kModelUnknown, "archive needs model " + identity.name + " (id " +
                                            identity.id_hex() + "), which this mbz does not have");
}

}  // namespace mbz::cli
