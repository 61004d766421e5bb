#include "mp/platform/clock.hpp"

#include <time.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "mp/errors.hpp"

namespace mp::platform {

std::int64_t monotonic_now_ns() noexcept {
  timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
    // Cannot fail for CLOCK_MONOTONIC with a valid pointer.
    std::fputs("libmp: clock_gettime(CLOCK_MONOTONIC) failed\n", stderr);
    std::abort();
  }
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Deadline Deadline::after(double seconds) {
  if (std::isnan(seconds)) throw ValueError("timeout must not be NaN");
  if (seconds <= 0.0) return expired();
  if (seconds >= kMaxSeconds) return never();  // also +inf
  // kMaxSeconds * 1e9 + uptime stays far below INT64_MAX.
  const auto relative_ns = static_cast<std::int64_t>(std::ceil(seconds * 1e9));
  return Deadline(monotonic_now_ns() + relative_ns);
}

}  // namespace mp::platform
