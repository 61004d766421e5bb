// The reference backend's type table, one file per type: each registers its type with the
// driver kit. A type whose file registers nothing is simply not offered (tests report
// UNSUPPORTED).
#pragma once

#include <memory>
#include <mp/connection.hpp>
#include <mp/lock.hpp>
#include <mp/rlock.hpp>
#include <mp/value.hpp>
#include <mutex>

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

// A Connection end or slot (connection.cpp).
class ConnectionObject : public driverkit::Object {
 public:
  driverkit::Json call(const std::string& method, const driverkit::Json& args) override;
  void release_copy() override;
  // Puts `connection` in this object (in the calling process), closing what it held.
  void bind(mp::Connection connection);
  int fileno() const;
  // The connection this object holds in the calling process; throws KindError("Other") for an
  // empty slot. (For wrappers, e.g. the mutants.)
  std::shared_ptr<mp::Connection> get() const;
  // The setup's objects, for `send` of a `{"$ref": name}` (feature `refs`); set by the factory.
  void set_objects(const driverkit::Objects* objects) { objects_ = objects; }
  // Holds what `other` holds (the same connection, shared).
  void share(const ConnectionObject& other) {
    auto c = other.get();
    std::lock_guard<std::mutex> g(mu_);
    conn_ = std::move(c);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<mp::Connection> conn_;
  const driverkit::Objects* objects_ = nullptr;
};

// An object that Module.wait can watch: a Process stands for its sentinel.
class Waitable {
 public:
  virtual ~Waitable() = default;
  virtual int wait_fd() = 0;
};

// A mark on the objects of the setup's shared values (Value, RawValue, Array, RawArray,
// Synchronized; sharedctypes.cpp), so that other adapters recognise them without linking them.
class SharedValueMark {
 public:
  virtual ~SharedValueMark() = default;
};
inline bool is_shared_value(const driverkit::Object& object) {
  return dynamic_cast<const SharedValueMark*>(&object) != nullptr;
}

// An object that stands for another where a call names it as a slot to bind (`as`): a mutant
// that wraps a slot (conformance/backends/mutants/pool.cpp) forwards the binding to the slot
// it wraps.
class Forwarder {
 public:
  virtual ~Forwarder() = default;
  virtual driverkit::Object& target() = 0;
};

// Values of the protocol (JSON, bytes as {"$bytes": ...}) and libmp's mp::Value.
mp::Value to_value(const driverkit::Json& j);
driverkit::Json from_value(const mp::Value& v);

// Module methods (spec/protocol.md §6), by the file that implements them.
driverkit::Json connection_module_call(const std::string& method, const driverkit::Json& args,
                                       const driverkit::Objects& objects);

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
void register_connection(driverkit::Backend& b);  // Pipe, Connection, Listener
// A fresh AF_UNIX address for a Listener made without one: in a directory of the driver's that
// is emptied at teardown and removed at exit or SIGTERM (register_connection makes it), so that
// a killed actor's socket file does not outlive the driver.
mp::Address listener_socket_address();
void register_process(driverkit::Backend& b);  // Process and Module
void register_queue(driverkit::Backend& b);    // Queue, JoinableQueue, SimpleQueue
void register_sharedctypes(
    driverkit::Backend& b);  // Value, RawValue, Array, RawArray, Synchronized
void register_shared_memory(driverkit::Backend& b);    // SharedMemory, Module.shared_memory
void register_pool(driverkit::Backend& b);             // Pool, AsyncResult, Iterator
void register_manager(driverkit::Backend& b);          // Manager, Proxy, Module.manager_create
void register_manager_context(driverkit::Backend& b);  // setup context "manager"

}  // namespace mpspec::reference_backend
