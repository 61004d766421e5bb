// Shared helpers of libmp's fuzz targets (reference/fuzz/README.md).
#ifndef MP_FUZZ_UTIL_HPP_
#define MP_FUZZ_UTIL_HPP_

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

#include "mp/connection.hpp"
#include "mp/errors.hpp"

namespace mp_fuzz {

// A failure of the property a target checks: report it and abort, which libFuzzer (and the
// replay main) turn into a saved crash input.
[[noreturn]] inline void fail(const char* what, const char* detail = "") {
  std::fprintf(stderr, "mp_fuzz: property violated: %s %s\n", what, detail);
  std::fflush(stderr);
  std::abort();
}

// A libmp Connection whose peer (raw descriptor) has already written `data` and then shut down
// its writing side, so that every read ends (with the bytes, then end of file) and never blocks.
// Writes by the Connection land in the peer's receive buffer (never read; small).
inline std::pair<mp::Connection, int> connection_fed_with(const std::uint8_t* data,
                                                          std::size_t size) {
  auto [a, b] = mp::Pipe(true, mp::PipeKind::kStream);  // the stream framing, byte by byte
  const int raw = b.detach();
  int buf = 4 << 20;
  ::setsockopt(raw, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  ::setsockopt(a.fileno(), SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  // Non-blocking: an input larger than the socket buffers is cut short (a valid stream too),
  // never a hang.
  ::fcntl(raw, F_SETFL, ::fcntl(raw, F_GETFL) | O_NONBLOCK);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(raw, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::shutdown(raw, SHUT_WR);
  return {std::move(a), raw};
}

// The same over the record transport (mp::Pipe()'s default, SOCK_SEQPACKET): `data` is a list of
// records, each a 2-byte big-endian length then that many bytes (a cut last record is sent as
// cut); the peer sends them (as many as the socket buffers take at once) and shuts down its
// writing side. `*sent` is the number of record bytes sent.
inline std::pair<mp::Connection, int> connection_fed_with_records(const std::uint8_t* data,
                                                                  std::size_t size,
                                                                  std::size_t* sent) {
  auto [a, b] = mp::Pipe(true, mp::PipeKind::kMessages);
  const int raw = b.detach();
  *sent = 0;
  std::size_t at = 0;
  while (at + 2 <= size) {
    const std::size_t len = std::min<std::size_t>((std::size_t{data[at]} << 8) | data[at + 1],
                                                  size - at - 2);
    if (::send(raw, data + at + 2, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) break;
    *sent += len;
    at += 2 + len;
  }
  ::shutdown(raw, SHUT_WR);
  return {std::move(a), raw};
}

// Runs `body`; an mp::Error (libmp's documented, clean failures) is fine, anything else
// (std::bad_alloc, std::length_error, ...) is a finding.
template <class Body>
void expect_clean(Body&& body) {
  try {
    body();
  } catch (const mp::Error&) {
  } catch (const std::exception& e) {
    fail("an exception that is not an mp::Error:", e.what());
  }
}

}  // namespace mp_fuzz

#endif  // MP_FUZZ_UTIL_HPP_
