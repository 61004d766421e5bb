// SharedLock mutants:
//   shared-lock-reentrant-ok  an acquire by a caller that already holds the lock returns None at
//                             once instead of raising ValueError (no second hold is taken; the
//                             upgrade attempt is still refused).
#include <mp/errors.hpp>
#include <mp/shared_lock.hpp>
#include <string>

#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

using driverkit::Json;

class ReentrantOk : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire") {
      const bool exclusive = driverkit::bool_arg(args, "exclusive", false);
      const auto held = lock_.mode_held();
      const bool upgrade = exclusive && held == mp::SharedLock::Mode::kShared;
      if (held != mp::SharedLock::Mode::kNone && !upgrade) return nullptr;  // the bug
      lock_.acquire(exclusive);
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

bool install_shared_lock_mutant(const std::string& which, driverkit::Backend& b) {
  if (which == "shared-lock-reentrant-ok") {
    b.types["SharedLock"] = {{"acquire", "release"}, [](const Json&, const driverkit::Objects&) {
                               return std::make_unique<ReentrantOk>();
                             }};
    return true;
  }
  return false;
}

}  // namespace mpspec::mutants
