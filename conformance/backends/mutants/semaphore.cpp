// Semaphore mutants: a Semaphore that admits one more holder than its value (it is created
// with value + 1; get_value reports the true count); a BoundedSemaphore whose release above
// its bound neither raises nor is refused (it is a plain Semaphore). Both mutants offer both
// types; only the named one is broken.
#include <mp/errors.hpp>
#include <mp/semaphore.hpp>

#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

enum class SemMutant { kAdmitsOneMore, kBoundedNoRaise };

std::int64_t value_arg(const Json& args) {
  if (!args.is_object() || !args.contains("value")) return 1;
  if (!args.at("value").is_number_integer())
    throw driverkit::KindError("TypeError", "value must be an int");
  return args.at("value").get<std::int64_t>();
}

template <typename S>
class MutantSemaphore : public driverkit::Object {
 public:
  MutantSemaphore(std::int64_t value, std::int64_t extra) : sem_(value + extra) {
    if (value < 0) throw mp::ValueError("semaphore initial value must be >= 0");
  }

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire") {
      return sem_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
    }
    if (method == "__enter__") {
      sem_.lock();
      return true;
    }
    if (method == "release" || method == "__exit__") {
      sem_.release();
      return nullptr;
    }
    if (method == "get_value") return sem_.get_value();
    throw driverkit::KindError("Other", "Semaphore has no method " + method);
  }

 private:
  S sem_;
};

template <typename S>
driverkit::Type entry(std::int64_t extra) {
  return {
      {"acquire", "release", "get_value", "__enter__", "__exit__"},
      [extra](const Json& args, const driverkit::Objects&) -> std::unique_ptr<driverkit::Object> {
        return std::make_unique<MutantSemaphore<S>>(value_arg(args), extra);
      }};
}

}  // namespace

bool install_semaphore_mutant(const std::string& which, driverkit::Backend& b) {
  if (which == "semaphore-admits-one-more") {
    b.types["Semaphore"] = entry<mp::Semaphore>(1);
    b.types["BoundedSemaphore"] = entry<mp::BoundedSemaphore>(0);
  } else if (which == "bounded-no-raise") {
    b.types["Semaphore"] = entry<mp::Semaphore>(0);
    b.types["BoundedSemaphore"] = entry<mp::Semaphore>(0);
  } else {
    return false;
  }
  return true;
}

}  // namespace mpspec::mutants
