// RLock mutants: an RLock that a thread other than its owner may "release" (the call returns
// None instead of raising AssertionError, and the lock stays owned); an RLock that is not
// recursive (the owner's acquire gives up instead of taking one more level).
#include <mp/errors.hpp>
#include <mp/rlock.hpp>

#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

enum class RLockMutant { kNonOwnerRelease, kNotRecursive };

class MutantRLock : public driverkit::Object {
 public:
  explicit MutantRLock(RLockMutant m) : mutant_(m) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire" || method == "__enter__") {
      const bool block = method == "__enter__" || driverkit::bool_arg(args, "block", true);
      const auto timeout = method == "__enter__" ? std::nullopt : driverkit::timeout_arg(args);
      // Not recursive: the owner is refused, as if the lock were someone else's.
      if (mutant_ == RLockMutant::kNotRecursive && rlock_.is_owned()) return false;
      return rlock_.acquire(block, timeout);
    }
    if (method == "release" || method == "__exit__") {
      try {
        rlock_.release();
      } catch (const mp::AssertionError&) {
        if (mutant_ != RLockMutant::kNonOwnerRelease) throw;
      }
      return nullptr;
    }
    throw driverkit::KindError("Other", "RLock has no method " + method);
  }

 private:
  RLockMutant mutant_;
  mp::RLock rlock_;
};

}  // namespace

bool install_rlock_mutant(const std::string& which, driverkit::Backend& b) {
  RLockMutant m;
  if (which == "rlock-nonowner-release") {
    m = RLockMutant::kNonOwnerRelease;
  } else if (which == "rlock-not-recursive") {
    m = RLockMutant::kNotRecursive;
  } else {
    return false;
  }
  b.types["RLock"] = {
      {"acquire", "release", "__enter__", "__exit__"},
      [m](const Json&, const driverkit::Objects&) { return std::make_unique<MutantRLock>(m); }};
  return true;
}

}  // namespace mpspec::mutants
