// Queue, JoinableQueue and SimpleQueue in the reference backend: mp::Queue, mp::JoinableQueue
// and mp::SimpleQueue behind the protocol's methods (spec/protocol.md §6, spec/queue/).
//
// The queue lives in shared memory made in the driver; each actor inherits the handle at fork,
// so close() (a property of the handle) affects the calling actor only, as in CPython. Values
// cross as mp::Value (to_value / from_value, connection.cpp); mp::Full and mp::Empty carry the
// kinds "Full" and "Empty" through the backend's error mapper.
#include <cstdint>
#include <memory>
#include <mp/errors.hpp>
#include <mp/queue.hpp>
#include <mp/value.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;
using driverkit::KindError;

// Protocol §6: the constructor's `maxsize` (int, default 0; <= 0 is unbounded).
std::int64_t maxsize_arg(const Json& args) {
  if (!args.is_object() || !args.contains("maxsize") || args.at("maxsize").is_null()) return 0;
  const Json& v = args.at("maxsize");
  if (!v.is_number_integer()) throw KindError("TypeError", "maxsize must be an int");
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
    throw KindError("OverflowError", "maxsize is too large");
  return v.get<std::int64_t>();
}

const Json& obj_arg(const Json& args) {
  if (!args.is_object() || !args.contains("obj")) throw KindError("TypeError", "put() needs 'obj'");
  return args.at("obj");
}

// Queue and JoinableQueue: Q is mp::Queue or mp::JoinableQueue.
template <typename Q>
class QueueObject : public driverkit::Object {
 public:
  explicit QueueObject(std::int64_t maxsize) : q_(maxsize) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "put") {
      q_.put(to_value(obj_arg(args)), driverkit::bool_arg(args, "block", true),
             driverkit::timeout_arg(args));
      return nullptr;
    }
    if (method == "put_nowait") {
      q_.put_nowait(to_value(obj_arg(args)));
      return nullptr;
    }
    if (method == "get") {
      return from_value(
          q_.get(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args)));
    }
    if (method == "get_nowait") return from_value(q_.get_nowait());
    if (method == "qsize") return q_.qsize();
    if (method == "empty") return q_.empty();
    if (method == "full") return q_.full();
    if (method == "close") {
      q_.close();
      return nullptr;
    }
    if (method == "join_thread") {
      q_.join_thread();
      return nullptr;
    }
    if (method == "cancel_join_thread") {
      q_.cancel_join_thread();
      return nullptr;
    }
    if constexpr (std::is_same_v<Q, mp::JoinableQueue>) {
      if (method == "task_done") {
        q_.task_done();
        return nullptr;
      }
      if (method == "join") {
        q_.join();  // no timeout on the protocol, as in CPython
        return nullptr;
      }
    }
    throw KindError("Other", "Queue has no method " + method);
  }

 private:
  Q q_;
};

class SimpleQueueObject : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method == "put") {
      q_.put(to_value(obj_arg(args)));
      return nullptr;
    }
    if (method == "get") return from_value(q_.get());
    if (method == "empty") return q_.empty();
    if (method == "close") {
      q_.close();
      return nullptr;
    }
    throw KindError("Other", "SimpleQueue has no method " + method);
  }

 private:
  mp::SimpleQueue q_;
};

std::vector<std::string> queue_methods() {
  return {"put",   "put_nowait", "get",   "get_nowait",  "qsize",
          "empty", "full",       "close", "join_thread", "cancel_join_thread"};
}

}  // namespace

void register_queue(driverkit::Backend& b) {
  b.types["Queue"] = {
      queue_methods(),
      [](const Json& args, const driverkit::Objects&) -> std::unique_ptr<driverkit::Object> {
        return std::make_unique<QueueObject<mp::Queue>>(maxsize_arg(args));
      }};
  auto joinable = queue_methods();
  joinable.push_back("task_done");
  joinable.push_back("join");
  b.types["JoinableQueue"] = {
      joinable,
      [](const Json& args, const driverkit::Objects&) -> std::unique_ptr<driverkit::Object> {
        return std::make_unique<QueueObject<mp::JoinableQueue>>(maxsize_arg(args));
      }};
  b.types["SimpleQueue"] = {
      {"put", "get", "empty", "close"},
      [](const Json& args, const driverkit::Objects&) -> std::unique_ptr<driverkit::Object> {
        if (args.is_object() && !args.empty())
          throw KindError("TypeError", "SimpleQueue() takes no arguments");
        return std::make_unique<SimpleQueueObject>();
      }};
}

}  // namespace mpspec::reference_backend
