#include "mp/platform/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "mp/errors.hpp"

namespace mp::platform {

namespace {

[[noreturn]] void throw_errno(int err) { throw OSError(err, std::strerror(err)); }

// Waits (without limit) until `fd` reports one of `events`; used after EAGAIN
// on a descriptor that someone made non-blocking.
void wait_for(int fd, short events) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, -1);
    if (rc >= 0) return;
    if (errno != EINTR) throw_errno(errno);
  }
}

// Writes a gather list once. Returns the bytes written or -1 with errno set.
// A single buffer goes out with send()/write(): the kernel's path for one
// contiguous buffer is measurably shorter than sendmsg()/writev() (no msghdr
// or iovec array to copy in), which matters for small messages.
ssize_t write_once(int fd, bool socket, iovec* iov, int iovcnt) {
  if (iovcnt == 1) {
    return socket ? ::send(fd, iov->iov_base, iov->iov_len, MSG_NOSIGNAL)
                  : ::write(fd, iov->iov_base, iov->iov_len);
  }
  if (socket) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
    return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  }
  return ::writev(fd, iov, iovcnt);
}

// Blocks SIGPIPE in the calling thread for its lifetime. If a write of ours
// raised SIGPIPE (EPIPE), consume() takes the pending signal before the mask is
// restored, so it is never delivered. SIGPIPE for a failed write is sent to
// the writing thread, and while it was not blocked before, none could have
// been pending for this thread: the one consumed is ours.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old);
    was_blocked_ = sigismember(&old, SIGPIPE) == 1;
  }
  ~SigpipeBlock() {
    if (!was_blocked_) pthread_sigmask(SIG_UNBLOCK, &pipe_set_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

  void consume() noexcept {
    if (was_blocked_) return;  // the caller's own business
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_set_, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }

 private:
  sigset_t pipe_set_;
  bool was_blocked_ = false;
};

void write_loop(int fd, bool socket, iovec* iov, int iovcnt, SigpipeBlock* sigpipe) {
  while (iovcnt > 0) {
    // Skip exhausted (or empty) parts.
    if (iov->iov_len == 0) {
      ++iov;
      --iovcnt;
      continue;
    }
    const ssize_t n = write_once(fd, socket, iov, iovcnt);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) {
        wait_for(fd, POLLOUT);
        continue;
      }
      if (err == EPIPE && sigpipe != nullptr) sigpipe->consume();
      throw_errno(err);
    }
    auto left = static_cast<std::size_t>(n);
    while (iovcnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --iovcnt;
    }
    if (iovcnt > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
}

}  // namespace

FdPair socket_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw_errno(errno);
  return {fds[0], fds[1]};
}

FdPair pipe_pair() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno);
  return {fds[0], fds[1]};
}

void close_stream(int fd) noexcept {
  if (fd >= 0) ::close(fd);  // on Linux the descriptor is released even on EINTR
}

FdPair packet_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0) {
    // Room for several large records in flight (best effort: the kernel caps it at
    // net.core.wmem_max, and senders fall back to smaller records if they must).
    const int send_buffer = kPacketSendBuffer;
    for (const int fd : fds) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
    }
    return {fds[0], fds[1]};
  }
  const int err = errno;
  if (err == EPROTONOSUPPORT || err == ESOCKTNOSUPPORT || err == EINVAL || err == EOPNOTSUPP) {
    return socket_pair();
  }
  throw_errno(err);
}

SocketKind socket_kind(int fd) noexcept {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return SocketKind::kNotSocket;
  return (type == SOCK_SEQPACKET || type == SOCK_DGRAM) ? SocketKind::kRecords
                                                        : SocketKind::kStream;
}

std::size_t recv_record(int fd, void* data, std::size_t size, bool* truncated) {
  iovec iov{data, size};
  for (;;) {
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    const ssize_t n = ::recvmsg(fd, &msg, 0);
    if (n >= 0) {
      *truncated = (msg.msg_flags & MSG_TRUNC) != 0;
      return static_cast<std::size_t>(n);
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      wait_for(fd, POLLIN);
      continue;
    }
    throw_errno(err);
  }
}

bool send_record(int fd, ConstBuffer first, ConstBuffer second) {
  iovec iov[2];
  int iovcnt = 0;
  for (const ConstBuffer& b : {first, second}) {
    if (b.size > 0) iov[iovcnt++] = {const_cast<void*>(b.data), b.size};
  }
  for (;;) {
    // One contiguous part goes out with send(): the shorter kernel path (see write_once()).
    const ssize_t n = iovcnt == 1 ? ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
                                  : [&] {
                                      msghdr msg{};
                                      msg.msg_iov = iov;
                                      msg.msg_iovlen = static_cast<std::size_t>(iovcnt);
                                      return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
                                    }();
    if (n >= 0) return true;  // a record is sent whole
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      wait_for(fd, POLLOUT);
      continue;
    }
    if (err == EMSGSIZE) return false;
    throw_errno(err);
  }
}

void write_all(int fd, bool socket, ConstBuffer first, ConstBuffer second) {
  iovec iov[2];
  int iovcnt = 0;
  // Empty parts are left out, so that a single buffer takes write_once()'s
  // one-buffer path. (An empty message still makes its 4-byte header.)
  for (const ConstBuffer& b : {first, second}) {
    if (b.size > 0) iov[iovcnt++] = {const_cast<void*>(b.data), b.size};
  }
  // A single sendmsg/writev moves at most SSIZE_MAX bytes; the loop continues
  // where a short write stopped.
  if (socket) {
    write_loop(fd, true, iov, iovcnt, nullptr);
  } else {
    SigpipeBlock block;
    write_loop(fd, false, iov, iovcnt, &block);
  }
}

std::size_t read_some(int fd, void* data, std::size_t size) {
  for (;;) {
    const ssize_t n = ::read(fd, data, size);
    if (n >= 0) return static_cast<std::size_t>(n);
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      wait_for(fd, POLLIN);
      continue;
    }
    throw_errno(err);
  }
}

bool poll_readable(int fd, const Deadline& deadline) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    timespec ts{};
    const timespec* timeout = nullptr;
    if (!deadline.is_never()) {
      std::int64_t left = deadline.monotonic_ns() - monotonic_now_ns();
      if (left < 0) left = 0;
      ts.tv_sec = static_cast<time_t>(left / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(left % 1'000'000'000);
      timeout = &ts;
    }
    const int rc = ::ppoll(&p, 1, timeout, nullptr);
    if (rc < 0) {
      if (errno == EINTR) continue;
      throw_errno(errno);
    }
    if (rc > 0) {
      if (p.revents & POLLNVAL) throw_errno(EBADF);
      return true;
    }
    // ppoll may round the timeout; only the deadline decides.
    if (deadline.has_passed()) return false;
  }
}

SocketAddress unix_socket_address(std::string_view path) {
  SocketAddress a;
  auto* un = reinterpret_cast<sockaddr_un*>(&a.storage);
  // As in CPython: a name starting with NUL is abstract, and so is "" (which
  // makes bind() choose a free abstract name).
  const bool abstract = path.empty() || path[0] == '\0';
  // A path needs its terminating NUL; an abstract name may fill sun_path.
  if (abstract ? path.size() > sizeof un->sun_path : path.size() >= sizeof un->sun_path) {
    throw OSError("AF_UNIX path too long");
  }
  un->sun_family = AF_UNIX;
  std::memcpy(un->sun_path, path.data(), path.size());
  a.length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  return a;
}

SocketAddress inet_socket_address(const std::string& host, std::uint16_t port) {
  SocketAddress a;
  auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  a.length = sizeof(sockaddr_in);
  if (host.empty()) {
    in->sin_addr.s_addr = htonl(INADDR_ANY);
    return a;
  }
  if (::inet_pton(AF_INET, host.c_str(), &in->sin_addr) == 1) return a;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0) {
    if (rc == EAI_SYSTEM) throw_errno(errno);
    throw OSError(rc, ::gai_strerror(rc));
  }
  in->sin_addr = reinterpret_cast<sockaddr_in*>(result->ai_addr)->sin_addr;
  ::freeaddrinfo(result);
  return a;
}

DecodedAddress decode(const SocketAddress& address) {
  DecodedAddress d;
  d.family = address.family();
  if (d.family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(&address.storage);
    const std::size_t offset = offsetof(sockaddr_un, sun_path);
    std::size_t n = address.length > offset ? address.length - offset : 0;
    if (n > sizeof un->sun_path) n = sizeof un->sun_path;
    if (n > 0 && un->sun_path[0] != '\0') n = strnlen(un->sun_path, n);  // a path: up to its NUL
    d.path.assign(un->sun_path, n);
  } else if (d.family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&address.storage);
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    d.host = text;
    d.port = ntohs(in->sin_port);
  }
  return d;
}

int listen_on(const SocketAddress& address, int backlog) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno);
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0 ||
      ::listen(fd, backlog) != 0) {
    const int err = errno;
    ::close(fd);
    throw_errno(err);
  }
  return fd;
}

int accept_on(int listen_fd, SocketAddress* peer) {
  for (;;) {
    peer->length = sizeof peer->storage;
    const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer->storage), &peer->length,
                             SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    const int err = errno;
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      wait_for(listen_fd, POLLIN);
      continue;
    }
    throw_errno(err);
  }
}

int connect_to(const SocketAddress& address) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == 0) {
    return fd;
  }
  int err = errno;
  if (err == EINTR || err == EINPROGRESS) {
    // The connection continues in the background: wait for it to finish.
    try {
      wait_for(fd, POLLOUT);
    } catch (...) {
      ::close(fd);
      throw;
    }
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == 0) return fd;
  }
  ::close(fd);
  throw_errno(err);
}

SocketAddress local_address(int fd) {
  SocketAddress a;
  a.length = sizeof a.storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a.storage), &a.length) != 0) {
    throw_errno(errno);
  }
  return a;
}

void unlink_path(const std::string& path) noexcept { ::unlink(path.c_str()); }

}  // namespace mp::platform
