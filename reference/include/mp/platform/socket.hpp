// -----------------------------------------------------------------------------
// File: platform/socket.hpp
// -----------------------------------------------------------------------------
//
// INTERNAL: part of libmp's platform layer. Users of libmp do not include this
// header; its contents may change without notice.
//
// Byte streams for mp::Connection, mp::Listener and mp::Client: descriptor
// pairs (socketpair, pipe), whole-buffer writes and partial reads that absorb
// EINTR, a readiness wait with an absolute CLOCK_MONOTONIC deadline, and
// stream sockets (AF_UNIX, AF_INET) that listen, accept and connect.
//
// Conventions:
//
//   * Every descriptor created here is O_CLOEXEC / SOCK_CLOEXEC and blocking.
//   * Failures of the kernel throw mp::OSError(errno, strerror(errno)), the
//     form CPython reports them in ("[Errno 32] Broken pipe").
//   * Writes never raise SIGPIPE: sockets are written with MSG_NOSIGNAL; other
//     descriptors (pipes) are written with SIGPIPE blocked in the calling
//     thread, and a SIGPIPE the write itself raised is consumed before the
//     signal mask is restored. A write to a closed peer throws
//     OSError(EPIPE) instead, as in CPython (which ignores SIGPIPE).
//   * Descriptors that someone made non-blocking still work: EAGAIN waits for
//     readiness (poll) and retries.

#ifndef MP_PLATFORM_SOCKET_HPP_
#define MP_PLATFORM_SOCKET_HPP_

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mp/platform/clock.hpp"

namespace mp::platform {

// A read-only span of memory, for gather writes.
struct ConstBuffer {
  const void* data;
  std::size_t size;
};

// Two descriptors made together.
struct FdPair {
  int first;
  int second;
};

// AF_UNIX SOCK_STREAM socketpair; both ends read and write.
FdPair socket_pair();

// The send buffer packet_pair() asks for on each end (SO_SNDBUF; Linux doubles
// it for its bookkeeping): with the default (208 KiB) one 256 KiB record
// would not fit, and fewer records in flight halve the throughput.
inline constexpr int kPacketSendBuffer = 1 << 20;

// AF_UNIX SOCK_SEQPACKET socketpair (both ends read and write): the kernel
// keeps the boundaries of what each send() wrote (a record). Each end's send
// buffer is kPacketSendBuffer where the kernel allows it. Where the
// platform has no SOCK_SEQPACKET for AF_UNIX (EPROTONOSUPPORT, ESOCKTNOSUPPORT,
// EINVAL), returns a SOCK_STREAM pair instead; socket_kind() tells them apart.
FdPair packet_pair();

// What a descriptor carries, for mp::Connection's two transports.
enum class SocketKind {
  kNotSocket,  // a pipe, a file, a tty: a byte stream without send()
  kStream,     // a stream socket: a byte stream
  kRecords,    // SOCK_SEQPACKET or SOCK_DGRAM: record boundaries are kept
};

// socket_kind()
//
// One getsockopt(SO_TYPE). kNotSocket also for invalid descriptors.
SocketKind socket_kind(int fd) noexcept;

// recv_record()
//
// Receives one record of a record socket (see packet_pair()) into `data`, of
// capacity `size`; returns its length, or 0 at end of file. A record longer
// than `size` is cut by the kernel (its tail is lost): then `*truncated` is
// set to true (recvmsg's MSG_TRUNC) and the length returned is `size`. EINTR
// and EAGAIN are retried. Throws mp::OSError on failure.
std::size_t recv_record(int fd, void* data, std::size_t size, bool* truncated);

// send_record()
//
// Sends `first` then `second` as ONE record of a record socket (sendmsg with
// MSG_NOSIGNAL; the kernel takes all of it or nothing). EINTR and EAGAIN are
// retried. Returns false, sending nothing, if the record is larger than the
// socket takes at once (EMSGSIZE), so that the caller can send smaller ones.
// Throws mp::OSError on other failures (EPIPE when the reader is gone).
bool send_record(int fd, ConstBuffer first, ConstBuffer second);

// pipe2(): `first` is the read end, `second` the write end.
FdPair pipe_pair();

// Closes `fd`; errors (EINTR, EIO) are ignored, the descriptor is gone either
// way on Linux.
void close_stream(int fd) noexcept;

// write_all()
//
// Writes `first` then `second` completely (gather writes: writev, or sendmsg
// with MSG_NOSIGNAL when `socket`), so that a small header and its payload
// usually leave in one system call. Partial writes, EINTR and EAGAIN are
// retried. Throws mp::OSError on failure (EPIPE when the reader is gone); how
// much was written is then unknown.
void write_all(int fd, bool socket, ConstBuffer first, ConstBuffer second);

// read_some()
//
// Reads up to `size` bytes (at least 1 when `size` > 0) into `data`; returns
// how many, or 0 at end of file. EINTR and EAGAIN are retried. Throws
// mp::OSError on failure (e.g. ECONNRESET).
std::size_t read_some(int fd, void* data, std::size_t size);

// poll_readable()
//
// Waits until `fd` is readable, at end of file, or in error (poll revents
// other than 0), or until `deadline` passes. Returns true in the first case,
// false on timeout. An expired deadline checks once; never() waits without
// limit. Interruptions (EINTR) resume the wait with the same deadline. Throws
// mp::OSError(EBADF) if `fd` is not open (POLLNVAL).
bool poll_readable(int fd, const Deadline& deadline);

// A socket address of any family, in the kernel's representation.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const noexcept { return storage.ss_family; }
};

// unix_socket_address()
//
// An AF_UNIX address: a filesystem path, or (when `path` starts with '\0') a
// Linux abstract-namespace name, whose length is exactly path.size() as in
// CPython; "" is the empty abstract address, for which bind() picks a free
// name. Throws mp::OSError("AF_UNIX path too long") if it does not fit (108
// bytes with the path's terminating NUL).
SocketAddress unix_socket_address(std::string_view path);

// inet_socket_address()
//
// An AF_INET address. `host` is a dotted quad, "" (INADDR_ANY), or a name
// resolved with getaddrinfo (IPv4 only; the first result). Throws
// mp::OSError(EAI_*, gai_strerror) if the name cannot be resolved (CPython's
// socket.gaierror, whose errno is also the negative EAI_* code).
SocketAddress inet_socket_address(const std::string& host, std::uint16_t port);

// An address taken apart: AF_UNIX gives `path` ("" for an unnamed socket,
// "\0name" for an abstract one); AF_INET gives `host` (dotted quad) and `port`.
struct DecodedAddress {
  int family = 0;
  std::string path;
  std::string host;
  std::uint16_t port = 0;
};
DecodedAddress decode(const SocketAddress& address);

// listen_on()
//
// socket(), SO_REUSEADDR, bind(), listen(backlog): a listening stream socket.
// Throws mp::OSError (e.g. EADDRINUSE, EACCES); nothing is left open then.
int listen_on(const SocketAddress& address, int backlog);

// accept_on()
//
// Waits for and accepts one connection (accept4 with SOCK_CLOEXEC; EINTR and
// ECONNABORTED are retried). Stores the peer's address in `*peer`. Throws
// mp::OSError.
int accept_on(int listen_fd, SocketAddress* peer);

// connect_to()
//
// A new stream socket connected to `address`. Throws mp::OSError (ENOENT,
// ECONNREFUSED, ...); nothing is left open then. An interrupted connect waits
// for the connection to finish rather than failing.
int connect_to(const SocketAddress& address);

// The address `fd` is bound to (getsockname). Throws mp::OSError.
SocketAddress local_address(int fd);

// Removes the file at `path`; ignores every error (the file may be gone).
void unlink_path(const std::string& path) noexcept;

}  // namespace mp::platform

#endif  // MP_PLATFORM_SOCKET_HPP_
