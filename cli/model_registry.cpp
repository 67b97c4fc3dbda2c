#include "cli/model_registry.h"

#include <cstdlib>
#include <map>
#include <memory>

#include "codec/error.h"
#include "codec/order2_model.h"
#include "model/exact_codec.h"

namespace mbz::cli {

std::vector<const ModelFactory*> builtin_models() {
  static const Order2Factory order2;
  return {&order2};
}

const ModelFactory& default_model() {
  return *builtin_models().front();
}

namespace {

std::string& model_device() {
  static std::string device = "cpu";
  return device;
}

// A model file, loaded once per process.
const ModelFactory& model_file(const std::string& path) {
  static std::map<std::string, std::unique_ptr<ModelFactory>> loaded;
  std::unique_ptr<ModelFactory>& slot = loaded[path];
  if (!slot) slot = model::load_exact_model(path, model_device());
  return *slot;
}

// Folders searched for model files by name: $MBZ_MODEL_PATH (colon-separated), then
// ~/.local/share/mbz/models.
std::vector<std::string> search_path() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("MBZ_MODEL_PATH")) {
    std::string s = env;
    for (size_t start = 0; start <= s.size();) {
      const size_t colon = std::min(s.find(':', start), s.size());
      if (colon > start) dirs.push_back(s.substr(start, colon - start));
      start = colon + 1;
    }
  }
  if (const char* home = std::getenv("HOME")) dirs.push_back(std::string(home) + "/.local/share/mbz/models");
  return dirs;
}

}  // namespace

void set_model_device(const std::string& device) {
  model_device() = device;
}

const ModelFactory& model_by_name(const std::string& name) {
  if (model::is_exact_model_file(name)) return model_file(name);
  std::string known;
  for (const ModelFactory* model : builtin_models()) {
    if (model->identity().name == name) return *model;
    known += (known.empty() ? "" : ", ") + model->identity().name;
  }
  throw Error(ErrorCode::kModelUnknown, "unknown model '" + name + "' (known: " + known + ")");
}

const ModelFactory& model_for(const ModelIdentity& identity, const std::string& path) {
  if (!path.empty()) {
    const ModelFactory& model = model_by_name(path);
    if (model.identity().id != identity.id)
      throw Error(ErrorCode::kModelMismatch, "archive needs model " + identity.name + " (id " +
                                                 identity.id_hex() + "), but " + path +
                                                 " is model id " + model.identity().id_hex());
    return model;
  }
  for (const std::string& dir : search_path()) {
    const std::string file = dir + "/" + identity.name;
    if (identity.name.find('/') != std::string::npos || !model::is_exact_model_file(file))
      continue;
    const ModelFactory& model = model_file(file);
    if (model.identity().id == identity.id) return model;
  }
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
