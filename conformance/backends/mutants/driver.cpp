// Deliberately broken backends. The suite must FAIL against each of them: a mutant that
// passes means the suite has lost the power to catch that bug (see harness/backends.toml,
// where each mutant lists the tests that must catch it).
//
//   mpspec_driver_mutant --mutant NAME
//
// Lock: never-blocks (acquire always reports success at once), release-unheld-ok (release
// of a free lock succeeds silently).
// Event: event-wait-true-on-timeout, event-clear-noop. Condition: condition-notify-wakes-all
// (notify(n) wakes everyone), condition-wait-no-reacquire (wait returns without the lock).
// RLock: rlock-nonowner-release (release by a non-owner returns None), rlock-not-recursive
// (the owner's acquire returns False). Semaphore: semaphore-admits-one-more (one unit more
// than its value), bounded-no-raise (BoundedSemaphore release above its bound succeeds).
// Barrier: barrier-releases-early, barrier-duplicate-index, barrier-action-twice.
// RWLock: rwlock-writer-with-readers, rwlock-reader-preferred. InterProcessLock:
// filelock-pidfile. InterProcessReaderWriterLock: filerwlock-write-shared. local:
// local-per-process (see rwlock.cpp). SharedLock: shared-lock-reentrant-ok. Connection,
// Listener, Process (connection.cpp, on the reference adapters): connection-merges-small,
// listener-accepts-wrong-key, process-exitcode-ignores-signals. Queue, JoinableQueue
// (queue.cpp, on the reference adapter): queue-lifo, queue-drops-one-in-thousand,
// joinable-join-early, queue-never-full. Shared values, SharedMemory (sharedctypes.cpp, on the
// reference adapters): sharedctypes-copy-shares, shared-memory-attach-creates. Pool (pool.cpp,
// on the reference adapter): pool-drops-result, pool-imap-reorders, pool-swallows-errors.
// Manager, Proxy (manager.cpp, on the reference adapter): manager-unexposed-ok,
// manager-accepts-wrong-key, manager-dict-loses-updates.
#include <mp/errors.hpp>

#include <cstring>
#include <iostream>

#include "mutants.hpp"

int main(int argc, char** argv) {
  using namespace mpspec::mutants;
  std::string which;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mutant") == 0 && i + 1 < argc) which = argv[++i];
  }
  mpspec::driverkit::Backend b;
  b.name = "mutant-" + which;
  b.version = "0.1.0";
  b.features = {"timeout", "nonblocking", "threads", "kill", "prelude"};
  const bool known = install_lock_mutant(which, b) || install_event_mutant(which, b) ||
                     install_condition_mutant(which, b) || install_rlock_mutant(which, b) ||
                     install_semaphore_mutant(which, b) ||
                     install_barrier_mutant(which, b) || install_rwlock_mutant(which, b) ||
                     install_shared_lock_mutant(which, b) || install_connection_mutant(which, b) ||
                     install_queue_mutant(which, b) || install_sharedctypes_mutant(which, b) ||
                     install_pool_mutant(which, b) || install_manager_mutant(which, b);
  if (!known) {
    std::cerr << "mpspec_driver_mutant: unknown mutant '" << which
              << "'; see the list at the top of conformance/backends/mutants/driver.cpp\n";
    return 2;
  }
  b.map_error = [](const std::exception& e) -> std::pair<std::string, std::string> {
    if (auto* err = dynamic_cast<const mp::Error*>(&e)) return {err->kind(), err->what()};
    return {"Other", e.what()};
  };
  return mpspec::driverkit::run(b, argc, argv);
}
