// Lock mutants: a Lock that never blocks; a Lock whose release of a free lock succeeds.
#include <mp/errors.hpp>
#include <mp/lock.hpp>

#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

using driverkit::Json;

enum class Mutant { kNeverBlocks, kReleaseUnheldOk };

class MutantLock : public driverkit::Object {
 public:
  explicit MutantLock(Mutant m) : mutant_(m) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire" || method == "__enter__") {
      const bool block = method == "__enter__" || driverkit::bool_arg(args, "block", true);
      const auto timeout = method == "__enter__" ? std::nullopt : driverkit::timeout_arg(args);
      if (mutant_ == Mutant::kNeverBlocks) {
        lock_.acquire(false);  // takes it when free, and pretends success when not
        return true;
      }
      return lock_.acquire(block, timeout);
    }
    if (method == "release" || method == "__exit__") {
      try {
        lock_.release();
      } catch (const mp::ValueError&) {
        if (mutant_ != Mutant::kReleaseUnheldOk) throw;
      }
      return nullptr;
    }
    throw driverkit::KindError("Other", "Lock has no method " + method);
  }

 private:
  Mutant mutant_;
  mp::Lock lock_;
};


}  // namespace

bool install_lock_mutant(const std::string& which, driverkit::Backend& b) {
  Mutant m;
  if (which == "never-blocks") {
    m = Mutant::kNeverBlocks;
  } else if (which == "release-unheld-ok") {
    m = Mutant::kReleaseUnheldOk;
  } else {
    return false;
  }
  b.types["Lock"] = {{"acquire", "release", "__enter__", "__exit__"},
                     [m](const Json&, const driverkit::Objects&) {
                       return std::make_unique<MutantLock>(m);
                     }};
  return true;
}

}  // namespace mpspec::mutants
