// Event mutants: a wait that reports True when its timeout expires; a clear that does nothing.
#include <mp/event.hpp>

#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

enum class Mutant { kWaitTrueOnTimeout, kClearNoop };

class MutantEvent : public driverkit::Object {
 public:
  explicit MutantEvent(Mutant m) : mutant_(m) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "is_set") return event_.is_set();
    if (method == "set") {
      event_.set();
      return nullptr;
    }
    if (method == "clear") {
      if (mutant_ != Mutant::kClearNoop) event_.clear();
      return nullptr;
    }
    if (method == "wait") {
      const bool flag = event_.wait(driverkit::timeout_arg(args));
      return mutant_ == Mutant::kWaitTrueOnTimeout ? true : flag;
    }
    throw driverkit::KindError("Other", "Event has no method " + method);
  }

 private:
  Mutant mutant_;
  mp::Event event_;
};

}  // namespace

bool install_event_mutant(const std::string& which, driverkit::Backend& b) {
  Mutant m;
  if (which == "event-wait-true-on-timeout") {
    m = Mutant::kWaitTrueOnTimeout;
  } else if (which == "event-clear-noop") {
    m = Mutant::kClearNoop;
  } else {
    return false;
  }
  b.types["Event"] = {
      {"is_set", "set", "clear", "wait"},
      [m](const Json&, const driverkit::Objects&) { return std::make_unique<MutantEvent>(m); }};
  return true;
}

}  // namespace mpspec::mutants
