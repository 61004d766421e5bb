// SharedLock in the reference backend: mp::SharedLock behind the protocol's SharedLock methods
// (spec/protocol.md §6, spec/rwlock/shared_lock.md). Ownership is per (process, thread), so each
// call must run in the actor thread that the protocol names, which the driver kit guarantees.
#include <mp/errors.hpp>
#include <mp/shared_lock.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;

class SharedLockObject : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire") {
      lock_.acquire(driverkit::bool_arg(args, "exclusive", false));
      return nullptr;
    }
    if (method == "release") {
      lock_.release();
      return nullptr;
    }
    throw driverkit::KindError("Other", "SharedLock has no method " + method);
  }

 private:
  mp::SharedLock lock_;
};

}  // namespace

void register_shared_lock(driverkit::Backend& b) {
  b.types["SharedLock"] = {{"acquire", "release"}, [](const Json&, const driverkit::Objects&) {
                             return std::make_unique<SharedLockObject>();
                           }};
}

}  // namespace mpspec::reference_backend
