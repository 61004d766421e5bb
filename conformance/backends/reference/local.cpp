// local in the reference backend: mp::local<Json> behind the protocol's set / get / clear
// (spec/protocol.md §6, spec/local/local.md).
#include <mp/errors.hpp>
#include <mp/local.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;

class LocalObject : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method == "set") {
      if (!args.is_object() || !args.contains("value"))
        throw driverkit::KindError("TypeError", "set() needs a 'value' argument");
      local_.set(args["value"]);
      return nullptr;
    }
    if (method == "get") return local_.get();  // mp::AttributeError when unset
    if (method == "clear") {
      local_.reset();
      return nullptr;
    }
    throw driverkit::KindError("Other", "local has no method " + method);
  }

 private:
  mp::local<Json> local_;
};

}  // namespace

void register_local(driverkit::Backend& b) {
  b.types["local"] = {{"set", "get", "clear"}, [](const Json&, const driverkit::Objects&) {
                        return std::make_unique<LocalObject>();
                      }};
}

}  // namespace mpspec::reference_backend
