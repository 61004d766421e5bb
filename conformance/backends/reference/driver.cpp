// The reference backend: libmp behind the driver protocol. This adapter is the only place
// where the suite touches libmp, exactly as a third-party backend would be plugged in.
#include <mp/errors.hpp>
#include <mp/lock.hpp>

#include "driverkit.hpp"

namespace {

using mpspec::driverkit::Json;

class LockObject : public mpspec::driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire") {
      return lock_.acquire(mpspec::driverkit::bool_arg(args, "block", true),
                           mpspec::driverkit::timeout_arg(args));
    }
    if (method == "release") {
      lock_.release();
      return nullptr;
    }
    if (method == "__enter__") {  // the scoped form: a blocking acquire
      lock_.lock();
      return true;
    }
    if (method == "__exit__") {
      lock_.unlock();
      return nullptr;
    }
    throw mpspec::driverkit::KindError("Other", "Lock has no method " + method);
  }

 private:
  mp::Lock lock_;
};

}  // namespace

int main(int argc, char** argv) {
  mpspec::driverkit::Backend b;
  b.name = "reference";
  b.version = "0.1.0";
  b.features = {"timeout", "nonblocking", "threads", "kill", "prelude", "strict"};
  b.types["Lock"] = {{"acquire", "release", "__enter__", "__exit__"},
                     [](const Json&) { return std::make_unique<LockObject>(); }};
  b.map_error = [](const std::exception& e) -> std::pair<std::string, std::string> {
    if (auto* err = dynamic_cast<const mp::Error*>(&e)) return {err->kind(), err->what()};
    return {"Other", e.what()};
  };
  return mpspec::driverkit::run(b, argc, argv);
}
