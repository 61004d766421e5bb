// -----------------------------------------------------------------------------
// File: event.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::Event`, a flag shared between threads and
// processes that callers can wait on, with the semantics of Python's
// `multiprocessing.Event` (normative text: mpspec `spec/sync/event.md`):
//
//   mp::Event       a handle to an event living in shared memory; a process
//                   that forks after creating it shares it with the child.
//   mp::EventState  the event's in-memory representation (see Event::attach()).
//
// The flag starts clear. set() raises it and wakes every waiter; clear()
// lowers it; wait() blocks while it is down. There is no lock inside: the
// whole state is one atomic word, so a process that dies at any instant,
// waiting or setting, cannot leave the event unusable or make set() block.
//
// Example:
//
//   mp::Event ready;
//   if (fork() == 0) { prepare(); ready.set(); _exit(0); }
//   if (!ready.wait(5.0)) { ... not ready within 5 s ... }

#ifndef MP_EVENT_HPP_
#define MP_EVENT_HPP_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

namespace mp {

namespace platform {
class SharedMapping;
}  // namespace platform

// mp::EventState
//
// One 32-bit futex word on its own cache line:
//
//   bit   name      meaning
//   ---   -------   ------------------------------------------------------
//   0     SET       the flag
//   1     WAITERS   someone may be asleep in wait(); set() must wake them
//
// To place an event in memory you manage, construct an EventState there with
// placement new before other processes use it, then use Event::attach(). It
// must outlive every Event attached to it.
struct EventState {
  alignas(64) std::atomic<std::uint32_t> word{0};
};
static_assert(sizeof(EventState) == 64);

// mp::Event
//
// A handle to a process-shared event. Copies are handles to the same event.
// An Event created by `Event()` lives in its own anonymous shared mapping,
// kept mapped while any handle to it exists in the process.
//
// Blocking and timeouts. wait(timeout) blocks while the flag is clear, up to
// `timeout` seconds (nullopt: no limit), measured on CLOCK_MONOTONIC from one
// absolute deadline taken when the call starts. A zero or negative timeout
// makes wait() return at once. wait() returns the flag as it is when the wait
// ends: true if it was set (even if the timeout expired at the same moment),
// false on expiry with the flag clear. A waiter may see a set() followed
// quickly by clear() and keep waiting only if the flag was cleared before the
// waiter was scheduled; wait() never returns true for a flag that was never
// set while it waited.
//
// Waking. set() wakes every thread and process blocked in wait(). It never
// blocks, and it costs a system call only when someone is waiting. set() on a
// set event and clear() on a clear one change nothing.
//
// Cost. is_set() is one relaxed-acquire load; set() with no waiter and clear()
// are one atomic operation each.
//
// Errors. A NaN timeout throws mp::ValueError. Event() throws
// std::system_error if the shared mapping cannot be created.
//
// Memory ordering. Everything a thread does before set() happens-before
// everything another thread does after a wait() or is_set() that returns true
// because of that set().
//
// Crashes. A process killed inside wait() simply disappears from the kernel's
// wait queue; set() wakes the others and never waits for anyone. (CPython's
// Event blocks in set() when a waiter died, gh-75158.)
class Event {
 public:
  // Event::Event()
  //
  // Creates a new event, clear, in a new anonymous shared mapping.
  Event();

  // Event::attach()
  //
  // A handle to the event whose state is `state` (not owned).
  static Event attach(EventState& state) noexcept;

  Event(const Event&) = default;
  Event& operator=(const Event&) = default;
  ~Event() = default;

  // Event::is_set()
  //
  // Returns the flag. Never blocks.
  bool is_set() const noexcept;

  // Event::set()
  //
  // Raises the flag and wakes every waiter. Idempotent. Never blocks.
  void set() noexcept;

  // Event::clear()
  //
  // Lowers the flag. Waiters that have not yet seen the flag keep waiting.
  void clear() noexcept;

  // Event::wait()
  //
  // Blocks until the flag is set or `timeout` seconds have passed (nullopt or
  // +inf: no limit; <= 0: no wait). Returns the flag when the wait ends.
  // Throws mp::ValueError for a NaN timeout.
  bool wait(std::optional<double> timeout = std::nullopt);

  friend bool operator==(const Event& a, const Event& b) noexcept { return a.state_ == b.state_; }

 private:
  Event(std::shared_ptr<platform::SharedMapping> mapping, EventState* state) noexcept
      : mapping_(std::move(mapping)), state_(state) {}

  bool wait_slow(std::optional<double> timeout);

  std::shared_ptr<platform::SharedMapping> mapping_;  // null for attached events
  EventState* state_;                                 // never null
};

inline constexpr std::uint32_t kEventSet = 1;

inline bool Event::is_set() const noexcept {
  return (state_->word.load(std::memory_order_acquire) & kEventSet) != 0;
}

inline bool Event::wait(std::optional<double> timeout) {
  if (is_set()) return true;
  return wait_slow(timeout);
}

}  // namespace mp

#endif  // MP_EVENT_HPP_
