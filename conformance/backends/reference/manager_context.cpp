// The setup context "manager" in the reference backend (spec/protocol.md,
// [protocol.setup.context]): the setup's Lock, RLock, Semaphore, BoundedSemaphore, Event,
// Condition, Barrier, Queue and JoinableQueue objects are referents in one mp::Manager server
// that the driver starts for the setup, and every protocol method runs through the proxy the
// driver (and, by fork, each actor) holds — the sync and queue chapters a second time, through a
// manager (spec/manager/manager.md, [manager.served_semantics]). The locks, semaphores, conditions
// and queues are libmp's "mp." typeids, which follow those chapters (libmp's own primitives'
// semantics, robust owners included) rather than SyncManager's threading / queue.Queue ones;
// Event and Barrier are the built-ins (the two semantics agree).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <mp/errors.hpp>
#include <mp/manager.hpp>
#include <optional>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;
using driverkit::KindError;

bool truthy(const Json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number_integer()) return v.get<std::int64_t>() != 0;
  if (v.is_number_float()) return v.get<double>() != 0.0;
  if (v.is_string() || v.is_array() || v.is_object()) return !v.empty();
  return true;
}

// One object of the setup, served by the context's manager.
class Managed : public driverkit::Object {
 public:
  Managed(std::string type, mp::Proxy proxy, const driverkit::Objects& objects)
      : type_(std::move(type)), proxy_(std::move(proxy)), objects_(objects) {}

  const std::string& type() const { return type_; }
  const mp::Proxy& proxy() const { return proxy_; }

  Json call(const std::string& method, const Json& args) override {
    const bool lockish = type_ == "Lock" || type_ == "RLock" || type_ == "Semaphore" ||
                         type_ == "BoundedSemaphore" || type_ == "Condition";
    if (lockish && method == "acquire") {
      mp::List a{mp::Value(driverkit::bool_arg(args, "block", true))};
      if (auto t = driverkit::timeout_arg(args)) a.push_back(mp::Value(*t));
      return remote("acquire", std::move(a));
    }
    if (lockish && method == "__enter__") return remote("acquire");
    if (lockish && method == "__exit__") {
      remote("release");
      return nullptr;
    }
    if (type_ == "Event" && method == "wait") return remote("wait", timeout_list(args));
    if (type_ == "Condition") {
      if (method == "wait") return remote("wait", timeout_list(args));
      if (method == "wait_for") return wait_for(args);
      if (method == "notify") {
        const Json n = args.value("n", Json(1));
        return remote("notify", mp::List{to_value(n)});
      }
    }
    if (type_ == "Barrier") {
      if (method == "wait") return remote("wait", timeout_list(args));
      if (method == "parties" || method == "n_waiting" || method == "broken")
        return remote("__getattribute__", mp::List{mp::Value(method)});
    }
    if (type_ == "Queue" || type_ == "JoinableQueue") {
      if (method == "put" || method == "put_nowait") {
        if (!args.contains("obj")) throw KindError("TypeError", "put needs 'obj'");
        mp::List a{to_value(args["obj"])};
        if (method == "put") {
          a.push_back(mp::Value(driverkit::bool_arg(args, "block", true)));
          if (auto t = driverkit::timeout_arg(args)) a.push_back(mp::Value(*t));
        }
        return remote(method, std::move(a));
      }
      if (method == "get") {
        mp::List a{mp::Value(driverkit::bool_arg(args, "block", true))};
        if (auto t = driverkit::timeout_arg(args)) a.push_back(mp::Value(*t));
        return remote("get", std::move(a));
      }
    }
    // Everything else by its own name and without arguments (release, is_set, set, clear,
    // notify_all, abort, reset, get_nowait, qsize, empty, full, task_done, join, ...); a name the
    // referent does not expose fails as the manager says (RemoteError).
    return remote(method);
  }

 private:
  Json remote(const std::string& method, mp::List args = {}) {
    return from_value(proxy_.call(method, std::move(args)));
  }

  static mp::List timeout_list(const Json& args) {
    mp::List a;
    if (auto t = driverkit::timeout_arg(args)) a.push_back(mp::Value(*t));
    return a;
  }

  // Condition.wait_for evaluated in the caller with remote waits, as Python's ConditionProxy does.
  Json wait_for(const Json& args) {
    if (!args.contains("predicate")) throw KindError("TypeError", "wait_for needs 'predicate'");
    const driverkit::BoundCall predicate(args["predicate"], objects_);
    const std::optional<double> timeout = driverkit::timeout_arg(args);
    const auto end = std::chrono::steady_clock::now() +
                     std::chrono::duration<double>(timeout ? std::max(0.0, *timeout) : 0.0);
    Json result = predicate();
    while (!truthy(result)) {
      if (timeout) {
        const double left =
            std::chrono::duration<double>(end - std::chrono::steady_clock::now()).count();
        if (left <= 0) break;
        remote("wait", mp::List{mp::Value(left)});
      } else {
        remote("wait");
      }
      result = predicate();
    }
    return result;
  }

  std::string type_;
  mp::Proxy proxy_;
  const driverkit::Objects& objects_;
};

std::int64_t int_arg(const Json& args, const char* key, std::int64_t fallback) {
  if (!args.is_object() || !args.contains(key) || args[key].is_null()) return fallback;
  if (!args[key].is_number_integer())
    throw KindError("TypeError", std::string(key) + " must be an int");
  return args[key].get<std::int64_t>();
}

class ManagerContext : public driverkit::Context {
 public:
  ManagerContext() {
    mp::ManagerOptions options;
    options.start_method = mp::StartMethod::kFork;  // the driver's only start method
    manager_ = std::make_unique<mp::Manager>(std::nullopt, std::nullopt, options);
    manager_->start();
    if (auto pid = manager_->pid()) {
      pid_ = *pid;
      driverkit::register_parent_child(pid_);  // killed with the driver on its SIGTERM
    }
  }

  ~ManagerContext() override {
    try {
      manager_->shutdown();
    } catch (...) {
    }
    if (pid_ > 0) driverkit::forget_parent_child(pid_);
  }

  std::unique_ptr<driverkit::Object> create(const std::string& type, const Json& args,
                                            const driverkit::Objects& objects) override {
    mp::List a;
    mp::Dict k;
    if (type == "Lock" || type == "RLock" || type == "Event") {
    } else if (type == "Semaphore" || type == "BoundedSemaphore") {
      a.push_back(mp::Value(int_arg(args, "value", 1)));
    } else if (type == "Condition") {
      if (args.is_object() && args.contains("lock") && !args["lock"].is_null()) {
        // A Condition over the setup's Lock or RLock: made by that lock's referent, so that
        // both share one lock in the server.
        auto* lock = dynamic_cast<Managed*>(&objects.ref(args["lock"]));
        if (lock == nullptr || (lock->type() != "Lock" && lock->type() != "RLock"))
          throw KindError("Unsupported", "a Condition over a lock the manager does not serve");
        return std::make_unique<Managed>(type, lock->proxy().call_proxy("Condition"), objects);
      }
    } else if (type == "Barrier") {
      if (args.is_object() && args.contains("action") && !args["action"].is_null())
        throw KindError("Unsupported", "a Barrier action cannot run in the manager's server");
      a.push_back(mp::Value(int_arg(args, "parties", 0)));
      if (auto t = driverkit::timeout_arg(args)) k["timeout"] = mp::Value(*t);
    } else if (type == "Queue" || type == "JoinableQueue") {
      a.push_back(mp::Value(int_arg(args, "maxsize", 0)));
    } else {
      return nullptr;  // not served by a manager: made as usual
    }
    const std::string served = type == "Event" || type == "Barrier" ? type : "mp." + type;
    return std::make_unique<Managed>(type, manager_->create(served, std::move(a), std::move(k)),
                                     objects);
  }

 private:
  std::unique_ptr<mp::Manager> manager_;
  pid_t pid_ = 0;
};

}  // namespace

void register_manager_context(driverkit::Backend& b) {
  b.contexts["manager"] = [] { return std::make_unique<ManagerContext>(); };
}

}  // namespace mpspec::reference_backend
