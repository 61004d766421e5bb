// Translation of recorded Event calls into the Event model (spec/models/event.hpp); the type
// table in check.cpp points here.
#include <stdexcept>
#include <string>

#include "check.hpp"
#include "models/event.hpp"

namespace mpspec::check {

// Protocol §6: is_set() -> bool; set() -> null; clear() -> null; wait(timeout) -> bool.
// Throws std::invalid_argument for a method or argument Event does not have. A returned value
// that no Event method returns (a number, a string) becomes an outcome no state allows, so the
// history is judged not linearizable, naming the value.
model::Event::Op translate_event(const Operation& o) {
  using E = model::Event;
  const std::string where = "op #" + std::to_string(o.id) + " (" + o.process + "/" +
                            std::to_string(o.thread) + ", " + o.object + "." + o.method + ")";
  E::Op op;
  if (o.method == "is_set") {
    op.method = E::Method::kIsSet;
  } else if (o.method == "set") {
    op.method = E::Method::kSet;
  } else if (o.method == "clear") {
    op.method = E::Method::kClear;
  } else if (o.method == "wait") {
    op.method = E::Method::kWait;
  } else {
    throw std::invalid_argument(where + ": Event has no method '" + o.method +
                                "' (it has is_set, set, clear, wait)");
  }
  if (!o.args.is_null() && !o.args.is_object())
    throw std::invalid_argument(where + ": args must be a JSON object, not " + o.args.dump());
  if (o.args.is_object()) {
    for (const auto& [name, v] : o.args.items()) {
      if (op.method == E::Method::kWait && name == "timeout") {
        if (v.is_number()) {
          op.timeout = v.get<double>();
        } else if (!v.is_null()) {
          throw std::invalid_argument(where + ": 'timeout' must be a number or null, not " +
                                      v.dump());
        }
      } else {
        throw std::invalid_argument(where + ": unexpected argument '" + name + "'");
      }
    }
  }
  switch (o.status) {
    case OpStatus::kOk:
      if (o.value.is_boolean()) {
        op.outcome = model::Returned<std::optional<bool>>{o.value.get<bool>()};
      } else if (o.value.is_null()) {
        op.outcome = model::Returned<std::optional<bool>>{std::nullopt};
      } else {
        // Not a bool or None: no Event method returns it; the model rejects every Raised.
        op.outcome = model::Raised{"(not an error: returned " + o.value.dump() + ")"};
      }
      break;
    case OpStatus::kError:
      op.outcome = model::Raised{o.error_kind.empty() ? "(no kind)" : o.error_kind};
      break;
    case OpStatus::kInfo:
      op.outcome = model::Unknown{};
      break;
  }
  return op;
}

}  // namespace mpspec::check
