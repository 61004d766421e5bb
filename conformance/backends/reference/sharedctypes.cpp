// Value, RawValue, Array, RawArray and Synchronized in the reference backend: libmp's
// mp::RawValue / mp::RawArray / mp::SynchronizedValue / mp::SynchronizedArray behind the
// protocol's methods (spec/sharedctypes/sharedctypes.md, "Protocol surface (proposed)").
//
// Every object is made in the driver process at setup, in anonymous shared memory, and the
// actors inherit it at fork. `lock` is true / null (a new RLock), false (a raw object), or a
// `{"$ref": name}` of a Lock or RLock of the setup. Errors keep libmp's kinds (an index out of
// range is mp::IndexError, kind `IndexError`), except a value outside the value domain (a 'Q'
// or 'L' above 2^63 - 1), which is reported as kind `Other` ([protocol.values]).
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <mp/errors.hpp>
#include <mp/sharedctypes.hpp>
#include <mp/value.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;
using driverkit::KindError;

const std::vector<std::string> kLockMethods = {"acquire", "release", "__enter__", "__exit__"};
const std::vector<std::string> kValueMethods = {"value", "set_value", "add"};
const std::vector<std::string> kArrayMethods = {
    "len", "getitem", "setitem", "getslice", "setslice", "value", "raw", "set_value", "add"};

std::vector<std::string> join(std::vector<std::string> a, const std::vector<std::string>& b) {
  for (const auto& m : b)
    if (std::find(a.begin(), a.end(), m) == a.end()) a.push_back(m);
  return a;
}

std::string typecode_arg(const Json& args) {
  if (!args.contains("typecode") || !args["typecode"].is_string())
    throw KindError("TypeError", "needs 'typecode', a string");
  return args["typecode"].get<std::string>();
}

// The `lock` setup argument: nullopt for a raw object (false); a SyncLock otherwise (true or
// null: a new RLock).
struct LockChoice {
  bool raw = false;
  std::optional<mp::SyncLock> lock;
};

LockChoice lock_arg(const Json& args, const driverkit::Objects& objects) {
  LockChoice c;
  if (!args.contains("lock") || args["lock"].is_null()) return c;  // a new RLock
  const Json& l = args["lock"];
  if (l.is_boolean()) {
    c.raw = !l.get<bool>();
    return c;
  }
  if (l.is_object() && l.contains("$ref")) {
    driverkit::Object& o = objects.ref(l);
    if (auto* lock = dynamic_cast<LockObject*>(&o)) {
      c.lock = mp::SyncLock(lock->get());
    } else if (auto* rlock = dynamic_cast<RLockObject*>(&o)) {
      c.lock = mp::SyncLock(rlock->get());
    } else {
      throw KindError("TypeError", "'lock' must name a Lock or an RLock");
    }
    return c;
  }
  // [sharedctypes.construct.lock.invalid]
  throw KindError("AttributeError", "'" + l.dump() + "' has no method 'acquire'");
}

std::int64_t index_arg(const Json& args) {
  if (!args.contains("index")) throw KindError("TypeError", "needs 'index'");
  if (!args["index"].is_number_integer())
    throw KindError("TypeError", "indices must be integers");  // [sharedctypes.array.index.type]
  return args["index"].get<std::int64_t>();
}

std::optional<std::int64_t> bound_arg(const Json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return std::nullopt;
  if (!args[key].is_number_integer())
    throw KindError("TypeError", "slice indices must be integers or None");
  return args[key].get<std::int64_t>();
}

mp::Slice slice_arg(const Json& args) {
  return {bound_arg(args, "start"), bound_arg(args, "stop"), bound_arg(args, "step")};
}

const Json& required(const Json& args, const char* key) {
  if (!args.contains(key)) throw KindError("TypeError", std::string("needs '") + key + "'");
  return args[key];
}

// Python's `a + delta` for the values a shared object holds.
mp::Value plus(const mp::Value& a, const mp::Value& delta) {
  auto numeric = [](const mp::Value& v) { return v.is_int() || v.is_float() || v.is_bool(); };
  auto as_double = [](const mp::Value& v) {
    return v.is_float() ? v.as_float()
           : v.is_int() ? static_cast<double>(v.as_int())
                        : (v.as_bool() ? 1.0 : 0.0);
  };
  if (!numeric(a) || !numeric(delta))
    throw KindError("TypeError", std::string("unsupported operand type(s) for +: '") +
                                     a.type_name() + "' and '" + delta.type_name() + "'");
  if (a.is_float() || delta.is_float()) return mp::Value(as_double(a) + as_double(delta));
  auto as_int = [](const mp::Value& v) {
    return v.is_int() ? v.as_int() : static_cast<std::int64_t>(v.as_bool());
  };
  // Modulo 2^64, which the store reduces further to the code's width.
  return mp::Value(static_cast<std::int64_t>(static_cast<std::uint64_t>(as_int(a)) +
                                             static_cast<std::uint64_t>(as_int(delta))));
}

// Reads through libmp, reporting a value outside the value domain as `Other`.
template <class F>
Json read(F&& f) {
  try {
    return from_value(f());
  } catch (const mp::OverflowError& e) {
    throw KindError("Other", std::string("OverflowError: ") + e.what());
  }
}

template <class F>
Json write(F&& f) {
  f();
  return nullptr;
}

// One shared object of the setup: raw or synchronized, a value or an array.
class SharedObject : public driverkit::Object, public SharedValueMark {
 public:
  using Holder =
      std::variant<mp::RawValue, mp::RawArray, mp::SynchronizedValue, mp::SynchronizedArray>;
  explicit SharedObject(Holder h) : h_(std::move(h)) {}

  const Holder& holder() const { return h_; }

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire" || method == "release" || method == "__enter__" || method == "__exit__")
      return lock_call(method, args);
    if (auto* p = std::get_if<mp::RawValue>(&h_)) return value_call(*p, nullptr, method, args);
    if (auto* p = std::get_if<mp::SynchronizedValue>(&h_)) {
      mp::RawValue raw = p->get_obj();
      return value_call(raw, p, method, args);
    }
    if (auto* p = std::get_if<mp::RawArray>(&h_)) return array_call(*p, nullptr, method, args);
    auto& s = std::get<mp::SynchronizedArray>(h_);
    mp::RawArray raw = s.get_obj();
    return array_call(raw, &s, method, args);
  }

 private:
  // Whether the call goes through get_obj() (`obj: true`); raw objects ignore it.
  static bool via_obj(const Json& args) { return driverkit::bool_arg(args, "obj", false); }

  template <class W>
  static void locked_rmw(W& w, const std::function<void()>& body) {
    try {
      w.acquire();
    } catch (const mp::OwnerDied&) {
      w.release();  // the death is the call's outcome; do not leave the lock held
      throw;
    }
    try {
      body();
    } catch (...) {
      w.release();
      throw;
    }
    w.release();
  }

  static int times_arg(const Json& args) {
    if (!args.contains("times")) return 1;
    if (!args["times"].is_number_integer()) throw KindError("TypeError", "times must be an int");
    return args["times"].get<int>();
  }

  Json value_call(mp::RawValue& raw, mp::SynchronizedValue* sync, const std::string& method,
                  const Json& args) {
    const bool obj = sync == nullptr || via_obj(args);
    if (method == "value") return read([&] { return obj ? raw.value() : sync->value(); });
    if (method == "set_value") {
      const mp::Value v = to_value(required(args, "value"));
      return write([&] { obj ? raw.set_value(v) : sync->set_value(v); });
    }
    if (method == "add") {
      const mp::Value delta = to_value(required(args, "delta"));
      const int times = times_arg(args);
      const bool locked = driverkit::bool_arg(args, "locked", false);
      if (locked && sync == nullptr)
        throw KindError("Unsupported", "add(locked=true) needs a synchronized object");
      for (int k = 0; k < times; ++k) {
        if (locked) {
          locked_rmw(*sync, [&] { raw.set_value(plus(raw.value(), delta)); });
        } else if (sync != nullptr) {
          sync->set_value(plus(sync->value(), delta));  // two accesses: Python's +=
        } else {
          raw.set_value(plus(raw.value(), delta));
        }
      }
      return nullptr;
    }
    throw KindError("Other", "a shared value has no method " + method);
  }

  Json array_call(mp::RawArray& raw, mp::SynchronizedArray* sync, const std::string& method,
                  const Json& args) {
    const bool obj = sync == nullptr || via_obj(args);
    if (method == "len") return raw.size();
    if (method == "getitem") {
      const std::int64_t i = index_arg(args);
      return read([&] { return obj ? raw.get(i) : sync->get(i); });
    }
    if (method == "setitem") {
      const std::int64_t i = index_arg(args);
      const mp::Value v = to_value(required(args, "value"));
      return write([&] { obj ? raw.set(i, v) : sync->set(i, v); });
    }
    if (method == "getslice") {
      const mp::Slice s = slice_arg(args);
      return read([&] { return obj ? raw.get_slice(s) : sync->get_slice(s); });
    }
    if (method == "setslice") {
      const mp::Slice s = slice_arg(args);
      const mp::Value v = to_value(required(args, "values"));
      return write([&] { obj ? raw.set_slice(s, v) : sync->set_slice(s, v); });
    }
    if (method == "value") return read([&] { return obj ? raw.value() : sync->value(); });
    if (method == "raw") return read([&] { return obj ? raw.raw() : sync->raw(); });
    if (method == "set_value") {
      const mp::Value v = to_value(required(args, "value"));
      return write([&] { obj ? raw.set_value(v) : sync->set_value(v); });
    }
    if (method == "add") {
      const std::int64_t i = index_arg(args);
      const mp::Value delta = to_value(required(args, "delta"));
      const int times = times_arg(args);
      const bool locked = driverkit::bool_arg(args, "locked", false);
      if (locked && sync == nullptr)
        throw KindError("Unsupported", "add(locked=true) needs a synchronized object");
      return write([&] {
        for (int k = 0; k < times; ++k) {
          if (locked) {
            locked_rmw(*sync, [&] { raw.set(i, plus(raw.get(i), delta)); });
          } else if (sync != nullptr) {
            sync->set(i, plus(sync->get(i), delta));
          } else {
            raw.set(i, plus(raw.get(i), delta));
          }
        }
      });
    }
    throw KindError("Other", "a shared array has no method " + method);
  }

  Json lock_call(const std::string& method, const Json& args) {
    auto run = [&](auto& w) -> Json {
      if (method == "acquire")
        return w.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
      if (method == "__enter__") {
        w.acquire();
        return true;
      }
      w.release();  // release, __exit__
      return nullptr;
    };
    if (auto* p = std::get_if<mp::SynchronizedValue>(&h_)) return run(*p);
    if (auto* p = std::get_if<mp::SynchronizedArray>(&h_)) return run(*p);
    throw KindError("AttributeError", "a raw shared object has no method '" + method + "'");
  }

  Holder h_;
};

SharedObject& shared_ref(const Json& ref, const driverkit::Objects& objects) {
  auto* o = dynamic_cast<SharedObject*>(&objects.ref(ref));
  if (o == nullptr) throw KindError("TypeError", "the reference must name a shared value or array");
  return *o;
}

// `copy_of`: [sharedctypes.copy]; a wrapper is copied through its raw object.
std::unique_ptr<SharedObject> copy_of(const Json& ref, const driverkit::Objects& objects) {
  const auto& h = shared_ref(ref, objects).holder();
  if (auto* p = std::get_if<mp::RawValue>(&h)) return std::make_unique<SharedObject>(mp::copy(*p));
  if (auto* p = std::get_if<mp::RawArray>(&h)) return std::make_unique<SharedObject>(mp::copy(*p));
  if (auto* p = std::get_if<mp::SynchronizedValue>(&h))
    return std::make_unique<SharedObject>(mp::copy(p->get_obj()));
  return std::make_unique<SharedObject>(mp::copy(std::get<mp::SynchronizedArray>(h).get_obj()));
}

std::unique_ptr<SharedObject> make_value(const Json& args, const driverkit::Objects& objects,
                                         bool raw_type) {
  if (raw_type && args.contains("copy_of")) return copy_of(args["copy_of"], objects);
  const std::string code = typecode_arg(args);
  const std::optional<mp::Value> initial =
      args.contains("value") ? std::optional<mp::Value>(to_value(args["value"])) : std::nullopt;
  LockChoice lock = raw_type ? LockChoice{true, {}} : lock_arg(args, objects);
  if (lock.raw)
    return std::make_unique<SharedObject>(initial ? mp::RawValue(code, *initial)
                                                  : mp::RawValue(code));
  return std::make_unique<SharedObject>(mp::SynchronizedValue(code, initial, std::move(lock.lock)));
}

std::unique_ptr<SharedObject> make_array(const Json& args, const driverkit::Objects& objects,
                                         bool raw_type) {
  if (raw_type && args.contains("copy_of")) return copy_of(args["copy_of"], objects);
  const std::string code = typecode_arg(args);
  const mp::Value init = to_value(required(args, "size_or_initializer"));
  LockChoice lock = raw_type ? LockChoice{true, {}} : lock_arg(args, objects);
  if (lock.raw) return std::make_unique<SharedObject>(mp::RawArray(code, init));
  return std::make_unique<SharedObject>(mp::SynchronizedArray(code, init, std::move(lock.lock)));
}

// Synchronized(obj, lock): [sharedctypes.synchronized.wraps], [sharedctypes.synchronized.twice].
std::unique_ptr<SharedObject> make_synchronized(const Json& args,
                                                const driverkit::Objects& objects) {
  const auto& h = shared_ref(required(args, "obj"), objects).holder();
  Json lock_args = Json::object();
  if (args.contains("lock") && !args["lock"].is_null()) {
    if (!args["lock"].is_object()) throw KindError("TypeError", "'lock' must be null or a $ref");
    lock_args["lock"] = args["lock"];
  }
  LockChoice lock = lock_arg(lock_args, objects);
  if (auto* p = std::get_if<mp::RawValue>(&h))
    return std::make_unique<SharedObject>(mp::synchronized(*p, std::move(lock.lock)));
  if (auto* p = std::get_if<mp::RawArray>(&h))
    return std::make_unique<SharedObject>(mp::synchronized(*p, std::move(lock.lock)));
  throw mp::AssertionError("object already synchronized");
}

}  // namespace

void register_sharedctypes(driverkit::Backend& b) {
  b.types["Value"] = {join(kValueMethods, kLockMethods),
                      [](const Json& args, const driverkit::Objects& objects) {
                        return make_value(args, objects, false);
                      }};
  b.types["RawValue"] = {kValueMethods, [](const Json& args, const driverkit::Objects& objects) {
                           return make_value(args, objects, true);
                         }};
  b.types["Array"] = {join(kArrayMethods, kLockMethods),
                      [](const Json& args, const driverkit::Objects& objects) {
                        return make_array(args, objects, false);
                      }};
  b.types["RawArray"] = {kArrayMethods, [](const Json& args, const driverkit::Objects& objects) {
                           return make_array(args, objects, true);
                         }};
  b.types["Synchronized"] = {join(join(kValueMethods, kArrayMethods), kLockMethods),
                             [](const Json& args, const driverkit::Objects& objects) {
                               return make_synchronized(args, objects);
                             }};
}

}  // namespace mpspec::reference_backend
