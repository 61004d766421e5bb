// mp::Connection and mp::Pipe: CPython's framing over a file descriptor.
#include "mp/connection.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/socket.hpp"
#include "string_fill.hpp"

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
// with a gather write. Either way a message is one system call on a stream.
constexpr std::size_t kCoalesceLimit = 1024;
// Record transport (a SOCK_SEQPACKET Pipe(), see connection.hpp): a message's
// first record holds its header and at most Connection::kFirstRecord bytes in
// all, so that the reader receives it into a buffer on its stack and learns
// the length and (for a small message) the whole payload in one system call;
// the rest of the payload follows in records of at most kRecord bytes, each
// received straight into its place. With packet_pair()'s 1 MiB send buffers,
// 256 KiB records move 1 MiB messages faster than a default stream socketpair
// on the dev VM; 64 KiB records about as fast; with the default 208 KiB send
// buffer 128 KiB records are slower (fewer fit in flight).
constexpr std::size_t kRecord = std::size_t{256} << 10;
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
  const platform::SocketKind kind = platform::socket_kind(fd);
  socket_ = kind != platform::SocketKind::kNotSocket;
  records_ = kind == platform::SocketKind::kRecords;
}

Connection::Connection(Connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      readable_(other.readable_),
      writable_(other.writable_),
      socket_(other.socket_),
      records_(other.records_) {}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    readable_ = other.readable_;
    writable_ = other.writable_;
    socket_ = other.socket_;
    records_ = other.records_;
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
    const platform::ConstBuffer whole{frame, 4 + static_cast<std::size_t>(size)};
    if (records_) {
      if (!platform::send_record(fd_, whole, {nullptr, 0})) record_too_large();
    } else {
      platform::write_all(fd_, socket_, whole, {nullptr, 0});
    }
    return;
  }
  if (!records_) {
    platform::write_all(fd_, socket_, {header, header_size},
                        {data, static_cast<std::size_t>(size)});
    return;
  }
  // Records: the header with the start of the payload, then the rest in records of at most
  // kRecord bytes (smaller ones if the socket refuses that size: its send buffer was shrunk).
  const auto first = static_cast<std::size_t>(std::min<std::uint64_t>(size, kFirstRecord - header_size));
  if (!platform::send_record(fd_, {header, header_size}, {data, first})) record_too_large();
  std::uint64_t done = first;
  std::size_t chunk = kRecord;
  while (done < size) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(size - done, chunk));
    if (platform::send_record(fd_, {data + done, n}, {nullptr, 0})) {
      done += n;
    } else if (chunk > kFirstRecord) {
      chunk /= 2;
    } else {
      record_too_large();
    }
  }
}

void Connection::record_too_large() {
  throw OSError(EMSGSIZE, std::strerror(EMSGSIZE));
}

std::size_t Connection::read_chunk(void* data, std::size_t size) {
  if (!records_) return platform::read_some(fd_, data, size);
  bool truncated = false;
  const std::size_t n = platform::recv_record(fd_, data, size, &truncated);
  // A record that runs past the end of its message: the rest of it is lost, and the message
  // boundaries with it.
  if (truncated) bad_message_length();
  return n;
}

void Connection::read_exact(void* data, std::size_t size, bool started) {
  auto* p = static_cast<unsigned char*>(data);
  std::size_t done = 0;
  while (done < size) {
    const std::size_t n = read_chunk(p + done, size - done);
    if (n == 0) {
      if (done == 0 && !started) throw EOFError();
      throw OSError("got end of file during message");
    }
    done += n;
  }
}

void Connection::read_start(MessageStart& m) {
  if (!records_) {
    unsigned char* header = m.first;
    read_exact(header, 4, false);
    const auto length = static_cast<std::int32_t>(static_cast<std::uint32_t>(get_be(header, 4)));
    if (length == -1) {
      read_exact(header, 8, false);
      m.size = get_be(header, 8);
    } else if (length < 0) {
      // A negative length other than -1 is malformed: refused (CPython reads it as an empty
      // message; spec/connection/connection.md, [connection.wire.negative_length.refused]).
      bad_message_length();
    } else {
      m.size = static_cast<std::uint64_t>(length);
    }
    m.prefix = 0;
    return;
  }
  // Records: the first one holds the header and the start of the payload.
  bool truncated = false;
  const std::size_t n = platform::recv_record(fd_, m.first, sizeof m.first, &truncated);
  if (n == 0) throw EOFError();
  if (truncated || n < 4) bad_message_length();
  const auto length = static_cast<std::int32_t>(static_cast<std::uint32_t>(get_be(m.first, 4)));
  std::size_t header_size = 4;
  if (length == -1) {
    if (n < 12) bad_message_length();
    m.size = get_be(m.first + 4, 8);
    header_size = 12;
  } else if (length < 0) {
    bad_message_length();
  } else {
    m.size = static_cast<std::uint64_t>(length);
  }
  m.prefix_data = m.first + header_size;
  m.prefix = n - header_size;
  if (m.prefix > m.size) bad_message_length();  // bytes beyond the message's end
}

std::string Connection::read_payload(const MessageStart& m) {
  const std::uint64_t size = m.size;
  std::string out;
  if (m.prefix > 0) out.assign(reinterpret_cast<const char*>(m.prefix_data), m.prefix);
  std::uint64_t done = m.prefix;  // payload bytes received
  // Reads into `data` until `n` bytes are there, except that a record is read only into room
  // for a whole one (kRecord, or what the message has left), so that none is ever cut.
  auto fill = [&](char* data, std::size_t n) -> std::size_t {
    std::size_t got = 0;
    while (got < n) {
      if (records_ && n - got < std::min<std::uint64_t>(kRecord, size - done - got)) break;
      const std::size_t r = read_chunk(data + got, n - got);
      if (r == 0) {
        // As CPython: end of file before any byte of the payload is EOFError.
        if (done + got == 0) throw EOFError();
        throw OSError("got end of file during message");
      }
      got += r;
    }
    return got;
  };
  while (done < size) {
    // Up to kEagerAllocation at once; beyond, grow with the data, so that memory follows
    // what actually arrives (a lying header costs at most about kGrowth times that).
    std::uint64_t want = std::min(size, std::max(done * kGrowth, kEagerAllocation));
    want = std::max(want, std::min(size, done + kRecord));
    done += detail::grow_and_fill(out, static_cast<std::size_t>(want), fill);
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
  MessageStart m;
  read_start(m);
  if (maxlength.has_value() && m.size > static_cast<std::uint64_t>(*maxlength)) {
    bad_message_length();
  }
  return read_payload(m);
}

std::size_t Connection::recv_bytes_into(std::span<std::byte> buf, std::int64_t offset) {
  check_readable();
  if (offset < 0) throw ValueError("negative offset");
  if (offset > static_cast<std::int64_t>(buf.size())) throw ValueError("offset too large");
  MessageStart m;
  read_start(m);
  const auto room = static_cast<std::uint64_t>(buf.size()) - static_cast<std::uint64_t>(offset);
  if (m.size > room) throw BufferTooShort(read_payload(m));
  std::byte* out = buf.data() + offset;
  if (m.prefix > 0) std::memcpy(out, m.prefix_data, m.prefix);
  // As CPython: end of file before any byte of the payload is EOFError.
  read_exact(out + m.prefix, static_cast<std::size_t>(m.size - m.prefix), m.prefix > 0);
  return static_cast<std::size_t>(m.size);
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

std::pair<Connection, Connection> Pipe(bool duplex, PipeKind kind) {
  const platform::FdPair fds = !duplex                    ? platform::pipe_pair()
                               : kind == PipeKind::kStream ? platform::socket_pair()
                                                           : platform::packet_pair();
  // The constructors cannot throw for valid descriptors and flags.
  return {Connection(fds.first, true, duplex), Connection(fds.second, duplex, true)};
}

}  // namespace mp
