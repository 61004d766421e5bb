// Event in the reference backend: mp::Event behind the protocol's Event methods.
#include <mp/event.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;

class EventObject : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method == "is_set") return event_.is_set();
    if (method == "set") {
      event_.set();
      return nullptr;
    }
    if (method == "clear") {
      event_.clear();
      return nullptr;
    }
    if (method == "wait") return event_.wait(driverkit::timeout_arg(args));
    throw driverkit::KindError("Other", "Event has no method " + method);
  }

 private:
  mp::Event event_;
};

}  // namespace

void register_event(driverkit::Backend& b) {
  b.types["Event"] = {
      {"is_set", "set", "clear", "wait"},
      [](const Json&, const driverkit::Objects&) { return std::make_unique<EventObject>(); }};
}

}  // namespace mpspec::reference_backend
