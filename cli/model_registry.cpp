#include "cli/model_registry.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include "codec/error.h"
#include "codec/order2_model.h"
#include "model/bundled.h"
#include "model/exact_codec.h"

namespace mbz::cli {

std::vector<const ModelFactory*> builtin_models() {
  static const Order2Factory order2;
  return {&order2};
}

namespace {

std::string& model_device() {
  static std::string device = "cpu";
  return device;
}

// A model file that fails its own checks is a model error (exit 4), not a corrupt archive.
template <class Load>
std::unique_ptr<ModelFactory> load_model(const std::string& what, Load load) {
  try {
    return load();
  } catch (const Error& e) {
    if (e.band() != ErrorBand::kFormat && e.band() != ErrorBand::kCorrupt) throw;
    throw Error(ErrorCode::kModelMismatch, what + " is not a usable model file: " + e.what());
  }
}

// A model file, loaded once per process.
const ModelFactory& model_file(const std::string& path) {
  static std::map<std::string, std::unique_ptr<ModelFactory>> loaded;
  std::unique_ptr<ModelFactory>& slot = loaded[path];
  if (!slot) slot = load_model(path, [&] { return model::load_exact_model(path, model_device()); });
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

const ModelFactory& bundled_model() {
  static const std::unique_ptr<ModelFactory> model = load_model("the bundled model", [] {
    return model::load_exact_model(model::bundled_model_bytes(), model::kBundledModelName,
                                   model_device());
  });
  return *model;
}

const ModelFactory& default_model() {
  return bundled_model();
}

void set_model_device(const std::string& device) {
  model_device() = device;
}

const ModelFactory& model_by_name(const std::string& name) {
  if (name == model::kBundledModelName || name == "default") return bundled_model();
  std::string known = std::string(model::kBundledModelName) + " (default)";
  for (const ModelFactory* model : builtin_models()) {
    if (model->identity().name == name) return *model;
    known += ", " + model->identity().name;
  }
  std::error_code ec;
  if (std::filesystem::exists(name, ec) || std::filesystem::exists(name + ".000", ec))
    return model_file(name);
  throw Error(ErrorCode::kModelUnknown,
              "unknown model '" + name + "' (known: " + known + ", or a model file's path)");
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
  std::vector<const ModelFactory*> known = builtin_models();
  if (identity.name == model::kBundledModelName) {
    if (bundled_model().identity().id == identity.id) return bundled_model();
    known.push_back(&bundled_model());
  }
  for (const ModelFactory* model : known)
    if (model->identity().name == identity.name)
      throw Error(ErrorCode::kModelMismatch, "archive needs model " + identity.name + " with id " +
                                                 identity.id_hex() + ", but this mbz's " +
                                                 identity.name + " has id " +
                                                 model->identity().id_hex());
  throw Error(ErrorCode::kModelUnknown, "archive needs model " + identity.name + " (id " +
                                            identity.id_hex() + "), which this mbz does not have");
}

}  // namespace mbz::cli
