// Deliberately broken backends, one file per family. Each family's install function
// recognises its mutant names and installs the broken type(s); it returns false for names it
// does not know. harness/backends.toml lists each mutant with the tests that must catch it.
#pragma once

#include <string>

#include "driverkit.hpp"

namespace mpspec::mutants {

using driverkit::Json;

bool install_lock_mutant(const std::string& which, driverkit::Backend& b);
bool install_event_mutant(const std::string& which, driverkit::Backend& b);
bool install_condition_mutant(const std::string& which, driverkit::Backend& b);
bool install_rlock_mutant(const std::string& which, driverkit::Backend& b);
bool install_semaphore_mutant(const std::string& which, driverkit::Backend& b);
bool install_barrier_mutant(const std::string& which, driverkit::Backend& b);
bool install_rwlock_mutant(const std::string& which, driverkit::Backend& b);  // and file locks
bool install_shared_lock_mutant(const std::string& which, driverkit::Backend& b);
// Connection, Listener, Process (on the reference adapters)
bool install_connection_mutant(const std::string& which, driverkit::Backend& b);
// Queue, JoinableQueue (on the reference adapter)
bool install_queue_mutant(const std::string& which, driverkit::Backend& b);
bool install_sharedctypes_mutant(const std::string& which, driverkit::Backend& b);  // + SharedMemory
bool install_pool_mutant(const std::string& which, driverkit::Backend& b);  // Pool, its slots
bool install_manager_mutant(const std::string& which, driverkit::Backend& b);  // Manager, Proxy

}  // namespace mpspec::mutants
