// Condition mutants, over a correct Lock: notify(n) that wakes every waiter; a wait that returns
// without taking the lock again. The Lock type is the correct one, so that tests may build a
// Condition over it.
#include <climits>
#include <mp/condition.hpp>
#include <mp/errors.hpp>

#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

enum class Mutant { kNotifyWakesAll, kWaitNoReacquire };

class PlainLock : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire")
      return lock_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
    if (method == "__enter__") {
      lock_.lock();
      return true;
    }
    if (method == "release" || method == "__exit__") {
      lock_.release();
      return nullptr;
    }
    throw driverkit::KindError("Other", "Lock has no method " + method);
  }
  mp::Lock lock_;
};

class MutantCondition : public driverkit::Object {
 public:
  MutantCondition(Mutant m, mp::Condition c) : mutant_(m), cond_(std::move(c)) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire")
      return cond_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
    if (method == "__enter__") {
      cond_.lock();
      return true;
    }
    if (method == "release" || method == "__exit__") {
      cond_.release();
      return nullptr;
    }
    if (method == "wait") {
      const bool woken = cond_.wait(driverkit::timeout_arg(args));
      if (mutant_ == Mutant::kWaitNoReacquire) cond_.release();  // returns without the lock
      return woken;
    }
    if (method == "notify" || method == "notify_all") {
      int n = INT_MAX;
      if (method == "notify" && mutant_ != Mutant::kNotifyWakesAll) {
        n = 1;
        if (args.is_object() && args.contains("n") && args.at("n").is_number_integer())
          n = static_cast<int>(args.at("n").get<std::int64_t>());
      }
      cond_.notify(n);
      return nullptr;
    }
    throw driverkit::KindError("Other", "Condition has no method " + method);
  }

 private:
  Mutant mutant_;
  mp::Condition cond_;
};

}  // namespace

bool install_condition_mutant(const std::string& which, driverkit::Backend& b) {
  Mutant m;
  if (which == "condition-notify-wakes-all") {
    m = Mutant::kNotifyWakesAll;
  } else if (which == "condition-wait-no-reacquire") {
    m = Mutant::kWaitNoReacquire;
  } else {
    return false;
  }
  b.types["Lock"] = {
      {"acquire", "release", "__enter__", "__exit__"},
      [](const Json&, const driverkit::Objects&) { return std::make_unique<PlainLock>(); }};
  b.types["Condition"] = {
      {"acquire", "release", "__enter__", "__exit__", "wait", "notify", "notify_all"},
      [m](const Json& args, const driverkit::Objects& objects) {
        if (args.is_object() && args.contains("lock") && !args.at("lock").is_null()) {
          auto* l = dynamic_cast<PlainLock*>(&objects.ref(args.at("lock")));
          if (!l) throw driverkit::KindError("TypeError", "this mutant's Condition takes a Lock");
          return std::make_unique<MutantCondition>(m, mp::Condition(l->lock_));
        }
        return std::make_unique<MutantCondition>(m, mp::Condition());
      }};
  return true;
}

}  // namespace mpspec::mutants
