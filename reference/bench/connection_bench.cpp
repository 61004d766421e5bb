// Benchmarks of mp::Connection beside the raw sockets it runs on, in one
// binary so that the figures come from the same run (compare ratios; the dev
// VM drifts between runs, see research/performance-baselines.md).
//
//   RoundTrip/raw/N         a forked child echoes N bytes over an AF_UNIX
//                           SOCK_STREAM socketpair with plain write()/read()
//                           loops (no header, the reader knows N): the floor
//                           of a default socketpair, and the peer.
//   RoundTrip/raw_framed/N  CPython's framing by hand on the same socketpair:
//                           writev(header, payload), read(4), read(N) - two
//                           reads per message are the floor for that framing
//                           on a stream without reading ahead (which libmp
//                           must not: processes take turns reading one end).
//   RoundTrip/raw_records/N the record transport by hand: a SOCK_SEQPACKET
//                           pair, one send() of header + payload, one recv().
//   RoundTrip/mp/N          mp::Pipe() (records, the default): send_bytes()
//                           and recv_bytes() on both sides, a fresh
//                           std::string per message.
//   RoundTrip/mp_stream/N   mp::Pipe(true, PipeKind::kStream): CPython's
//                           transport; compare with raw_framed.
//   RoundTrip/mp_into/N     as mp/N, but the parent receives with
//                           recv_bytes_into() into a reused buffer.
//
// N is 64 B and 64 KiB; `pinned:1` runs both processes on cpu0 (the steady
// figure: unpinned round trips are dominated by the VM's cross-CPU wake-up
// latency and swing between runs). Each iteration is one round trip.
//
//   Bulk/raw/N              one direction: a forked child writes N-byte
//                           chunks with write() as fast as a default
//                           SOCK_STREAM socketpair takes them, the parent
//                           reads N bytes per iteration with read() loops.
//   Bulk/raw_records/N      the record transport by hand: 256 KiB records
//                           over a SOCK_SEQPACKET pair with 1 MiB send
//                           buffers (what mp::Pipe() sets up).
//   Bulk/mp/N               the same stream as messages over mp::Pipe(): the
//                           child calls send_bytes(), the parent recv_bytes()
//                           (a fresh std::string per message).
//   Bulk/mp_stream/N        as mp/N over PipeKind::kStream.
//   Bulk/mp_into/N          as mp/N, the parent receiving with
//                           recv_bytes_into() into a reused buffer.
//
// N is 1 MiB; the figure to compare is bytes_per_second.
#include <benchmark/benchmark.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <string>
#include <vector>

#include "mp/connection.hpp"
#include "mp/errors.hpp"

namespace {

bool write_full(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_full(int fd, char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

pid_t fork_child() {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::abort();
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
  }
  return pid;
}

// Runs the benchmark's processes on cpu0 (both; the child inherits the mask) when `pinned`:
// a round trip is then two context switches on one CPU, without the VM's cross-CPU wake-up
// latency, which makes unpinned round-trip figures swing several-fold between runs. Restores
// the caller's mask when it goes.
class Placement {
 public:
  Placement(benchmark::State& state, bool pinned) : pinned_(pinned) {
    if (!pinned_) return;
    sched_getaffinity(0, sizeof original_, &original_);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) state.SkipWithError("sched_setaffinity failed");
    state.SetLabel("cpu0/cpu0");
  }
  ~Placement() {
    if (pinned_) sched_setaffinity(0, sizeof original_, &original_);
  }

 private:
  bool pinned_;
  cpu_set_t original_{};
};

void reap(pid_t pid) {
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

void BM_RoundTrip_Raw(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Placement placement(state, state.range(1) != 0);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  const pid_t pid = fork_child();
  if (pid == 0) {
    ::close(fds[0]);
    std::vector<char> buf(n);
    while (read_full(fds[1], buf.data(), n) && write_full(fds[1], buf.data(), n)) {
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::vector<char> out(n, 'x'), in(n);
  for (auto _ : state) {
    if (!write_full(fds[0], out.data(), n) || !read_full(fds[0], in.data(), n)) {
      state.SkipWithError("echo failed");
      break;
    }
  }
  ::close(fds[0]);  // the child sees EOF and exits
  reap(pid);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 2);
}

// CPython's framing by hand: one writev (4-byte header + payload), then one
// read for the header and one for the payload: the system calls mp makes,
// without its checks and allocations.
bool send_framed(int fd, const char* p, std::size_t n) {
  const unsigned char header[4] = {
      static_cast<unsigned char>(n >> 24), static_cast<unsigned char>(n >> 16),
      static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
  iovec iov[2] = {{const_cast<unsigned char*>(header), 4}, {const_cast<char*>(p), n}};
  const ssize_t w = ::writev(fd, iov, 2);
  if (w == static_cast<ssize_t>(n + 4)) return true;
  if (w < 4) return false;
  return write_full(fd, p + (w - 4), n - static_cast<std::size_t>(w - 4));
}

bool recv_framed(int fd, char* p, std::size_t n) {
  unsigned char header[4];
  if (!read_full(fd, reinterpret_cast<char*>(header), 4)) return false;
  const std::size_t len = (std::size_t{header[0]} << 24) | (std::size_t{header[1]} << 16) |
                          (std::size_t{header[2]} << 8) | header[3];
  return len == n && read_full(fd, p, n);
}

void BM_RoundTrip_RawFramed(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Placement placement(state, state.range(1) != 0);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  const pid_t pid = fork_child();
  if (pid == 0) {
    ::close(fds[0]);
    std::vector<char> buf(n);
    while (recv_framed(fds[1], buf.data(), n) && send_framed(fds[1], buf.data(), n)) {
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::vector<char> out(n, 'x'), in(n);
  for (auto _ : state) {
    if (!send_framed(fds[0], out.data(), n) || !recv_framed(fds[0], in.data(), n)) {
      state.SkipWithError("echo failed");
      break;
    }
  }
  ::close(fds[0]);
  reap(pid);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 2);
}

// The record transport by hand: a SOCK_SEQPACKET socketpair, each message one send() of
// header + payload and one recv(): the system calls mp's default Pipe() makes for a small
// message, without its checks and allocations.
void BM_RoundTrip_RawRecords(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Placement placement(state, state.range(1) != 0);
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    state.SkipWithError("socketpair(SOCK_SEQPACKET) failed");
    return;
  }
  const pid_t pid = fork_child();
  if (pid == 0) {
    ::close(fds[0]);
    std::vector<char> buf(n + 4);
    for (;;) {
      const ssize_t r = ::recv(fds[1], buf.data(), buf.size(), 0);
      if (r <= 0 || ::send(fds[1], buf.data(), static_cast<std::size_t>(r), MSG_NOSIGNAL) != r) break;
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::vector<char> out(n + 4, 'x'), in(n + 4);
  for (auto _ : state) {
    if (::send(fds[0], out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size()) ||
        ::recv(fds[0], in.data(), in.size(), 0) != static_cast<ssize_t>(in.size())) {
      state.SkipWithError("echo failed");
      break;
    }
  }
  ::close(fds[0]);
  reap(pid);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 2);
}

void run_mp_child(mp::Connection& end) {
  try {
    for (;;) end.send_bytes(end.recv_bytes());
  } catch (const mp::Error&) {
  }
  ::_exit(0);
}

template <mp::PipeKind kKind>
void BM_RoundTrip_Mp(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Placement placement(state, state.range(1) != 0);
  auto [parent_end, child_end] = mp::Pipe(true, kKind);
  const pid_t pid = fork_child();
  if (pid == 0) {
    parent_end.close();
    run_mp_child(child_end);
  }
  child_end.close();
  const std::string out(n, 'x');
  for (auto _ : state) {
    parent_end.send_bytes(out);
    benchmark::DoNotOptimize(parent_end.recv_bytes());
  }
  parent_end.close();
  reap(pid);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 2);
}

void BM_RoundTrip_MpInto(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const Placement placement(state, state.range(1) != 0);
  auto [parent_end, child_end] = mp::Pipe();
  const pid_t pid = fork_child();
  if (pid == 0) {
    parent_end.close();
    run_mp_child(child_end);
  }
  child_end.close();
  const std::string out(n, 'x');
  std::string in(n, '\0');
  for (auto _ : state) {
    parent_end.send_bytes(out);
    benchmark::DoNotOptimize(parent_end.recv_bytes_into(std::span<char>(in)));
  }
  parent_end.close();
  reap(pid);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0) * 2);
}

// One direction, many messages. The child writes until the parent closes its
// end (the child's next write then fails and it exits).
void BM_Bulk_Raw(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  const pid_t pid = fork_child();
  if (pid == 0) {
    ::close(fds[0]);
    ::signal(SIGPIPE, SIG_IGN);
    const std::vector<char> out(n, 'x');
    while (write_full(fds[1], out.data(), n)) {
    }
    ::_exit(0);
  }
  ::close(fds[1]);
  std::vector<char> in(n);
  for (auto _ : state) {
    if (!read_full(fds[0], in.data(), n)) {
      state.SkipWithError("read failed");
      break;
    }
  }
  ::close(fds[0]);
  reap(pid);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// The record transport by hand, one direction: 256 KiB records over a SOCK_SEQPACKET pair
// with the send buffer mp's Pipe() asks for (1 MiB), read straight into place.
void BM_Bulk_RawRecords(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  constexpr std::size_t kRecord = std::size_t{256} << 10;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    state.SkipWithError("socketpair(SOCK_SEQPACKET) failed");
    return;
  }
  const int send_buffer = 1 << 20;
  for (const int fd : fds) ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
  const pid_t pid = fork_child();
  if (pid == 0) {
    ::close(fds[0]);
    const std::vector<char> out(n, 'x');
    for (;;) {
      for (std::size_t done = 0; done < n; done += kRecord) {
        const std::size_t len = std::min(kRecord, n - done);
        if (::send(fds[1], out.data() + done, len, MSG_NOSIGNAL) != static_cast<ssize_t>(len)) {
          ::_exit(0);
        }
      }
    }
  }
  ::close(fds[1]);
  std::vector<char> in(n);
  for (auto _ : state) {
    for (std::size_t done = 0; done < n;) {
      const ssize_t r = ::recv(fds[0], in.data() + done, std::min(kRecord, n - done), 0);
      if (r <= 0) {
        state.SkipWithError("recv failed");
        break;
      }
      done += static_cast<std::size_t>(r);
    }
  }
  ::close(fds[0]);
  reap(pid);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void run_mp_sender(mp::Connection& end, std::size_t n) {
  const std::string out(n, 'x');
  try {
    for (;;) end.send_bytes(out);
  } catch (const mp::Error&) {
  }
  ::_exit(0);
}

template <mp::PipeKind kKind>
void BM_Bulk_Mp(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto [parent_end, child_end] = mp::Pipe(true, kKind);
  const pid_t pid = fork_child();
  if (pid == 0) {
    parent_end.close();
    run_mp_sender(child_end, n);
  }
  child_end.close();
  for (auto _ : state) {
    benchmark::DoNotOptimize(parent_end.recv_bytes());
  }
  parent_end.close();
  reap(pid);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_Bulk_MpInto(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto [parent_end, child_end] = mp::Pipe();
  const pid_t pid = fork_child();
  if (pid == 0) {
    parent_end.close();
    run_mp_sender(child_end, n);
  }
  child_end.close();
  std::string in(n, '\0');
  for (auto _ : state) {
    benchmark::DoNotOptimize(parent_end.recv_bytes_into(std::span<char>(in)));
  }
  parent_end.close();
  reap(pid);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// Round trips: {size, placement (0 unpinned, 1 both processes on cpu0)}.
#define MP_ROUND_TRIP_ARGS ->ArgsProduct({{64, 65536}, {0, 1}})->ArgNames({"", "pinned"})->UseRealTime()
BENCHMARK(BM_RoundTrip_Raw)->Name("RoundTrip/raw") MP_ROUND_TRIP_ARGS;
BENCHMARK(BM_RoundTrip_RawFramed)->Name("RoundTrip/raw_framed") MP_ROUND_TRIP_ARGS;
BENCHMARK(BM_RoundTrip_RawRecords)->Name("RoundTrip/raw_records") MP_ROUND_TRIP_ARGS;
BENCHMARK(BM_RoundTrip_Mp<mp::PipeKind::kMessages>)->Name("RoundTrip/mp") MP_ROUND_TRIP_ARGS;
BENCHMARK(BM_RoundTrip_Mp<mp::PipeKind::kStream>)->Name("RoundTrip/mp_stream") MP_ROUND_TRIP_ARGS;
BENCHMARK(BM_RoundTrip_MpInto)->Name("RoundTrip/mp_into") MP_ROUND_TRIP_ARGS;
BENCHMARK(BM_Bulk_Raw)->Name("Bulk/raw")->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_Bulk_RawRecords)->Name("Bulk/raw_records")->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_Bulk_Mp<mp::PipeKind::kMessages>)->Name("Bulk/mp")->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_Bulk_Mp<mp::PipeKind::kStream>)->Name("Bulk/mp_stream")->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_Bulk_MpInto)->Name("Bulk/mp_into")->Arg(1 << 20)->UseRealTime();
#undef MP_ROUND_TRIP_ARGS

}  // namespace

BENCHMARK_MAIN();
