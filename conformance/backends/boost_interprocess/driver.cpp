// The Boost.Interprocess backend: Boost's process-shared primitives behind the driver protocol,
// through the driver kit. A third-party backend: it maps the spec's types to what Boost offers
// and reports the differences (harness/expectations/boost-interprocess.toml). Not offered:
// Barrier (Boost has no process-shared barrier), queues, connections, processes, shared values.
#include <boost/interprocess/exceptions.hpp>
#include <boost/version.hpp>

#include "common.hpp"

int main(int argc, char** argv) {
  mpspec::driverkit::Backend b;
  b.name = "boost-interprocess";
  b.version = std::to_string(BOOST_VERSION / 100000) + "." +
              std::to_string(BOOST_VERSION / 100 % 1000) + "." +
              std::to_string(BOOST_VERSION % 100);
  b.features = {"timeout", "nonblocking", "threads", "kill", "prelude"};
  mpspec::boost_backend::register_sync(b);
  mpspec::boost_backend::register_locks(b);
  // Boost's errors: an interprocess_exception reports a failed system call (OSError); a
  // lock_exception, a guard used without owning its lock, has no kind of the spec (Other).
  b.map_error = [](const std::exception& e) -> std::pair<std::string, std::string> {
    namespace bip = boost::interprocess;
    if (dynamic_cast<const bip::lock_exception*>(&e))
      return {"Other", std::string("boost::interprocess::lock_exception: ") + e.what()};
    if (dynamic_cast<const bip::interprocess_exception*>(&e))
      return {"OSError", std::string("boost::interprocess::interprocess_exception: ") + e.what()};
    return {"Other", e.what()};
  };
  return mpspec::driverkit::run(b, argc, argv);
}
