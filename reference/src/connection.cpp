// mp::Connection and mp::Pipe: CPython's framing over a file descriptor.
#include "mp/connection.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/socket.hpp"

namespace mp {

namespace {

constexpr std::uint64_t kMaxShortLength = 0x7fffffff;  // largest 4-byte header length
// Payloads up to this size are allocated at once; larger ones grow as their
// bytes arrive, by a factor of kGrowth: a lying header costs at most about
// kGrowth times what was received. (A factor of 2 makes a 2 GiB message spend
// seconds in reallocation; 8 needs two steps from 64 MiB to 2 GiB.)
constexpr std::uint64_t kEagerAllocation = std::uint64_t{64} << 20;
constexpr std::uint64_t kGrowth = 8;
// A payload up to this size is copied behind its header and sent as one
// contiguous buffer (send()/write()): the kernel's one-buffer path is shorter
// than a two-part gather write (about 70 ns less CPU per 64-byte message on
// the dev VM, more than the copy costs). Larger payloads are sent in place
// with a gather write. Either way a message is one system call.
constexpr std::size_t kCoalesceLimit = 1024;
// recv_bytes() must zero-fill its std::string before reading into it (C++20
// has no resize_and_overwrite). Payloads above this size are filled a step at
// a time, each step just before its bytes are read, so that the read
// overwrites lines still in cache (and the sender may refill the socket while
// the reader clears the next step): for 1 MiB messages about 8% less reader
// CPU on the dev VM than filling the whole payload first.
constexpr std::size_t kFillStep = std::size_t{256} << 10;

void put_be32(unsigned char* p, std::uint32_t v) {
  p[0] = static_cast<unsigned char>(v >> 24);
  p[1] = static_cast<unsigned char>(v >> 16);
  p[2] = static_cast<unsigned char>(v >> 8);
  p[3] = static_cast<unsigned char>(v);
}

std::uint64_t get_be(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

Connection::Connection(int fd, bool readable, bool writable) {
  if (fd < 0) throw ValueError("invalid handle");
  if (!readable && !writable) {
    throw ValueError("at least one of `readable` and `writable` must be True");
  }
  fd_ = fd;
  readable_ = readable;
  writable_ = writable;
  socket_ = platform::is_socket(fd);
}

Connection::Connection(Connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      readable_(other.readable_),
      writable_(other.writable_),
      socket_(other.socket_) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    readable_ = other.readable_;
    writable_ = other.writable_;
    socket_ = other.socket_;
  }
  return *this;
}

Connection::~Connection() { close(); }

int Connection::fileno() const {
  if (fd_ < 0) throw OSError("handle is closed");
  return fd_;
}

void Connection::close() noexcept {
  if (fd_ >= 0) platform::close_stream(std::exchange(fd_, -1));
}

int Connection::detach() noexcept { return std::exchange(fd_, -1); }

void Connection::check_readable() const {
  if (fd_ < 0) throw OSError("handle is closed");
  if (!readable_) throw OSError("connection is write-only");
}

void Connection::check_writable() const {
  if (fd_ < 0) throw OSError("handle is closed");
  if (!writable_) throw OSError("connection is read-only");
}

void Connection::send_bytes(std::span<const std::byte> buf, std::int64_t offset,
                            std::optional<std::int64_t> size) {
  check_writable();
  const auto n = static_cast<std::int64_t>(buf.size());
  if (offset < 0) throw ValueError("offset is negative");
  if (n < offset) throw ValueError("buffer length < offset");
  std::int64_t count = n - offset;
  if (size.has_value()) {
    if (*size < 0) throw ValueError("size is negative");
    // offset + size > n, without overflow.
    if (*size > n - offset) throw ValueError("buffer length < offset + size");
    count = *size;
  }
  send_frame(buf.data() + offset, static_cast<std::uint64_t>(count));
}

void Connection::send_bytes(std::string_view buf, std::int64_t offset,
                            std::optional<std::int64_t> size) {
  send_bytes(std::as_bytes(std::span<const char>(buf.data(), buf.size())), offset, size);
}

void Connection::send_frame(const std::byte* data, std::uint64_t size) {
  unsigned char header[12];
  std::size_t header_size;
  if (size <= kMaxShortLength) {
    put_be32(header, static_cast<std::uint32_t>(size));
    header_size = 4;
  } else {
    put_be32(header, 0xffffffffu);  // -1 as a signed 32-bit integer
    put_be32(header + 4, static_cast<std::uint32_t>(size >> 32));
    put_be32(header + 8, static_cast<std::uint32_t>(size));
    header_size = 12;
  }
  if (size <= kCoalesceLimit) {
    unsigned char frame[4 + kCoalesceLimit];
    std::memcpy(frame, header, 4);
    if (size > 0) std::memcpy(frame + 4, data, static_cast<std::size_t>(size));
    platform::write_all(fd_, socket_, {frame, 4 + static_cast<std::size_t>(size)}, {nullptr, 0});
    return;
  }
  platform::write_all(fd_, socket_, {header, header_size}, {data, static_cast<std::size_t>(size)});
}

void Connection::read_exact(void* data, std::size_t size) {
  auto* p = static_cast<unsigned char*>(data);
  std::size_t done = 0;
  while (done < size) {
    const std::size_t n = platform::read_some(fd_, p + done, size - done);
    if (n == 0) {
      if (done == 0) throw EOFError();
      throw OSError("got end of file during message");
    }
    done += n;
  }
}

std::uint64_t Connection::read_header() {
  unsigned char header[8];
  read_exact(header, 4);
  const auto length = static_cast<std::int32_t>(static_cast<std::uint32_t>(get_be(header, 4)));
  if (length == -1) {
    read_exact(header, 8);
    return get_be(header, 8);
  }
  // A negative length other than -1 is malformed: refused (CPython reads it as an empty
  // message; spec/connection/connection.md, [connection.wire.negative_length.refused]).
  if (length < 0) bad_message_length();
  return static_cast<std::uint64_t>(length);
}

std::string Connection::read_payload(std::uint64_t size) {
  std::string out;
  if (size <= kFillStep) {
    out.resize(static_cast<std::size_t>(size));
    read_exact(out.data(), out.size());
    return out;
  }
  if (size <= kEagerAllocation) {
    // Allocated at once, zero-filled and read a step at a time (kFillStep).
    const auto total = static_cast<std::size_t>(size);
    out.reserve(total);
    std::size_t done = 0;
    while (done < total) {
      const std::size_t step_end = std::min(total, done + kFillStep);
      out.resize(step_end);
      while (done < step_end) {
        const std::size_t n = platform::read_some(fd_, out.data() + done, step_end - done);
        if (n == 0) {
          if (done == 0) throw EOFError();
          throw OSError("got end of file during message");
        }
        done += n;
      }
    }
    return out;
  }
  // Large: grow with the data, so that memory follows what actually arrives.
  std::uint64_t done = 0;
  bool first = true;
  while (done < size) {
    const std::uint64_t want = std::min(size, std::max(done * kGrowth, kEagerAllocation));
    out.resize(static_cast<std::size_t>(want));
    while (done < want) {
      const std::size_t n =
          platform::read_some(fd_, out.data() + done, static_cast<std::size_t>(want - done));
      if (n == 0) {
        if (first) throw EOFError();
        throw OSError("got end of file during message");
      }
      first = false;
      done += n;
    }
  }
  return out;
}

void Connection::bad_message_length() {
  if (writable_) {
    readable_ = false;
  } else {
    close();
  }
  throw OSError("bad message length");
}

std::string Connection::recv_bytes(std::optional<std::int64_t> maxlength) {
  check_readable();
  if (maxlength.has_value() && *maxlength < 0) throw ValueError("negative maxlength");
  const std::uint64_t size = read_header();
  if (maxlength.has_value() && size > static_cast<std::uint64_t>(*maxlength)) {
    bad_message_length();
  }
  return read_payload(size);
}

std::size_t Connection::recv_bytes_into(std::span<std::byte> buf, std::int64_t offset) {
  check_readable();
  if (offset < 0) throw ValueError("negative offset");
  if (offset > static_cast<std::int64_t>(buf.size())) throw ValueError("offset too large");
  const std::uint64_t size = read_header();
  const auto room = static_cast<std::uint64_t>(buf.size()) - static_cast<std::uint64_t>(offset);
  if (size > room) throw BufferTooShort(read_payload(size));
  read_exact(buf.data() + offset, static_cast<std::size_t>(size));
  return static_cast<std::size_t>(size);
}

std::size_t Connection::recv_bytes_into(std::span<char> buf, std::int64_t offset) {
  return recv_bytes_into(std::as_writable_bytes(buf), offset);
}

bool Connection::poll(std::optional<double> timeout) {
  check_readable();
  const platform::Deadline deadline =
      timeout.has_value() ? platform::Deadline::after(*timeout) : platform::Deadline::never();
  return platform::poll_readable(fd_, deadline);
}

std::pair<Connection, Connection> Pipe(bool duplex) {
  const platform::FdPair fds = duplex ? platform::socket_pair() : platform::pipe_pair();
  // The constructors cannot throw for valid descriptors and flags.
  return {Connection(fds.first, true, duplex), Connection(fds.second, duplex, true)};
}

}  // namespace mp
