// -----------------------------------------------------------------------------
// File: barrier.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::Barrier`, a cyclic barrier shared between threads
// and processes, with the semantics of Python's `multiprocessing.Barrier`
// (itself `threading.Barrier`; normative text: mpspec `spec/sync/barrier.md`),
// plus one guarantee CPython lacks: a party that dies while waiting breaks the
// barrier for the others instead of leaving them blocked for ever.
//
//   mp::Barrier             a handle to a barrier living in shared memory.
//   mp::BrokenBarrierError  thrown by wait() when the barrier is or becomes
//                           broken (kind "BrokenBarrierError").
//
// A barrier for `parties` parties lets each caller of wait() block until
// `parties` callers have called it; then all of them return at once and the
// barrier is ready for the next cycle. Each wait() returns the caller's arrival
// index in its cycle: 0 for the first to arrive, parties-1 for the last, each
// index exactly once per cycle.
//
// Example:
//
//   mp::Barrier barrier(2, [] { std::puts("both arrived"); });
//   if (fork() == 0) {
//     barrier.wait();            // child: blocks until the parent arrives too
//     _exit(0);
//   }
//   std::size_t index = barrier.wait(/*timeout=*/5.0);  // 0 or 1
//
// States. A barrier is *filling* (the normal state) or *broken*. It becomes
// broken when a wait() times out, when the action throws, when abort() is
// called, or when a party dies (see "Crashes"). A broken barrier stays broken
// until reset(): every wait() on it throws BrokenBarrierError at once.
//
// The action. An optional callable given at construction runs once per
// completed cycle, in the thread (and so the process) of the last party to
// arrive, after all parties have arrived and before any of them returns. The
// action is a std::function held by the handle, not in shared memory: a
// forked child inherits the parent's copy, but a process that attaches in any
// other way must supply the same action itself. The action runs while the
// barrier's internal guard is held, so it must be short and must not call
// the same barrier (doing so throws mp::AssertionError). If the action throws,
// the barrier breaks: the last party gets the action's exception (rethrown
// unchanged) and every other party of the cycle gets BrokenBarrierError.
//
// Timeouts. wait(timeout) waits at most `timeout` seconds; with no argument it
// uses the default timeout given at construction (none: no limit). The
// timeout is measured on CLOCK_MONOTONIC from one deadline fixed when the call
// starts. A timeout <= 0 gives up at once unless the caller completes the
// cycle; a NaN timeout throws mp::ValueError; +inf or >= 4e9 s means no
// limit. A wait() that times out breaks the barrier for everyone (Python's
// rule): it and every other waiter of the cycle throw BrokenBarrierError. A
// timed-out wait() returns no earlier than its deadline. Only the guard's
// short critical sections (and a running action) can delay a timeout.
//
// reset() returns the barrier to the filling state; the parties waiting at
// that moment throw BrokenBarrierError. abort() breaks the barrier.
//
// Crashes. The guard is a process-shared *robust* mutex: if a process dies
// while holding it (during a short critical section, or while running the
// action), the next caller finds out (EOWNERDEAD) and the barrier breaks.
// Each waiting party registers its process id in a slot table in the shared
// segment; a waiter wakes up every kDeathCheckInterval (50 ms) to check
// whether the registered processes are still alive (pidfd), and breaks the
// barrier when one of the current cycle's waiters has died. So when a party
// is killed while blocked in wait(), the other parties blocked in the same
// cycle throw BrokenBarrierError within about 50 ms (plus scheduling delays),
// and so does a party that arrives later and waits, unless the cycle was
// completed first (the dead party counts as arrived). A party that dies
// outside wait() is not noticed: the barrier simply waits for its arrival
// (use a timeout). Process ids are compared, not process start times, so a
// pid reused within the detection interval could hide a death (the check
// then treats the new process as the waiter); this needs ~pid_max forks.
//
// Memory ordering. Everything a party does before its wait() happens-before
// everything every party of the same cycle does after its wait() returns
// normally, and before the action runs.
//
// Fairness. Not applicable: a cycle releases all its parties at once.
//
// Cost. Every wait() takes the guard once on arrival. A party that does not
// complete the cycle then sleeps on a futex with a timed wait (the death-check
// slice) and, once woken, reads its outcome and frees its slot without the
// guard; the completing party wakes every sleeper with one system call. On
// the project's 2-vCPU VM (reference/bench/barrier_bench.cpp) a two-process
// cycle costs about the same as a process-shared pthread_barrier_t when the
// processes run on different CPUs (~35-45 us, dominated by the cross-CPU
// wake-up), and about twice as much when they share one CPU (~10 us against
// ~5 us: the robust guard and the timed futex wait's timer).
#ifndef MP_BARRIER_HPP_
#define MP_BARRIER_HPP_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "mp/errors.hpp"

namespace mp {

namespace platform {
class SharedMapping;
}  // namespace platform

// mp::BrokenBarrierError
//
// The barrier is broken, or was reset or aborted while the caller waited. Kind
// "BrokenBarrierError" (CPython's threading.BrokenBarrierError).
class BrokenBarrierError final : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override;
};

struct BarrierState;  // the shared representation (barrier.cpp)

// mp::Barrier
//
// A handle to a process-shared cyclic barrier. Copies are handles to the same
// barrier (and share the action). `Barrier(...)` creates the barrier in its
// own anonymous shared mapping, shared with every child forked afterwards.
class Barrier {
 public:
  using Action = std::function<void()>;

  // The largest number of parties libmp supports (the slot table of waiters
  // lives in the barrier's mapping, ~16 bytes per party).
  static constexpr std::size_t kMaxParties = 1 << 16;

  // How often a waiting party checks for dead parties (see "Crashes").
  static constexpr std::chrono::milliseconds kDeathCheckInterval{50};

  // Barrier::Barrier()
  //
  // A filling barrier for `parties` parties, with an optional action and an
  // optional default timeout in seconds (nullopt: none). Throws mp::ValueError
  // if `parties` is 0 or above kMaxParties, or if `timeout` is NaN;
  // std::system_error if the mapping cannot be created.
  explicit Barrier(std::size_t parties, Action action = {},
                   std::optional<double> timeout = std::nullopt);

  Barrier(const Barrier&) = default;
  Barrier& operator=(const Barrier&) = default;
  ~Barrier() = default;

  // Barrier::wait()
  //
  // Arrives at the barrier and blocks until all parties of this cycle have
  // arrived; returns the caller's arrival index (0 .. parties-1). The last to
  // arrive runs the action first and does not block. `timeout` nullopt means
  // the default timeout. Throws BrokenBarrierError if the barrier is broken,
  // becomes broken, or is reset while the caller waits; rethrows the action's
  // exception in the party that ran it; mp::ValueError on a NaN timeout.
  std::size_t wait(std::optional<double> timeout = std::nullopt);

  // Barrier::reset()
  //
  // Back to the filling state, with no party arrived. Parties blocked in
  // wait() throw BrokenBarrierError.
  void reset();

  // Barrier::abort()
  //
  // Breaks the barrier: blocked and future wait() calls throw
  // BrokenBarrierError until reset().
  void abort();

  // The number of parties, as constructed.
  std::size_t parties() const noexcept { return parties_; }

  // Barrier::n_waiting()
  //
  // How many parties have arrived in the current cycle and wait (0 when
  // broken). A snapshot: it may be stale as soon as it returns.
  std::size_t n_waiting() const;

  // Barrier::broken()
  //
  // Whether the barrier is broken. A snapshot.
  bool broken() const;

  friend bool operator==(const Barrier& a, const Barrier& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  class Guard;

  std::shared_ptr<platform::SharedMapping> mapping_;
  BarrierState* state_ = nullptr;
  std::size_t parties_ = 0;
  std::shared_ptr<const Action> action_;
};

}  // namespace mp

#endif  // MP_BARRIER_HPP_
