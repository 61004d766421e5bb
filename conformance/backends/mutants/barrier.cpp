// Barrier mutants, each a real mp::Barrier with one bug:
//   barrier-releases-early    releases a cycle when parties-1 parties have arrived (a barrier
//                             of parties-1 that still reports `parties`);
//   barrier-duplicate-index   the last party to arrive returns index 0, like the first;
//   barrier-action-twice      the action runs twice per cycle.
// Correct Lock and Semaphore types are installed beside it, so that the tests that use them
// for the action run (rather than being UNSUPPORTED).
#include <algorithm>
#include <mp/barrier.hpp>
#include <mp/errors.hpp>
#include <mp/lock.hpp>
#include <mp/semaphore.hpp>

#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

enum class Mutant { kReleasesEarly, kDuplicateIndex, kActionTwice };

class MutantBarrier : public driverkit::Object {
 public:
  MutantBarrier(Mutant m, std::size_t parties, mp::Barrier::Action action,
                std::optional<double> timeout)
      : mutant_(m),
        parties_(parties),
        barrier_(m == Mutant::kReleasesEarly ? std::max<std::size_t>(1, parties - 1) : parties,
                 std::move(action), timeout) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "wait") {
      std::size_t index = barrier_.wait(driverkit::timeout_arg(args));
      if (mutant_ == Mutant::kDuplicateIndex && parties_ > 1 && index == parties_ - 1) index = 0;
      return index;
    }
    if (method == "reset") {
      barrier_.reset();
      return nullptr;
    }
    if (method == "abort") {
      barrier_.abort();
      return nullptr;
    }
    if (method == "parties") return parties_;
    if (method == "n_waiting") return barrier_.n_waiting();
    if (method == "broken") return barrier_.broken();
    throw driverkit::KindError("Other", "Barrier has no method " + method);
  }

 private:
  Mutant mutant_;
  std::size_t parties_;
  mp::Barrier barrier_;
};

// Correct helpers (the action's targets).
class HelperLock : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire")
      return lock_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
    if (method == "release") {
      lock_.release();
      return nullptr;
    }
    throw driverkit::KindError("Other", "Lock has no method " + method);
  }

 private:
  mp::Lock lock_;
};

class HelperSemaphore : public driverkit::Object {
 public:
  explicit HelperSemaphore(std::int64_t value) : sem_(value) {}
  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire")
      return sem_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
    if (method == "release") {
      sem_.release();
      return nullptr;
    }
    if (method == "get_value") return sem_.get_value();
    throw driverkit::KindError("Other", "Semaphore has no method " + method);
  }

 private:
  mp::Semaphore sem_;
};

}  // namespace

bool install_barrier_mutant(const std::string& which, driverkit::Backend& b) {
  Mutant m;
  if (which == "barrier-releases-early") {
    m = Mutant::kReleasesEarly;
  } else if (which == "barrier-duplicate-index") {
    m = Mutant::kDuplicateIndex;
  } else if (which == "barrier-action-twice") {
    m = Mutant::kActionTwice;
  } else {
    return false;
  }
  b.types["Barrier"] = {
      {"wait", "reset", "abort", "parties", "n_waiting", "broken"},
      [m](const Json& args,
          const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
        const Json parties = args.value("parties", Json());
        if (!parties.is_number_integer() || parties.get<long long>() <= 0)
          throw driverkit::KindError("ValueError", "parties must be an int > 0");
        mp::Barrier::Action action;
        const Json spec = args.value("action", Json());
        if (!spec.is_null()) {
          driverkit::BoundCall bound(spec, objects);
          if (m == Mutant::kActionTwice) {
            action = [bound] {
              bound();
              bound();
            };
          } else {
            action = [bound] { bound(); };
          }
        }
        return std::make_unique<MutantBarrier>(m,
                                               static_cast<std::size_t>(parties.get<long long>()),
                                               std::move(action), driverkit::timeout_arg(args));
      }};
  b.types["Lock"] = {{"acquire", "release"}, [](const Json&, const driverkit::Objects&) {
                       return std::make_unique<HelperLock>();
                     }};
  b.types["Semaphore"] = {{"acquire", "release", "get_value"},
                          [](const Json& args, const driverkit::Objects&) {
                            return std::make_unique<HelperSemaphore>(args.value("value", 1));
                          }};
  return true;
}

}  // namespace mpspec::mutants
