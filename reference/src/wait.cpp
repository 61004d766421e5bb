// mp::wait(): poll(2) over descriptors with one CLOCK_MONOTONIC deadline.
#include "mp/wait.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"

namespace mp {

std::vector<int> wait(std::span<const int> fds, std::optional<double> timeout) {
  using platform::Deadline;
  const Deadline deadline = timeout ? Deadline::after(*timeout) : Deadline::never();
  std::vector<pollfd> polled;
  polled.reserve(fds.size());
  for (int fd : fds) polled.push_back(pollfd{fd, POLLIN, 0});
  for (;;) {
    int wait_ms = -1;
    if (!deadline.is_never()) {
      const std::int64_t left = deadline.monotonic_ns() - platform::monotonic_now_ns();
      // Round up so that an empty result never comes before the deadline.
      wait_ms = left <= 0 ? 0
                          : static_cast<int>(std::min<std::int64_t>(
                                (left + 999'999) / 1'000'000, std::numeric_limits<int>::max()));
    }
    const int n = ::poll(polled.data(), polled.size(), wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw OSError(errno, std::strerror(errno));
    }
    if (n > 0 || wait_ms == 0) break;
    if (!deadline.is_never() && deadline.has_passed()) break;
  }
  std::vector<int> ready;
  for (const pollfd& p : polled) {
    if (p.revents == 0) continue;
    if (std::find(ready.begin(), ready.end(), p.fd) == ready.end()) ready.push_back(p.fd);
  }
  return ready;
}

std::vector<int> wait(std::initializer_list<int> fds, std::optional<double> timeout) {
  return wait(std::span<const int>(fds.begin(), fds.size()), timeout);
}

}  // namespace mp
