// Queue mutants, built on the reference adapter's queues (whose source the mutant driver
// compiles in) with one behaviour broken:
//   queue-lifo                  get returns the newest item instead of the oldest.
//   queue-drops-one-in-thousand every 1000th put returns normally but its item is dropped.
//   joinable-join-early         JoinableQueue.join returns at once, whatever the count.
//   queue-never-full            put never raises Full: maxsize is ignored (the queue is
//                               unbounded), though maxsize() still reports it.
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <mp/errors.hpp>

#include "../reference/types.hpp"
#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

// Forwards every call to the reference object, except what a subclass changes.
class Wrapper : public driverkit::Object {
 public:
  explicit Wrapper(std::unique_ptr<driverkit::Object> inner) : inner_(std::move(inner)) {}
  Json call(const std::string& method, const Json& args) override {
    return inner_->call(method, args);
  }

 protected:
  std::unique_ptr<driverkit::Object> inner_;
};

// LIFO: takes everything there is, returns the newest and puts the others back in order.
class LifoQueue : public Wrapper {
 public:
  using Wrapper::Wrapper;
  Json call(const std::string& method, const Json& args) override {
    if (method != "get" && method != "get_nowait") return inner_->call(method, args);
    std::vector<Json> taken = {inner_->call(method, args)};  // waits (or raises) as usual
    for (;;) {
      try {
        taken.push_back(inner_->call("get_nowait", Json::object()));
      } catch (const mp::Empty&) {
        break;
      }
    }
    const Json newest = taken.back();
    taken.pop_back();
    for (const Json& v : taken) inner_->call("put", Json{{"obj", v}});
    return newest;
  }
};

// A put counter shared by every process that inherits the object (actors are forked).
std::atomic<std::uint64_t>* shared_counter() {
  void* p = ::mmap(nullptr, sizeof(std::atomic<std::uint64_t>), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  return new (p) std::atomic<std::uint64_t>(0);
}

class DroppingQueue : public Wrapper {
 public:
  using Wrapper::Wrapper;
  Json call(const std::string& method, const Json& args) override {
    if ((method == "put" || method == "put_nowait") && counter_->fetch_add(1) % 1000 == 999) {
      return nullptr;  // the bug: "put" the item nowhere
    }
    return inner_->call(method, args);
  }

 private:
  std::atomic<std::uint64_t>* counter_ = shared_counter();
};

class JoinEarly : public Wrapper {
 public:
  using Wrapper::Wrapper;
  Json call(const std::string& method, const Json& args) override {
    if (method == "join") return nullptr;  // the bug: no wait for task_done
    return inner_->call(method, args);
  }
};

}  // namespace

bool install_queue_mutant(const std::string& which, driverkit::Backend& b) {
  if (which != "queue-lifo" && which != "queue-drops-one-in-thousand" &&
      which != "joinable-join-early" && which != "queue-never-full")
    return false;
  reference_backend::register_queue(b);
  for (const char* type : {"Queue", "JoinableQueue"}) {
    auto inner = b.types[type].create;
    b.types[type].create = [inner, which](const Json& args, const driverkit::Objects& objects)
        -> std::unique_ptr<driverkit::Object> {
      if (which == "queue-never-full") {
        // The bug: an unbounded queue whatever maxsize says.
        Json unbounded = args.is_object() ? args : Json::object();
        unbounded["maxsize"] = 0;
        return inner(unbounded, objects);
      }
      auto real = inner(args, objects);
      if (which == "queue-lifo") return std::make_unique<LifoQueue>(std::move(real));
      if (which == "queue-drops-one-in-thousand")
        return std::make_unique<DroppingQueue>(std::move(real));
      return std::make_unique<JoinEarly>(std::move(real));
    };
  }
  return true;
}

}  // namespace mpspec::mutants
