// Pool, AsyncResult and Iterator in the reference backend: mp::Pool running the protocol's pool
// task catalogue (spec/pool/pool.md §1).
//
// A Pool is process-local (spec/protocol.md §6): each actor constructs its own mp::Pool at its
// first call, so the pool's workers are children of that actor; a constructor error is that
// call's error and the next call tries again. The driver declares only the fork start method
// (process.cpp), so every pool starts its workers with fork. AsyncResult and Iterator entries
// are slots that `apply_async` / `map_async` / `starmap_async` and `imap` / `imap_unordered`
// bind (`as`) in the calling actor. The catalogue's tasks are libmp pool functions registered by
// name from static initializers, so that a spawned worker would find them too.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <mp/errors.hpp>
#include <mp/pool.hpp>
#include <mp/process.hpp>
#include <mutex>
#include <optional>
#include <thread>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;
using driverkit::KindError;

// ---- The pool task catalogue (spec/pool/pool.md §1) ----

const mp::Value& arg(const mp::List& args, const mp::Dict& kwds, std::size_t i, const char* name,
                     const mp::Value* fallback = nullptr) {
  if (i < args.size()) return args[i];
  if (const mp::Value* v = kwds.find(name)) return *v;
  if (fallback != nullptr) return *fallback;
  throw mp::TypeError(std::string("missing argument '") + name + "'");
}

double seconds_of(const mp::Value& v) {
  if (v.is_int()) return static_cast<double>(v.as_int());
  if (v.is_float()) return v.as_float();
  throw mp::TypeError("seconds must be a number");
}

void sleep_for(double seconds) {
  if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

mp::Value multiply(const mp::Value& a, const mp::Value& b) {
  if (a.is_int() && b.is_int()) return mp::Value(a.as_int() * b.as_int());
  if ((a.is_int() || a.is_float()) && (b.is_int() || b.is_float()))
    return mp::Value(seconds_of(a) * seconds_of(b));
  throw mp::TypeError("unsupported operand types for *");
}

mp::Value plus(const mp::Value& a, const mp::Value& b) {
  if (a.is_int() && b.is_int()) return mp::Value(a.as_int() + b.as_int());
  if ((a.is_int() || a.is_float()) && (b.is_int() || b.is_float()))
    return mp::Value(seconds_of(a) + seconds_of(b));
  throw mp::TypeError("unsupported operand types for +");
}

const mp::Value kNone;
const mp::Value kDefaultSlow(0.05);
const mp::Value kNine(static_cast<std::int64_t>(9));
const mp::Value kValueError(std::string("ValueError"));
const mp::Value kEmpty(std::string(""));

// The worker-global value of set_tag / get_tag.
mp::Value g_tag;

const mp::PoolFunctionRegistration kIdentity("identity", [](const mp::List& a, const mp::Dict& k) {
  return arg(a, k, 0, "x");
});
const mp::PoolFunctionRegistration kSquare("square", [](const mp::List& a, const mp::Dict& k) {
  const mp::Value& x = arg(a, k, 0, "x");
  return multiply(x, x);
});
const mp::PoolFunctionRegistration kAdd("add", [](const mp::List& a, const mp::Dict& k) {
  return plus(arg(a, k, 0, "a"), arg(a, k, 1, "b"));
});
const mp::PoolFunctionRegistration kSleep("sleep", [](const mp::List& a, const mp::Dict& k) {
  sleep_for(seconds_of(arg(a, k, 0, "seconds")));
  return arg(a, k, 1, "value", &kNone);
});
const mp::PoolFunctionRegistration kSlowIdentity("slow_identity", [](const mp::List& a,
                                                                     const mp::Dict& k) {
  sleep_for(seconds_of(arg(a, k, 1, "seconds", &kDefaultSlow)));
  return arg(a, k, 0, "x");
});
const mp::Value kZero(static_cast<std::int64_t>(0));
const mp::PoolFunctionRegistration kNonneg("nonneg", [](const mp::List& a, const mp::Dict& k) {
  const mp::Value& x = arg(a, k, 0, "x");
  sleep_for(seconds_of(arg(a, k, 1, "seconds", &kZero)));
  if (x.is_int() && x.as_int() < 0) throw mp::ValueError(std::to_string(x.as_int()));
  if (x.is_float() && x.as_float() < 0) throw mp::ValueError(std::to_string(x.as_float()));
  return x;
});
const mp::PoolFunctionRegistration kRaise("raise", [](const mp::List& a, const mp::Dict& k) {
  const mp::Value& kind = arg(a, k, 0, "kind", &kValueError);
  const mp::Value& message = arg(a, k, 1, "message", &kEmpty);
  if (!kind.is_string() || !message.is_string())
    throw mp::TypeError("raise needs a kind and a message, both strings");
  mp::throw_error(kind.as_string(), message.as_string());
  return mp::Value();
});
const mp::PoolFunctionRegistration kCrash("crash", [](const mp::List& a, const mp::Dict& k) {
  const mp::Value& sig = arg(a, k, 0, "signal", &kNine);
  if (!sig.is_int()) throw mp::TypeError("signal must be an int");
  ::kill(::getpid(), static_cast<int>(sig.as_int()));
  // The signal ends the process; a signal whose default action does not is the caller's error.
  sleep_for(60);
  return mp::Value();
});
const mp::PoolFunctionRegistration kPid("pid", [](const mp::List&, const mp::Dict&) {
  return mp::Value(static_cast<std::int64_t>(::getpid()));
});
const mp::PoolFunctionRegistration kSetTag("set_tag", [](const mp::List& a, const mp::Dict& k) {
  g_tag = arg(a, k, 0, "value");
  return mp::Value();
});
const mp::PoolFunctionRegistration kGetTag("get_tag",
                                           [](const mp::List&, const mp::Dict&) { return g_tag; });

// ---- Arguments ----

std::string func_arg(const Json& args) {
  if (!args.contains("func") || !args["func"].is_string())
    throw KindError("TypeError", "needs 'func', a task name of the pool catalogue");
  std::string f = args["func"].get<std::string>();
  if (!mp::is_pool_function_registered(f))
    throw KindError("Unsupported", "no pool task '" + f + "' in this driver's catalogue");
  return f;
}

mp::List list_arg(const Json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return {};
  if (!args[key].is_array()) throw KindError("TypeError", std::string(key) + " must be a list");
  mp::Value v = to_value(args[key]);
  return v.as_list();
}

mp::Dict dict_arg(const Json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return {};
  if (!args[key].is_object() || args[key].contains("$bytes"))
    throw KindError("TypeError", std::string(key) + " must be a map");
  mp::Value v = to_value(args[key]);
  return v.as_dict();
}

std::optional<long> opt_int_arg(const Json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return std::nullopt;
  if (!args[key].is_number_integer())
    throw KindError("TypeError", std::string(key) + " must be an int");
  return args[key].get<long>();
}

Json error_json(const mp::Error& e) { return Json{{"kind", e.kind()}, {"message", e.what()}}; }

// The callbacks a result's `callback` / `error_callback` argument asks for, and their record.
struct CallbackLog {
  std::mutex mu;
  Json entries = Json::array();
  void add(const char* which, Json value) {
    std::lock_guard<std::mutex> g(mu);
    entries.push_back(Json{{"callback", which}, {"value", std::move(value)}});
  }
  Json get() {
    std::lock_guard<std::mutex> g(mu);
    return entries;
  }
};

// Reads "record" / "raise" / null.
std::optional<bool> callback_mode(const Json& args, const char* key) {  // true: raise
  if (!args.contains(key) || args[key].is_null()) return std::nullopt;
  if (args[key] == "record") return false;
  if (args[key] == "raise") return true;
  throw KindError("TypeError", std::string(key) + " must be null, \"record\" or \"raise\"");
}

// ---- Slots ----

class AsyncResultObject : public driverkit::Object {
 public:
  void bind(mp::AsyncResult result, std::shared_ptr<CallbackLog> log) {
    std::lock_guard<std::mutex> g(mu_);
    result_ = std::move(result);
    log_ = std::move(log);
  }

  Json call(const std::string& method, const Json& args) override {
    auto [r, log] = held();
    if (method == "get") return from_value(r.get(driverkit::timeout_arg(args)));
    if (method == "wait") {
      r.wait(driverkit::timeout_arg(args));
      return nullptr;
    }
    if (method == "ready") return r.ready();
    if (method == "successful") return r.successful();
    if (method == "callbacks") return log->get();
    throw KindError("Other", "AsyncResult has no method " + method);
  }

 private:
  std::pair<mp::AsyncResult, std::shared_ptr<CallbackLog>> held() {
    std::lock_guard<std::mutex> g(mu_);
    if (!result_) throw KindError("Other", "this AsyncResult slot holds no result in this actor");
    return {*result_, log_};
  }

  std::mutex mu_;
  std::optional<mp::AsyncResult> result_;
  std::shared_ptr<CallbackLog> log_;
};

class IteratorObject : public driverkit::Object {
 public:
  void bind(mp::IMapIterator it) {
    std::lock_guard<std::mutex> g(mu_);
    it_ = std::move(it);
  }

  Json call(const std::string& method, const Json& args) override {
    std::optional<mp::IMapIterator> it;
    {
      std::lock_guard<std::mutex> g(mu_);
      it = it_;
    }
    if (!it) throw KindError("Other", "this Iterator slot holds no iterator in this actor");
    if (method == "next") {
      std::optional<mp::Value> v = it->next(driverkit::timeout_arg(args));
      if (!v) return Json{{"done", true}};
      return Json{{"value", from_value(*v)}};
    }
    throw KindError("Other", "Iterator has no method " + method);
  }

 private:
  std::mutex mu_;
  std::optional<mp::IMapIterator> it_;
};

template <class Slot>
Slot& slot_arg(const Json& args, const driverkit::Objects& objects, const char* type) {
  if (!args.contains("as") || !args["as"].is_string())
    throw KindError("TypeError", std::string("needs 'as', the name of an ") + type + " slot");
  driverkit::Object* named = &objects.get(args["as"].get<std::string>());
  if (auto* f = dynamic_cast<Forwarder*>(named)) named = &f->target();
  auto* slot = dynamic_cast<Slot*>(named);
  if (slot == nullptr) throw KindError("TypeError", std::string("'as' must name an ") + type);
  return *slot;
}

// ---- Pool ----

class PoolObject : public driverkit::Object {
 public:
  PoolObject(Json args, const driverkit::Objects& objects)
      : args_(std::move(args)), objects_(objects) {}

  Json call(const std::string& method, const Json& args) override {
    mp::Pool& p = pool();
    if (method == "apply")
      return from_value(p.apply(func_arg(args), list_arg(args, "args"), dict_arg(args, "kwds")));
    if (method == "apply_async" || method == "map_async" || method == "starmap_async") {
      auto& slot = slot_arg<AsyncResultObject>(args, objects_, "AsyncResult");
      auto log = std::make_shared<CallbackLog>();
      mp::ResultCallback cb;
      mp::ErrorCallback ecb;
      if (auto raise = callback_mode(args, "callback")) {
        cb = [log, r = *raise](const mp::Value& v) {
          log->add("callback", from_value(v));
          if (r) throw mp::RuntimeError("callback failed");
        };
      }
      if (auto raise = callback_mode(args, "error_callback")) {
        ecb = [log, r = *raise](const mp::Error& e) {
          log->add("error_callback", error_json(e));
          if (r) throw mp::RuntimeError("callback failed");
        };
      }
      const std::string f = func_arg(args);
      mp::AsyncResult r =
          method == "apply_async"
              ? p.apply_async(f, list_arg(args, "args"), dict_arg(args, "kwds"), cb, ecb)
          : method == "map_async"
              ? p.map_async(f, list_arg(args, "iterable"), opt_int_arg(args, "chunksize"), cb, ecb)
              : p.starmap_async(f, list_arg(args, "iterable"), opt_int_arg(args, "chunksize"), cb,
                                ecb);
      slot.bind(std::move(r), std::move(log));
      return nullptr;
    }
    if (method == "map" || method == "starmap") {
      const std::string f = func_arg(args);
      mp::List out = method == "map"
                         ? p.map(f, list_arg(args, "iterable"), opt_int_arg(args, "chunksize"))
                         : p.starmap(f, list_arg(args, "iterable"), opt_int_arg(args, "chunksize"));
      return from_value(mp::Value(std::move(out)));
    }
    if (method == "imap" || method == "imap_unordered") {
      auto& slot = slot_arg<IteratorObject>(args, objects_, "Iterator");
      const std::string f = func_arg(args);
      const long chunksize = opt_int_arg(args, "chunksize").value_or(1);
      slot.bind(method == "imap" ? p.imap(f, list_arg(args, "iterable"), chunksize)
                                 : p.imap_unordered(f, list_arg(args, "iterable"), chunksize));
      return nullptr;
    }
    if (method == "close" || method == "__exit__" || method == "terminate" || method == "join" ||
        method == "__enter__") {
      if (method == "close") p.close();
      if (method == "terminate" || method == "__exit__") p.terminate();  // `with` terminates
      if (method == "join") p.join();
      if (method == "__enter__" && !p.running()) throw mp::ValueError("Pool not running");
      return nullptr;
    }
    if (method == "worker_pids") {
      Json pids = Json::array();
      for (pid_t pid : p.worker_pids()) pids.push_back(static_cast<std::int64_t>(pid));
      return pids;
    }
    throw KindError("Other", "Pool has no method " + method);
  }

 private:
  // The actor's own pool, constructed at its first call (process-local).
  mp::Pool& pool() {
    std::lock_guard<std::mutex> g(mu_);
    if (owner_pid_ != ::getpid() || !pool_) {
      pool_.reset();
      mp::PoolOptions options;
      options.start_method = mp::StartMethod::kFork;  // the driver's only start method
      if (auto n = opt_int_arg(args_, "processes")) options.processes = static_cast<int>(*n);
      if (args_.contains("maxtasksperchild") && !args_["maxtasksperchild"].is_null()) {
        if (!args_["maxtasksperchild"].is_number_integer())
          throw mp::ValueError("maxtasksperchild must be a positive int or None");
        options.maxtasksperchild = args_["maxtasksperchild"].get<long>();
      }
      if (args_.contains("initializer") && !args_["initializer"].is_null()) {
        if (!args_["initializer"].is_string())
          throw KindError("TypeError", "initializer must be a pool task name");
        options.initializer = args_["initializer"].get<std::string>();
        if (!mp::is_pool_function_registered(*options.initializer))
          throw KindError("Unsupported", "no pool task '" + *options.initializer + "'");
      }
      options.initargs = list_arg(args_, "initargs");
      pool_ = std::make_unique<mp::Pool>(options);
      owner_pid_ = ::getpid();
    }
    return *pool_;
  }

  Json args_;
  const driverkit::Objects& objects_;
  std::mutex mu_;
  pid_t owner_pid_ = 0;
  std::unique_ptr<mp::Pool> pool_;
};

}  // namespace

void register_pool(driverkit::Backend& b) {
  b.types["Pool"] = {
      {"apply", "apply_async", "map", "map_async", "starmap", "starmap_async", "imap",
       "imap_unordered", "close", "terminate", "join", "__enter__", "__exit__", "worker_pids"},
      [](const Json& args, const driverkit::Objects& objects) {
        if (!args.is_null() && !args.is_object())
          throw KindError("TypeError", "Pool args must be a map");
        return std::make_unique<PoolObject>(args.is_null() ? Json::object() : args, objects);
      }};
  b.types["AsyncResult"] = {
      {"get", "wait", "ready", "successful", "callbacks"},
      [](const Json&, const driverkit::Objects&) { return std::make_unique<AsyncResultObject>(); }};
  b.types["Iterator"] = {{"next"}, [](const Json&, const driverkit::Objects&) {
                           return std::make_unique<IteratorObject>();
                         }};
}

}  // namespace mpspec::reference_backend
