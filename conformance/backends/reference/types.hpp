// The reference backend's type table, one file per type: each registers its type with the
// driver kit. A type whose file registers nothing is simply not offered (tests report
// UNSUPPORTED).
#pragma once

#include <mp/lock.hpp>
#include <mp/rlock.hpp>

#include "driverkit.hpp"

namespace mpspec::reference_backend {

// Object classes other adapters need (a Condition takes a Lock or an RLock by reference).
class LockObject : public driverkit::Object {
 public:
  driverkit::Json call(const std::string& method, const driverkit::Json& args) override;
  mp::Lock& get() { return lock_; }

 private:
  mp::Lock lock_;
};

class RLockObject : public driverkit::Object {
 public:
  driverkit::Json call(const std::string& method, const driverkit::Json& args) override;
  mp::RLock& get() { return rlock_; }

 private:
  mp::RLock rlock_;
};

void register_lock(driverkit::Backend& b);
void register_rlock(driverkit::Backend& b);
void register_semaphore(driverkit::Backend& b);  // Semaphore and BoundedSemaphore
void register_event(driverkit::Backend& b);
void register_condition(driverkit::Backend& b);
void register_barrier(driverkit::Backend& b);
void register_rwlock(driverkit::Backend& b);
void register_shared_lock(driverkit::Backend& b);
void register_file_locks(driverkit::Backend& b);  // InterProcessLock, InterProcessReaderWriterLock
void register_local(driverkit::Backend& b);

}  // namespace mpspec::reference_backend
