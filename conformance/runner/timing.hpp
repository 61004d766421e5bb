// The timing classes of the timing policy (spec/README.md), in seconds, each scaled by
// MPSPEC_TIMEOUT_MULTIPLIER. Tests never assert tight durations: "times out" checks assert a
// lower bound (elapsed >= timeout - kClockResolution) and the liveness bound `huge`.
#pragma once

namespace mpspec::timing {

double multiplier();  // MPSPEC_TIMEOUT_MULTIPLIER, default 1, must be > 0
inline double zero() { return 0.0; }
inline double yield() { return 0.01 * multiplier(); }
inline double small() { return 0.1 * multiplier(); }
inline double long_() { return 1.0 * multiplier(); }
inline double huge() { return 60.0 * multiplier(); }
constexpr double kClockResolution = 0.001;

}  // namespace mpspec::timing
