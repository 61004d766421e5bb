// Translation of recorded RWLock calls into the RWLock model (spec/models/rwlock.hpp); the type
// table in check.cpp points here.
#include <stdexcept>
#include <string>

#include "check.hpp"
#include "models/rwlock.hpp"

namespace mpspec::check {

// Protocol §6: acquire_read / acquire_write(block: bool = true, timeout: number | null = null)
// -> bool; release_read() / release_write() -> null. Throws std::invalid_argument for a method
// or argument RWLock does not have. A returned value outside a method's domain becomes an
// outcome no state allows (an acquire returning None, a release returning True), so the
// history is judged not linearizable at that call.
model::RWLock::Op translate_rwlock(const Operation& o) {
  using R = model::RWLock;
  const std::string where = "op #" + std::to_string(o.id) + " (" + o.process + "/" +
                            std::to_string(o.thread) + ", " + o.object + "." + o.method + ")";
  R::Op op;
  if (o.method == "acquire_read") {
    op.method = R::Method::kAcquireRead;
  } else if (o.method == "acquire_write") {
    op.method = R::Method::kAcquireWrite;
  } else if (o.method == "release_read") {
    op.method = R::Method::kReleaseRead;
  } else if (o.method == "release_write") {
    op.method = R::Method::kReleaseWrite;
  } else {
    throw std::invalid_argument(where + ": RWLock has no method '" + o.method +
                                "' (it has acquire_read, acquire_write, release_read, "
                                "release_write)");
  }
  const bool acquiring =
      op.method == R::Method::kAcquireRead || op.method == R::Method::kAcquireWrite;
  if (!o.args.is_null() && !o.args.is_object())
    throw std::invalid_argument(where + ": args must be a JSON object, not " + o.args.dump());
  if (o.args.is_object()) {
    for (const auto& [name, v] : o.args.items()) {
      if (acquiring && name == "block") {
        if (!v.is_boolean())
          throw std::invalid_argument(where + ": 'block' must be a bool, not " + v.dump());
        op.block = v.get<bool>();
      } else if (acquiring && name == "timeout") {
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
        // Outside every method's domain: make it an outcome the model rejects.
        op.outcome = model::Returned<std::optional<bool>>{acquiring ? std::optional<bool>{}
                                                                    : std::optional<bool>{true}};
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
