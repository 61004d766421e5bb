// Benchmarks of mp::Connection beside the raw socketpair it runs on, in one
// binary so that the figures come from the same run (compare ratios; the dev
// VM drifts between runs, see research/performance-baselines.md).
//
//   RoundTrip/raw/N         a forked child echoes N bytes over an AF_UNIX
//                           socketpair with plain write()/read() loops (no
//                           header, the reader knows N): the floor.
//   RoundTrip/raw_framed/N  CPython's framing by hand on the same socketpair:
//                           writev(header, payload), read(4), read(N).
//   RoundTrip/mp/N          the same with mp::Pipe(): send_bytes() and
//                           recv_bytes() on both sides (4-byte header; one
//                           write: send() of header and payload copied
//                           together up to 1 KiB, else a gather write; two
//                           exact reads; a fresh std::string per message).
//                           Two reads per message are the floor for CPython's
//                           framing without reading ahead (which libmp must
//                           not: processes take turns reading one end, and
//                           mp::wait() polls the descriptor), so mp/64 can
//                           approach raw_framed/64 but not raw/64.
//   RoundTrip/mp_into/N     as mp/N, but the parent receives with
//                           recv_bytes_into() into a reused buffer.
//
// N is 64 B and 64 KiB. Each iteration is one round trip (two wake-ups).
//
//   Bulk/raw/N              one direction: a forked child writes N-byte
//                           chunks with write() as fast as the socketpair
//                           takes them, the parent reads N bytes per
//                           iteration with read() loops: the floor.
//   Bulk/mp/N               the same stream as messages: the child calls
//                           send_bytes(), the parent recv_bytes() (a fresh
//                           std::string per message).
//   Bulk/mp_into/N          as mp/N, the parent receiving with
//                           recv_bytes_into() into a reused buffer.
//
// N is 1 MiB; the figure to compare is bytes_per_second.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
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

void reap(pid_t pid) {
  int status;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

void BM_RoundTrip_Raw(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
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

void run_mp_child(mp::Connection& end) {
  try {
    for (;;) end.send_bytes(end.recv_bytes());
  } catch (const mp::Error&) {
  }
  ::_exit(0);
}

void BM_RoundTrip_Mp(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto [parent_end, child_end] = mp::Pipe();
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

void run_mp_sender(mp::Connection& end, std::size_t n) {
  const std::string out(n, 'x');
  try {
    for (;;) end.send_bytes(out);
  } catch (const mp::Error&) {
  }
  ::_exit(0);
}

void BM_Bulk_Mp(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  auto [parent_end, child_end] = mp::Pipe();
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

BENCHMARK(BM_RoundTrip_Raw)->Name("RoundTrip/raw")->Arg(64)->Arg(65536)->UseRealTime();
BENCHMARK(BM_RoundTrip_RawFramed)->Name("RoundTrip/raw_framed")->Arg(64)->Arg(65536)->UseRealTime();
BENCHMARK(BM_RoundTrip_Mp)->Name("RoundTrip/mp")->Arg(64)->Arg(65536)->UseRealTime();
BENCHMARK(BM_RoundTrip_MpInto)->Name("RoundTrip/mp_into")->Arg(64)->Arg(65536)->UseRealTime();
BENCHMARK(BM_Bulk_Raw)->Name("Bulk/raw")->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_Bulk_Mp)->Name("Bulk/mp")->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_Bulk_MpInto)->Name("Bulk/mp_into")->Arg(1 << 20)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
