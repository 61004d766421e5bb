// Barrier in the reference backend: mp::Barrier behind the protocol's Barrier methods.
// The action argument ({"$call": [object, method]}) becomes the barrier's action; it runs in
// the actor process of the last party to arrive, and an error it raises (a KindError from the
// called object) propagates unchanged to that party's wait.
#include <mp/barrier.hpp>
#include <mp/errors.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;

class BarrierObject : public driverkit::Object {
 public:
  BarrierObject(std::size_t parties, mp::Barrier::Action action, std::optional<double> timeout)
      : barrier_(parties, std::move(action), timeout) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "wait") return barrier_.wait(driverkit::timeout_arg(args));
    if (method == "reset") {
      barrier_.reset();
      return nullptr;
    }
    if (method == "abort") {
      barrier_.abort();
      return nullptr;
    }
    if (method == "parties") return barrier_.parties();
    if (method == "n_waiting") return barrier_.n_waiting();
    if (method == "broken") return barrier_.broken();
    throw driverkit::KindError("Other", "Barrier has no method " + method);
  }

 private:
  mp::Barrier barrier_;
};

}  // namespace

void register_barrier(driverkit::Backend& b) {
  b.types["Barrier"] = {
      {"wait", "reset", "abort", "parties", "n_waiting", "broken"},
      [](const Json& args,
         const driverkit::Objects& objects) -> std::unique_ptr<driverkit::Object> {
        const Json parties = args.value("parties", Json());
        if (!parties.is_number_integer())
          throw driverkit::KindError("TypeError", "parties must be an int, got " + parties.dump());
        if (parties.get<long long>() <= 0)
          throw driverkit::KindError("ValueError", "parties must be > 0");
        mp::Barrier::Action action;
        const Json spec = args.value("action", Json());
        if (!spec.is_null()) {
          driverkit::BoundCall bound(spec, objects);
          action = [bound] { bound(); };
        }
        return std::make_unique<BarrierObject>(static_cast<std::size_t>(parties.get<long long>()),
                                               std::move(action), driverkit::timeout_arg(args));
      }};
}

}  // namespace mpspec::reference_backend
