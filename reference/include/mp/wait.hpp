// -----------------------------------------------------------------------------
// File: wait.hpp
// -----------------------------------------------------------------------------
//
// This header defines `mp::wait()`, which waits for the first of several
// connections and processes to become ready, as Python's
// `multiprocessing.connection.wait`:
//
//   auto [a, b] = mp::Pipe();
//   mp::Process p("worker", {});
//   p.start();
//   std::vector<int> ready = mp::wait({a.fileno(), p.sentinel()}, 5.0);
//
// A descriptor is ready when a read on it would not block: a Connection's
// descriptor when a message (or part of one) has arrived or the peer has
// closed its end (the next receive then raises EOFError); a Process's
// sentinel when the process has ended.

#ifndef MP_WAIT_HPP_
#define MP_WAIT_HPP_

#include <initializer_list>
#include <optional>
#include <span>
#include <vector>

namespace mp {

// mp::wait()
//
// Blocks until at least one descriptor of `fds` is ready, or `timeout`
// seconds have passed; returns the ready ones, in the order of `fds` (each
// once, even if listed twice). Never consumes anything.
//
//   timeout nullopt, +inf   waits without limit
//   timeout <= 0            one check, never blocks
//   timeout > 0             waits until one CLOCK_MONOTONIC deadline taken
//                           when the call starts (EINTR does not stretch it);
//                           an empty result means the deadline passed
//   timeout NaN             mp::ValueError
//
// An empty `fds` with a timeout sleeps until the deadline and returns empty
// (without one it would block for ever, as in Python; do not). A descriptor
// that is not open is reported ready (a read on it fails at once, so it does
// not block), as poll(2) reports POLLNVAL. Throws mp::OSError if poll(2)
// fails for another reason than EINTR. Thread safe; does not spin.
std::vector<int> wait(std::span<const int> fds, std::optional<double> timeout = std::nullopt);
std::vector<int> wait(std::initializer_list<int> fds, std::optional<double> timeout = std::nullopt);

}  // namespace mp

#endif  // MP_WAIT_HPP_
