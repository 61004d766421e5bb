// -----------------------------------------------------------------------------
// File: platform/clock.hpp
// -----------------------------------------------------------------------------
//
// INTERNAL: part of libmp's platform layer. Users of libmp do not include this
// header; its contents may change without notice.
//
// Deadlines on CLOCK_MONOTONIC. Every timed wait in libmp turns the caller's
// relative timeout (Python-style seconds as a double) into one absolute
// deadline at the start of the call, and every futex wait of that call uses
// the same deadline. Waits therefore never drift, however often they are
// interrupted or woken spuriously, and are unaffected by changes of the wall
// clock.
//
// `std::chrono::steady_clock` in libstdc++ on Linux reads CLOCK_MONOTONIC, so a
// steady_clock time point and a Deadline share their epoch.

#ifndef MP_PLATFORM_CLOCK_HPP_
#define MP_PLATFORM_CLOCK_HPP_

#include <chrono>
#include <cstdint>
#include <limits>

namespace mp::platform {

// Reads CLOCK_MONOTONIC, in nanoseconds.
std::int64_t monotonic_now_ns() noexcept;

// mp::platform::Deadline
//
// An absolute instant on CLOCK_MONOTONIC (nanosecond resolution), or "never".
// A trivially copyable value.
class Deadline {
 public:
  // Relative timeouts of this many seconds or more (about 126 years) are
  // treated as "no limit": they are beyond what the clock can represent once
  // added to the current time.
  static constexpr double kMaxSeconds = 4.0e9;

  // Deadline::never()
  //
  // The deadline of an untimed wait.
  static constexpr Deadline never() noexcept { return Deadline(kNeverNs); }

  // Deadline::expired()
  //
  // A deadline that has already passed: a wait with it makes one attempt.
  static constexpr Deadline expired() noexcept { return Deadline(kExpiredNs); }

  // Deadline::after()
  //
  // `seconds` from now, read once from CLOCK_MONOTONIC and rounded up to the
  // next nanosecond so that a wait never ends early. Python semantics:
  //   NaN                     -> throws mp::ValueError
  //   <= 0 (also -inf)        -> expired()
  //   +inf or >= kMaxSeconds  -> never()
  static Deadline after(double seconds);

  // Deadline::at()
  //
  // The instant `monotonic_ns` on CLOCK_MONOTONIC (not clamped: values <= 0
  // are in the past, INT64_MAX is never()).
  static constexpr Deadline at(std::int64_t monotonic_ns) noexcept {
    return Deadline(monotonic_ns <= 0 ? kExpiredNs : monotonic_ns);
  }

  // Deadline::at_steady()
  //
  // The instant a `std::chrono::steady_clock` time point names, saturating:
  // time points beyond the representable range become never(), time points
  // at or before the clock's epoch become expired().
  template <class Duration>
  static constexpr Deadline at_steady(
      std::chrono::time_point<std::chrono::steady_clock, Duration> t) noexcept {
    const auto since_epoch = t.time_since_epoch();
    // Compare in floating point first: the cast to nanoseconds could overflow.
    const double seconds = std::chrono::duration<double>(since_epoch).count();
    if (!(seconds < 9.0e9)) return never();  // also catches NaN for floating reps
    if (seconds <= 0.0) return expired();
    return at(std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch).count());
  }

  // Deadline::is_never()
  constexpr bool is_never() const noexcept { return ns_ == kNeverNs; }

  // Deadline::has_passed()
  //
  // Whether the deadline is now or in the past. Reads the clock unless the
  // answer is known without it.
  bool has_passed() const noexcept {
    if (ns_ == kNeverNs) return false;
    if (ns_ == kExpiredNs) return true;
    return monotonic_now_ns() >= ns_;
  }

  // Deadline::monotonic_ns()
  //
  // The instant in CLOCK_MONOTONIC nanoseconds; INT64_MAX for never().
  constexpr std::int64_t monotonic_ns() const noexcept { return ns_; }

  friend constexpr bool operator==(Deadline a, Deadline b) noexcept = default;

 private:
  static constexpr std::int64_t kNeverNs = std::numeric_limits<std::int64_t>::max();
  static constexpr std::int64_t kExpiredNs = 0;

  constexpr explicit Deadline(std::int64_t ns) noexcept : ns_(ns) {}

  std::int64_t ns_;
};

}  // namespace mp::platform

#endif  // MP_PLATFORM_CLOCK_HPP_
