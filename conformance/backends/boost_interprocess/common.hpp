// The Boost.Interprocess backend: what its adapters share. Each protocol object owns one Boost
// primitive placed in an anonymous shared mapping (boost::interprocess::anonymous_shared_memory),
// made in the driver at setup, before the kit forks the actors: every actor inherits the mapping
// and so reaches the same primitive at the same address, as Boost's users share them with their
// children. Only what Boost offers is mapped; divergences from the spec are recorded in
// harness/expectations/boost-interprocess.toml, not patched over here.
#pragma once

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <memory>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include "driverkit.hpp"

namespace mpspec::boost_backend {

namespace bip = boost::interprocess;
using driverkit::Json;

// One T in a shared mapping of its own. The destructor unmaps without running ~T: the Boost
// primitives are POSIX objects in plain memory (nothing to free in the kernel), and glibc's
// pthread_cond_destroy waits for every waiter of the condition variable, which an actor killed
// while waiting never is: destroying one would hang the driver at teardown.
template <typename T>
class Shared {
 public:
  template <typename... Args>
  explicit Shared(Args&&... args)
      : region_(bip::anonymous_shared_memory(sizeof(T))),
        value_(new (region_.get_address()) T(std::forward<Args>(args)...)) {}
  T& operator*() const { return *value_; }
  T* operator->() const { return value_; }

 private:
  bip::mapped_region region_;
  T* value_;
};

// Boost 1.74 takes absolute deadlines as a UTC ptime (the wall clock). Timeouts beyond 10^8 s
// (and NaN) are cut to 10^8 s, which the spec lets a backend treat as no limit.
inline boost::posix_time::ptime deadline(double seconds) {
  if (!(seconds < 1e8)) seconds = 1e8;
  return boost::posix_time::microsec_clock::universal_time() +
         boost::posix_time::microseconds(static_cast<std::int64_t>(seconds * 1e6));
}

// The protocol's acquire(block, timeout) in terms of a Boost primitive's three forms of waiting:
// block=False is the try form, a timeout the timed form, otherwise the blocking form.
template <typename Try, typename Timed, typename Block>
bool acquire(const Json& args, Try try_form, Timed timed_form, Block block_form) {
  if (!driverkit::bool_arg(args, "block", true)) return try_form();
  const std::optional<double> timeout = driverkit::timeout_arg(args);
  if (!timeout) {
    block_form();
    return true;
  }
  return timed_form(deadline(*timeout));
}

// A type whose objects take no setup argument.
template <typename T>
driverkit::Type plain(std::vector<std::string> methods) {
  return {std::move(methods),
          [](const Json&, const driverkit::Objects&) { return std::make_unique<T>(); }};
}

void register_sync(driverkit::Backend& b);   // Lock, RLock, (Bounded)Semaphore, Event, Condition
void register_locks(driverkit::Backend& b);  // RWLock, SharedLock, file locks

}  // namespace mpspec::boost_backend
