// Lock in the reference backend: mp::Lock behind the protocol's Lock methods.
#include <mp/errors.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {

using driverkit::Json;

Json LockObject::call(const std::string& method, const Json& args) {
  if (method == "acquire") {
    return lock_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
  }
  if (method == "release") {
    lock_.release();
    return nullptr;
  }
  if (method == "__enter__") {  // the scoped form: a blocking acquire
    lock_.lock();
    return true;
  }
  if (method == "__exit__") {
    lock_.unlock();
    return nullptr;
  }
  throw driverkit::KindError("Other", "Lock has no method " + method);
}

void register_lock(driverkit::Backend& b) {
  b.types["Lock"] = {{"acquire", "release", "__enter__", "__exit__"},
                     [](const Json&, const driverkit::Objects&) {
                       return std::make_unique<LockObject>();
                     }};
}

}  // namespace mpspec::reference_backend
