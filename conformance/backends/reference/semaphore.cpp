// Semaphore and BoundedSemaphore in the reference backend: mp::Semaphore and
// mp::BoundedSemaphore behind the protocol's Semaphore methods.
#include <mp/errors.hpp>
#include <mp/semaphore.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;

// Protocol §6: the constructor's `value` (int, default 1).
std::int64_t value_arg(const Json& args) {
  if (!args.is_object() || !args.contains("value")) return 1;
  const Json& v = args.at("value");
  if (!v.is_number_integer()) throw driverkit::KindError("TypeError", "value must be an int");
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > 0x7fffffffu)
    throw driverkit::KindError("OverflowError", "semaphore value is too large");
  return v.get<std::int64_t>();
}

template <typename S>
class SemaphoreObject : public driverkit::Object {
 public:
  explicit SemaphoreObject(std::int64_t value) : sem_(value) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire") {
      return sem_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
    }
    if (method == "release") {
      sem_.release();
      return nullptr;
    }
    if (method == "get_value") return sem_.get_value();
    if (method == "__enter__") {  // the scoped form: a blocking acquire
      sem_.lock();
      return true;
    }
    if (method == "__exit__") {
      sem_.unlock();
      return nullptr;
    }
    throw driverkit::KindError("Other", "Semaphore has no method " + method);
  }

 private:
  S sem_;
};

template <typename S>
driverkit::Type entry() {
  return {{"acquire", "release", "get_value", "__enter__", "__exit__"},
          [](const Json& args, const driverkit::Objects&) -> std::unique_ptr<driverkit::Object> {
            return std::make_unique<SemaphoreObject<S>>(value_arg(args));
          }};
}

}  // namespace

void register_semaphore(driverkit::Backend& b) {
  b.types["Semaphore"] = entry<mp::Semaphore>();
  b.types["BoundedSemaphore"] = entry<mp::BoundedSemaphore>();
}

}  // namespace mpspec::reference_backend
