// Lock, RLock, Semaphore, BoundedSemaphore, Event and Condition on Boost.Interprocess:
// interprocess_mutex, interprocess_recursive_mutex, interprocess_semaphore, and an Event and a
// bounded semaphore written the way Boost's users write them (a flag or a counter beside a mutex).
#include <boost/interprocess/sync/interprocess_condition.hpp>
#include <boost/interprocess/sync/interprocess_condition_any.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/interprocess_recursive_mutex.hpp>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <climits>
#include <memory>

#include "common.hpp"

namespace mpspec::boost_backend {
namespace {

// The Lock methods on a Boost mutex (nullopt for another method). The scoped form
// (__enter__/__exit__) is a scoped_lock's lock() and unlock().
template <typename Mutex>
std::optional<Json> lock_call(Mutex& m, const std::string& method, const Json& args) {
  if (method == "acquire")
    return acquire(
        args, [&] { return m.try_lock(); }, [&](auto until) { return m.timed_lock(until); },
        [&] { m.lock(); });
  if (method == "__enter__") {
    m.lock();
    return true;
  }
  if (method != "release" && method != "__exit__") return std::nullopt;
  m.unlock();
  return nullptr;
}

// Lock -> interprocess_mutex, RLock -> interprocess_recursive_mutex.
template <typename Mutex>
class MutexObject : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (auto result = lock_call(*mutex_, method, args)) return *result;
    throw driverkit::KindError("Other", "no method " + method);
  }
  Mutex& get() const { return *mutex_; }

 private:
  Shared<Mutex> mutex_;
};
using LockObject = MutexObject<bip::interprocess_mutex>;
using RLockObject = MutexObject<bip::interprocess_recursive_mutex>;

// Semaphore -> interprocess_semaphore (Boost offers no way to read its value: no get_value).
// BoundedSemaphore: the same, plus the counter a Boost user keeps to enforce the bound: a
// release checks and raises it under a mutex before posting; an acquire lowers it after its
// wait. Between an acquire's wait and its decrement, a release may be refused although a unit
// is out: the bound check and the semaphore are not one atomic step.
struct BoundedState {
  explicit BoundedState(unsigned v) : sem(v), value(v), bound(v) {}
  bip::interprocess_semaphore sem;
  bip::interprocess_mutex mutex;
  unsigned value, bound;
};

class SemaphoreObject : public driverkit::Object {
 public:
  SemaphoreObject(unsigned value, bool bounded) {
    if (bounded)
      bounded_.emplace(value);
    else
      sem_.emplace(value);
  }
  Json call(const std::string& method, const Json& args) override {
    bip::interprocess_semaphore& sem = bounded_ ? (*bounded_)->sem : **sem_;
    if (method == "acquire" || method == "__enter__") {
      const bool got = acquire(
          method == "acquire" ? args : Json::object(), [&] { return sem.try_wait(); },
          [&](auto until) { return sem.timed_wait(until); }, [&] { sem.wait(); });
      if (got && bounded_) {
        bip::scoped_lock<bip::interprocess_mutex> g((*bounded_)->mutex);
        --(*bounded_)->value;
      }
      return got;
    }
    if (method == "release" || method == "__exit__") {
      if (bounded_) {
        bip::scoped_lock<bip::interprocess_mutex> g((*bounded_)->mutex);
        if ((*bounded_)->value >= (*bounded_)->bound)
          throw driverkit::KindError("ValueError", "semaphore released above its bound");
        ++(*bounded_)->value;
      }
      sem.post();
      return nullptr;
    }
    throw driverkit::KindError("Other", "no method " + method);
  }

 private:
  std::optional<Shared<bip::interprocess_semaphore>> sem_;
  std::optional<Shared<BoundedState>> bounded_;
};

// Event: a flag guarded by an interprocess_mutex, with an interprocess_condition to wait on.
struct EventState {
  bip::interprocess_mutex mutex;
  bip::interprocess_condition changed;
  bool flag = false;
};

class EventObject : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    bip::scoped_lock<bip::interprocess_mutex> g(state_->mutex);
    if (method == "is_set") return state_->flag;
    if (method == "set" || method == "clear") {
      state_->flag = method == "set";
      if (state_->flag) state_->changed.notify_all();
      return nullptr;
    }
    if (method == "wait") {
      auto is_set = [&] { return state_->flag; };
      if (const auto timeout = driverkit::timeout_arg(args))
        return state_->changed.timed_wait(g, deadline(*timeout), is_set);
      state_->changed.wait(g, is_set);
      return true;
    }
    throw driverkit::KindError("Other", "no method " + method);
  }

 private:
  Shared<EventState> state_;
};

// Condition -> interprocess_condition over a Lock's interprocess_mutex; over an RLock's
// interprocess_recursive_mutex (and for lock=None, a recursive mutex of its own) Boost needs
// interprocess_condition_any. A wait adopts the lock the caller holds (accept_ownership), as a
// Boost user's scoped_lock would hold it.
template <typename Mutex, typename Cond>
class ConditionObject : public driverkit::Object {
 public:
  ConditionObject(Mutex* mutex, const driverkit::Objects& objects)
      : mutex_(mutex), objects_(objects) {
    if (mutex_ == nullptr) mutex_ = &*own_.emplace();
  }
  Json call(const std::string& method, const Json& args) override {
    if (auto result = lock_call(*mutex_, method, args)) return *result;
    if (method == "notify_all") {
      cond_->notify_all();
      return nullptr;
    }
    if (method == "notify") {
      const Json n = args.value("n", Json(1));
      if (!n.is_number_integer()) throw driverkit::KindError("TypeError", "n must be an int");
      // One notify_one per waiter to wake (4096 at most: more would find no waiter here).
      for (std::int64_t i = 0; i < n.get<std::int64_t>() && i < 4096; ++i) cond_->notify_one();
      return nullptr;
    }
    bip::scoped_lock<Mutex> held(*mutex_, bip::accept_ownership);
    struct Keep {  // the caller keeps holding the lock after the wait
      bip::scoped_lock<Mutex>& lock;
      ~Keep() { lock.release(); }
    } keep{held};
    const std::optional<double> timeout = driverkit::timeout_arg(args);
    if (method == "wait") {
      if (!timeout) {
        cond_->wait(held);
        return true;
      }
      return cond_->timed_wait(held, deadline(*timeout));
    }
    if (method == "wait_for") {
      const driverkit::BoundCall predicate(args.value("predicate", Json()), objects_);
      Json last;
      auto truthy = [&] {
        last = predicate();
        return !(last.is_null() || last == false || last == 0 || last == "" ||
                 ((last.is_array() || last.is_object()) && last.empty()));
      };
      if (timeout)
        cond_->timed_wait(held, deadline(*timeout), truthy);
      else
        cond_->wait(held, truthy);
      return last;
    }
    throw driverkit::KindError("Other", "no method " + method);
  }

 private:
  Mutex* mutex_;
  std::optional<Shared<Mutex>> own_;
  Shared<Cond> cond_;
  const driverkit::Objects& objects_;
};

unsigned value_arg(const Json& args) {
  const Json v = args.value("value", Json(1));
  if (!v.is_number_integer()) throw driverkit::KindError("TypeError", "value must be an int");
  if (v.get<std::int64_t>() > std::int64_t{UINT_MAX})
    throw driverkit::KindError("OverflowError", "value does not fit an unsigned int");
  // The constructor takes an unsigned int: a negative value arrives as a huge one, which
  // sem_init refuses (EINVAL), and Boost throws interprocess_exception.
  return static_cast<unsigned>(v.get<std::int64_t>());
}

}  // namespace

void register_sync(driverkit::Backend& b) {
  const std::vector<std::string> lock_methods = {"acquire", "release", "__enter__", "__exit__"};
  b.types["Lock"] = plain<LockObject>(lock_methods);
  b.types["RLock"] = plain<RLockObject>(lock_methods);
  b.types["Event"] = plain<EventObject>({"is_set", "set", "clear", "wait"});
  for (const bool bounded : {false, true})
    b.types[bounded ? "BoundedSemaphore" : "Semaphore"] = {
        lock_methods, [bounded](const Json& args, const driverkit::Objects&) {
          return std::make_unique<SemaphoreObject>(value_arg(args), bounded);
        }};
  b.types["Condition"] = {
      {"acquire", "release", "__enter__", "__exit__", "wait", "wait_for", "notify", "notify_all"},
      [](const Json& args,
         const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
        const Json lock = args.value("lock", Json());
        if (lock.is_null())
          return std::make_unique<
              ConditionObject<bip::interprocess_recursive_mutex, bip::interprocess_condition_any>>(
              nullptr, objects);
        driverkit::Object& target = objects.ref(lock);
        if (auto* l = dynamic_cast<LockObject*>(&target))
          return std::make_unique<
              ConditionObject<bip::interprocess_mutex, bip::interprocess_condition>>(&l->get(),
                                                                                     objects);
        if (auto* r = dynamic_cast<RLockObject*>(&target))
          return std::make_unique<
              ConditionObject<bip::interprocess_recursive_mutex, bip::interprocess_condition_any>>(
              &r->get(), objects);
        throw driverkit::KindError("TypeError", "Condition's lock must be a Lock or an RLock");
      }};
}

}  // namespace mpspec::boost_backend
