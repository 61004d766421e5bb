// RLock in the reference backend: mp::RLock behind the protocol's RLock methods.
#include <mp/errors.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {

using driverkit::Json;

Json RLockObject::call(const std::string& method, const Json& args) {
  if (method == "acquire") {
    return rlock_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
  }
  if (method == "release") {
    rlock_.release();
    return nullptr;
  }
  if (method == "__enter__") {  // the scoped form: a blocking acquire
    rlock_.lock();
    return true;
  }
  if (method == "__exit__") {
    rlock_.unlock();
    return nullptr;
  }
  throw driverkit::KindError("Other", "RLock has no method " + method);
}

void register_rlock(driverkit::Backend& b) {
  b.types["RLock"] = {
      {"acquire", "release", "__enter__", "__exit__"},
      [](const Json&, const driverkit::Objects&) { return std::make_unique<RLockObject>(); }};
}

}  // namespace mpspec::reference_backend
