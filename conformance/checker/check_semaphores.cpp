// Translation of recorded RLock, Semaphore and BoundedSemaphore calls into their models
// (spec/models/rlock.hpp, spec/models/semaphore.hpp); the type table in check.cpp points here.
//
// Malformed calls (unknown method or argument) throw std::invalid_argument. A returned value
// outside the method's result domain becomes a Raised outcome with a kind no rule accepts
// ("<returned VALUE>"), so the history is judged not linearizable and the value is named.
#include <stdexcept>
#include <string>

#include "check.hpp"
#include "models/rlock.hpp"
#include "models/semaphore.hpp"

namespace mpspec::check {
namespace {

std::string where(const Operation& o) {
  return "op #" + std::to_string(o.id) + " (" + o.process + "/" + std::to_string(o.thread) + ", " +
         o.object + "." + o.method + ")";
}

// Reads acquire's `block` and `timeout` (protocol §6); any other argument, or any argument of
// another method, is malformed.
template <typename Op>
void read_args(const Operation& o, bool is_acquire, Op& op) {
  if (!o.args.is_null() && !o.args.is_object())
    throw std::invalid_argument(where(o) + ": args must be a JSON object, not " + o.args.dump());
  if (!o.args.is_object()) return;
  for (const auto& [name, v] : o.args.items()) {
    if (is_acquire && name == "block") {
      if (!v.is_boolean())
        throw std::invalid_argument(where(o) + ": 'block' must be a bool, not " + v.dump());
      op.block = v.template get<bool>();
    } else if (is_acquire && name == "timeout") {
      if (v.is_number()) {
        op.timeout = v.template get<double>();
      } else if (!v.is_null()) {
        throw std::invalid_argument(where(o) + ": 'timeout' must be a number or null, not " +
                                    v.dump());
      }
    } else {
      throw std::invalid_argument(where(o) + ": unexpected argument '" + name + "'");
    }
  }
}

model::Raised bad_value(const Operation& o) {
  return model::Raised{"<returned " + o.value.dump() + ">"};
}

template <typename M>
typename M::Op translate_semaphore_like(const Operation& o) {
  typename M::Op op;
  using Method = typename M::Method;
  if (o.method == "acquire") {
    op.method = Method::kAcquire;
  } else if (o.method == "release") {
    op.method = Method::kRelease;
  } else if (o.method == "__enter__") {
    op.method = Method::kEnter;
  } else if (o.method == "__exit__") {
    op.method = Method::kExit;
  } else if (o.method == "get_value") {
    op.method = Method::kGetValue;
  } else {
    throw std::invalid_argument(where(o) + ": " + std::string(M::kTypeName) + " has no method '" +
                                o.method +
                                "' (it has acquire, release, get_value, __enter__, __exit__)");
  }
  read_args(o, op.method == Method::kAcquire, op);
  using Value = typename M::Value;
  switch (o.status) {
    case OpStatus::kOk:
      if (o.value.is_boolean()) {
        op.outcome = model::Returned<Value>{Value{o.value.get<bool>()}};
      } else if (o.value.is_null()) {
        op.outcome = model::Returned<Value>{Value{std::monostate{}}};
      } else if (o.value.is_number_integer()) {
        op.outcome = model::Returned<Value>{Value{o.value.get<std::int64_t>()}};
      } else {
        op.outcome = bad_value(o);
      }
      break;
    case OpStatus::kError:
      op.outcome = model::Raised{o.error_kind.empty() ? "<no kind>" : o.error_kind};
      break;
    case OpStatus::kInfo:
      op.outcome = model::Unknown{};
      break;
  }
  return op;
}

}  // namespace

// Protocol §6: acquire(block, timeout) -> bool; release() -> null; __enter__() -> bool;
// __exit__() -> null. The caller ("actor/thread") is part of the op: ownership depends on it.
model::RLock::Op translate_rlock(const Operation& o) {
  using R = model::RLock;
  R::Op op;
  if (o.method == "acquire") {
    op.method = R::Method::kAcquire;
  } else if (o.method == "release") {
    op.method = R::Method::kRelease;
  } else if (o.method == "__enter__") {
    op.method = R::Method::kEnter;
  } else if (o.method == "__exit__") {
    op.method = R::Method::kExit;
  } else {
    throw std::invalid_argument(where(o) + ": RLock has no method '" + o.method +
                                "' (it has acquire, release, __enter__, __exit__)");
  }
  op.who = o.process + "/" + std::to_string(o.thread);
  read_args(o, op.method == R::Method::kAcquire, op);
  switch (o.status) {
    case OpStatus::kOk:
      if (o.value.is_boolean()) {
        op.outcome = model::Returned<std::optional<bool>>{o.value.get<bool>()};
      } else if (o.value.is_null()) {
        op.outcome = model::Returned<std::optional<bool>>{std::nullopt};
      } else {
        op.outcome = bad_value(o);
      }
      break;
    case OpStatus::kError:
      op.outcome = model::Raised{o.error_kind.empty() ? "<no kind>" : o.error_kind};
      break;
    case OpStatus::kInfo:
      op.outcome = model::Unknown{};
      break;
  }
  return op;
}

// Protocol §6: as Lock, plus get_value() -> int.
model::Semaphore::Op translate_semaphore(const Operation& o) {
  return translate_semaphore_like<model::Semaphore>(o);
}

model::BoundedSemaphore::Op translate_bounded_semaphore(const Operation& o) {
  return translate_semaphore_like<model::BoundedSemaphore>(o);
}

}  // namespace mpspec::check
