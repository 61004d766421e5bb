// The reference backend: libmp behind the driver protocol. These adapters are the only place
// where the suite touches libmp, exactly as a third-party backend would be plugged in.
#include <mp/errors.hpp>
#include <mp/process.hpp>

#include "driverkit.hpp"
#include "types.hpp"

int main(int argc, char** argv) {
  // A child libmp spawned runs its task here and never returns. (The driver offers only the
  // fork start method, so it spawns none today; the call keeps the binary spawn-ready.)
  mp::spawn_main(argc, argv);
  using namespace mpspec::reference_backend;
  mpspec::driverkit::Backend b;
  b.name = "reference";
  b.version = "0.1.0";
  b.features = {"timeout", "nonblocking", "threads", "kill", "prelude", "strict", "refs"};
  register_lock(b);
  register_rlock(b);
  register_semaphore(b);
  register_event(b);
  register_condition(b);
  register_barrier(b);
  register_rwlock(b);
  register_shared_lock(b);
  register_file_locks(b);
  register_local(b);
  register_connection(b);
  register_process(b);
  register_queue(b);
  register_sharedctypes(b);
  register_shared_memory(b);  // after register_process: adds Module.shared_memory
  register_pool(b);
  register_manager(b);  // after register_process: adds Module.manager_create
  register_manager_context(b);
  b.map_error = [](const std::exception& e) -> std::pair<std::string, std::string> {
    if (auto* err = dynamic_cast<const mp::Error*>(&e)) return {err->kind(), err->what()};
    return {"Other", e.what()};
  };
  return mpspec::driverkit::run(b, argc, argv);
}
