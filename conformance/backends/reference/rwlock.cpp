// RWLock in the reference backend: mp::RWLock behind the protocol's RWLock methods
// (spec/protocol.md §6, spec/rwlock/rwlock.md).
#include <mp/errors.hpp>
#include <mp/rwlock.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;

class RWLockObject : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire_read")
      return lock_.acquire_read(driverkit::bool_arg(args, "block", true),
                                driverkit::timeout_arg(args));
    if (method == "acquire_write")
      return lock_.acquire_write(driverkit::bool_arg(args, "block", true),
                                 driverkit::timeout_arg(args));
    if (method == "release_read") {
      lock_.release_read();
      return nullptr;
    }
    if (method == "release_write") {
      lock_.release_write();
      return nullptr;
    }
    throw driverkit::KindError("Other", "RWLock has no method " + method);
  }

 private:
  mp::RWLock lock_;
};

}  // namespace

void register_rwlock(driverkit::Backend& b) {
  b.types["RWLock"] = {
      {"acquire_read", "acquire_write", "release_read", "release_write"},
      [](const Json&, const driverkit::Objects&) { return std::make_unique<RWLockObject>(); }};
}

}  // namespace mpspec::reference_backend
