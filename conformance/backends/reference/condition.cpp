// Condition in the reference backend: mp::Condition over the Lock or RLock named by the `lock`
// setup argument (a new RLock when it is null or absent), behind the protocol's methods.
#include <mp/condition.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;

mp::Condition make_condition(const Json& args, const driverkit::Objects& objects) {
  if (!args.is_object() || !args.contains("lock") || args.at("lock").is_null())
    return mp::Condition();
  driverkit::Object& target = objects.ref(args.at("lock"));
  if (auto* l = dynamic_cast<LockObject*>(&target)) return mp::Condition(l->get());
  if (auto* r = dynamic_cast<RLockObject*>(&target)) return mp::Condition(r->get());
  throw driverkit::KindError("TypeError", "Condition's lock must be a Lock or an RLock");
}

class ConditionObject : public driverkit::Object {
 public:
  // `objects` outlives this object (driverkit.hpp), so wait_for can resolve its predicate.
  ConditionObject(const Json& args, const driverkit::Objects& objects)
      : cond_(make_condition(args, objects)), objects_(objects) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire")
      return cond_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
    if (method == "release" || method == "__exit__") {
      cond_.release();
      return nullptr;
    }
    if (method == "__enter__") {
      cond_.lock();
      return true;
    }
    if (method == "wait") return cond_.wait(driverkit::timeout_arg(args));
    if (method == "wait_for") {
      if (!args.is_object() || !args.contains("predicate"))
        throw driverkit::KindError("TypeError", "wait_for needs a predicate");
      const driverkit::BoundCall predicate(args.at("predicate"), objects_);
      Json last;
      auto truthy = [&] {
        last = predicate();
        return !(last.is_null() || last == false || last == 0 || last == "" ||
                 (last.is_array() && last.empty()) || (last.is_object() && last.empty()));
      };
      cond_.wait_for(truthy, driverkit::timeout_arg(args));
      return last;
    }
    if (method == "notify") {
      int n = 1;
      if (args.is_object() && args.contains("n")) {
        if (!args.at("n").is_number_integer())
          throw driverkit::KindError("TypeError", "notify(n): n must be an int");
        const auto v = args.at("n").get<std::int64_t>();
        n = v > INT32_MAX ? INT32_MAX : v < 0 ? 0 : static_cast<int>(v);
      }
      cond_.notify(n);
      return nullptr;
    }
    if (method == "notify_all") {
      cond_.notify_all();
      return nullptr;
    }
    throw driverkit::KindError("Other", "Condition has no method " + method);
  }

 private:
  mp::Condition cond_;
  const driverkit::Objects& objects_;
};

}  // namespace

void register_condition(driverkit::Backend& b) {
  b.types["Condition"] = {
      {"acquire", "release", "__enter__", "__exit__", "wait", "wait_for", "notify", "notify_all"},
      [](const Json& args, const driverkit::Objects& objects) {
        return std::make_unique<ConditionObject>(args, objects);
      }};
}

}  // namespace mpspec::reference_backend
