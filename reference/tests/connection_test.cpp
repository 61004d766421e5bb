// Unit tests of mp::Connection, mp::Pipe, mp::Listener, mp::Client and the
// authentication handshake, including interoperation with real CPython
// processes (3.11 on PATH, 3.12 and 3.13 from pyenv when present).
#include "mp/connection.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/crypto.hpp"
#include "test_util.hpp"

namespace {

using mp::Address;
using mp::Connection;
using mp_test::Child;
using mp_test::Clock;
using mp_test::kLiveness;
using mp_test::seconds_since;
using std::chrono::milliseconds;
using namespace std::string_literals;

// ---- helpers ------------------------------------------------------------------

// Reads exactly n raw bytes from fd (test side of the wire), bounded.
std::string read_raw(int fd, std::size_t n) {
  std::string out;
  const auto deadline = Clock::now() + kLiveness;
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[65536];
    const ssize_t r = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
    if (r <= 0) break;
    out.append(buf, static_cast<std::size_t>(r));
  }
  return out;
}

void write_raw(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    ASSERT_GT(w, 0) << std::strerror(errno);
    done += static_cast<std::size_t>(w);
  }
}

std::string frame(const std::string& payload) {
  const auto n = static_cast<std::uint32_t>(payload.size());
  std::string h = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                   static_cast<char>(n >> 8), static_cast<char>(n)};
  return h + payload;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    out += digits[static_cast<unsigned char>(c) >> 4];
    out += digits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

std::string pattern(std::size_t n, unsigned seed = 7) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) % 251);
  return s;
}

template <class E, class F>
E expect_throw(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw another exception: " << e.what();
    throw;
  }
  ADD_FAILURE() << "did not throw";
  throw std::runtime_error("did not throw");
}

#define EXPECT_THROW_MSG(stmt, E, msg)                          \
  do {                                                          \
    try {                                                       \
      stmt;                                                     \
      ADD_FAILURE() << "did not throw: " #stmt;                 \
    } catch (const E& thrown_) {                                \
      EXPECT_EQ(std::string(thrown_.what()), std::string(msg)); \
    }                                                           \
  } while (0)

// A private temporary directory, removed (with its contents) at the end.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/mp-conn-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    if (d == nullptr) std::abort();
    path_ = d;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool file_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Waits (bounded) until the listener has a client to accept, then accepts.
Connection accept_bounded(mp::Listener& listener) {
  pollfd p{listener.fileno(), POLLIN, 0};
  const int rc = ::poll(&p, 1, static_cast<int>(kLiveness.count()));
  if (rc != 1) throw std::runtime_error("no client within the liveness bound");
  return listener.accept();
}

// A thread that is always joined.
class Thread {
 public:
  template <class F>
  explicit Thread(F&& f) : t_(std::forward<F>(f)) {}
  ~Thread() {
    if (t_.joinable()) t_.join();
  }
  void join() { t_.join(); }

 private:
  std::thread t_;
};

// ---- framing ------------------------------------------------------------------

TEST(Connection, SendBytesWritesCPythonFraming) {
  auto [a, b] = mp::Pipe(true, mp::PipeKind::kStream);
  a.send_bytes("hello");
  EXPECT_EQ(to_hex(read_raw(b.fileno(), 9)), "0000000568656c6c6f");
  a.send_bytes("");
  EXPECT_EQ(to_hex(read_raw(b.fileno(), 4)), "00000000");
}

TEST(Connection, RoundTripsAndNeverMerges) {
  auto [a, b] = mp::Pipe();
  const std::vector<std::string> messages = {"one", "", "two\0two"s, "", pattern(1000)};
  for (const auto& m : messages) a.send_bytes(m);
  for (const auto& m : messages) {
    ASSERT_TRUE(b.poll(0.0));
    EXPECT_EQ(b.recv_bytes(), m);
  }
  EXPECT_FALSE(b.poll(0.0));
  // And the other way.
  b.send_bytes(std::string("back"));
  EXPECT_EQ(a.recv_bytes(), "back");
}

TEST(Connection, EmptyMessageIsPolledAndReceived) {
  auto [a, b] = mp::Pipe();
  a.send_bytes("");
  EXPECT_TRUE(b.poll(0.0));
  EXPECT_EQ(b.recv_bytes(), "");
  EXPECT_FALSE(b.poll(0.0));
}

TEST(Connection, LargeMessagesBothDirections) {
  auto [a, b] = mp::Pipe();
  const std::string big = pattern(3 << 20, 1);  // larger than any socket buffer
  const std::string other = pattern(65536, 2);
  Thread writer([&] {
    a.send_bytes(big);
    a.send_bytes(other);
  });
  EXPECT_EQ(b.recv_bytes(), big);
  EXPECT_EQ(b.recv_bytes(), other);
  writer.join();
  Thread back([&] { b.send_bytes(big); });
  std::string into(big.size() + 10, 'x');
  EXPECT_EQ(a.recv_bytes_into(std::span<char>(into), 10), big.size());
  EXPECT_EQ(into.substr(0, 10), "xxxxxxxxxx");
  EXPECT_EQ(into.substr(10), big);
}

TEST(Connection, ByteSpanOverloads) {
  auto [a, b] = mp::Pipe();
  const std::vector<std::byte> v = {std::byte{1}, std::byte{0}, std::byte{255}};
  a.send_bytes(std::span<const std::byte>(v), 1);
  std::vector<std::byte> out(4);
  EXPECT_EQ(b.recv_bytes_into(std::span<std::byte>(out), 2), 2u);
  EXPECT_EQ(out[2], std::byte{0});
  EXPECT_EQ(out[3], std::byte{255});
}

TEST(Connection, ReceivesTwelveByteHeaderAndRefusesNegativeLengths) {
  auto [a, b] = mp::Pipe(true, mp::PipeKind::kStream);
  write_raw(a.fileno(), from_hex("ffffffff0000000000000003") + "xyz");
  EXPECT_EQ(b.recv_bytes(), "xyz");
  // A negative length other than -1 (CPython: an empty message) is refused, as strict asks
  // ([connection.wire.negative_length.refused]); the end can no longer receive.
  write_raw(a.fileno(), from_hex("fffffffe"));
  EXPECT_THROW_MSG(b.recv_bytes(), mp::OSError, "bad message length");
  EXPECT_FALSE(b.readable());
}

// A message over 2 GiB uses the 12-byte header, in both directions. The
// sender's buffer is a sparse mapping (untouched pages cost no memory).
TEST(Connection, MessagesOverTwoGiB) {
  const std::size_t n = (std::size_t{1} << 31) + 3;
  void* mem = ::mmap(nullptr, n, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* bytes = static_cast<char*>(mem);
  bytes[0] = 'A';
  bytes[n - 1] = 'Z';
  auto [a, b] = mp::Pipe();
  Thread writer([&] {
    a.send_bytes(std::string_view(bytes, n));
    a.send_bytes("next");
  });
  // The header, peeked without consuming it.
  char header[12];
  pollfd p{b.fileno(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, static_cast<int>(kLiveness.count())), 1);
  ASSERT_EQ(::recv(b.fileno(), header, sizeof header, MSG_PEEK | MSG_WAITALL), 12);
  EXPECT_EQ(to_hex(std::string(header, 12)), "ffffffff0000000080000003");
  {
    const std::string got = b.recv_bytes();
    ASSERT_EQ(got.size(), n);
    EXPECT_EQ(got[0], 'A');
    EXPECT_EQ(got[1], '\0');
    EXPECT_EQ(got[n - 1], 'Z');
  }
  EXPECT_EQ(b.recv_bytes(), "next");
  writer.join();
  ::munmap(mem, n);
}

// ---- argument errors ----------------------------------------------------------

TEST(Connection, SendBytesOffsetAndSize) {
  auto [a, b] = mp::Pipe();
  a.send_bytes("abcdef", 1, 3);
  EXPECT_EQ(b.recv_bytes(), "bcd");
  a.send_bytes("abcdef", 4);
  EXPECT_EQ(b.recv_bytes(), "ef");
  a.send_bytes("abcdef", 6);  // offset == length: an empty message
  EXPECT_EQ(b.recv_bytes(), "");
  a.send_bytes("abcdef", 2, 0);
  EXPECT_EQ(b.recv_bytes(), "");
  a.send_bytes("abcdef", 0, 6);
  EXPECT_EQ(b.recv_bytes(), "abcdef");

  EXPECT_THROW_MSG(a.send_bytes("abc", -1), mp::ValueError, "offset is negative");
  EXPECT_THROW_MSG(a.send_bytes("abc", 4), mp::ValueError, "buffer length < offset");
  EXPECT_THROW_MSG(a.send_bytes("abc", 1, -1), mp::ValueError, "size is negative");
  EXPECT_THROW_MSG(a.send_bytes("abc", 1, 3), mp::ValueError, "buffer length < offset + size");
  EXPECT_THROW_MSG(a.send_bytes("abc", 0, std::numeric_limits<std::int64_t>::max()), mp::ValueError,
                   "buffer length < offset + size");
  // Checks come in CPython's order: offset before size.
  EXPECT_THROW_MSG(a.send_bytes("abc", -1, -1), mp::ValueError, "offset is negative");
  // Nothing was sent by the failed calls.
  EXPECT_FALSE(b.poll(0.0));
  auto e = expect_throw<mp::ValueError>([&] { a.send_bytes("abc", -1); });
  EXPECT_STREQ(e.kind(), "ValueError");
}

TEST(Connection, ConstructorChecks) {
  EXPECT_THROW_MSG(Connection(-1), mp::ValueError, "invalid handle");
  auto [a, b] = mp::Pipe();
  const int fd = b.detach();
  EXPECT_TRUE(b.closed());
  EXPECT_THROW_MSG(Connection(fd, false, false), mp::ValueError,
                   "at least one of `readable` and `writable` must be True");
  Connection c(fd);  // the fd was not closed by the failed constructor
  a.send_bytes("x");
  EXPECT_EQ(c.recv_bytes(), "x");
}

TEST(Connection, MaxLength) {
  auto [a, b] = mp::Pipe();
  EXPECT_THROW_MSG(b.recv_bytes(-1), mp::ValueError, "negative maxlength");
  a.send_bytes("12345");
  EXPECT_EQ(b.recv_bytes(5), "12345");  // equal is fine
  a.send_bytes("123456");
  auto e = expect_throw<mp::OSError>([&] { b.recv_bytes(5); });
  EXPECT_STREQ(e.what(), "bad message length");
  EXPECT_STREQ(e.kind(), "OSError");
  EXPECT_EQ(e.errnum(), 0);
  // A writable end becomes write-only, and still sends.
  EXPECT_FALSE(b.readable());
  EXPECT_FALSE(b.closed());
  EXPECT_THROW_MSG(b.recv_bytes(), mp::OSError, "connection is write-only");
  EXPECT_THROW_MSG(b.poll(), mp::OSError, "connection is write-only");
  b.send_bytes("still");
  EXPECT_EQ(a.recv_bytes(), "still");

  // A read-only end is closed.
  auto [r, w] = mp::Pipe(false);
  w.send_bytes("toolong");
  EXPECT_THROW_MSG(r.recv_bytes(3), mp::OSError, "bad message length");
  EXPECT_TRUE(r.closed());
}

// ---- end of file, closed handles, broken pipes -----------------------------------

TEST(Connection, EofAfterPeerClose) {
  auto [a, b] = mp::Pipe();
  a.send_bytes("last");
  a.close();
  EXPECT_TRUE(b.poll(0.0));
  EXPECT_EQ(b.recv_bytes(), "last");
  EXPECT_TRUE(b.poll(0.0));  // peer closed: poll is true
  auto e = expect_throw<mp::EOFError>([&] { b.recv_bytes(); });
  EXPECT_STREQ(e.kind(), "EOFError");
  EXPECT_STREQ(e.what(), "");
  std::string buf(10, '\0');
  EXPECT_THROW(b.recv_bytes_into(std::span<char>(buf)), mp::EOFError);

  auto [r, w] = mp::Pipe(false);
  w.close();
  EXPECT_TRUE(r.poll(0.0));
  EXPECT_THROW(r.recv_bytes(), mp::EOFError);
}

// Where end of file is EOFError and where it is OSError: exactly as CPython
// 3.11-3.13 (checked against them): EOF at the start of the header, of the
// 8-byte length or of the payload is EOFError; inside one of them OSError.
TEST(Connection, EofInsideMessage) {
  struct Case {
    std::string raw;
    bool eof_error;
  };
  const std::vector<Case> cases = {
      {from_hex("00000005"), true},         {from_hex("0000"), false},
      {from_hex("00000005") + "ab", false}, {from_hex("ffffffff"), true},
      {from_hex("ffffffff0000"), false},
  };
  for (const auto& c : cases) {
    auto [a, b] = mp::Pipe(true, mp::PipeKind::kStream);
    write_raw(a.fileno(), c.raw);
    a.close();
    if (c.eof_error) {
      EXPECT_THROW(b.recv_bytes(), mp::EOFError) << to_hex(c.raw);
    } else {
      EXPECT_THROW_MSG(b.recv_bytes(), mp::OSError, "got end of file during message");
    }
  }
}

TEST(Connection, ClosedHandle) {
  auto [a, b] = mp::Pipe();
  a.close();
  EXPECT_TRUE(a.closed());
  a.close();  // idempotent
  EXPECT_THROW_MSG(a.send_bytes("x"), mp::OSError, "handle is closed");
  EXPECT_THROW_MSG(a.recv_bytes(), mp::OSError, "handle is closed");
  EXPECT_THROW_MSG(a.poll(), mp::OSError, "handle is closed");
  EXPECT_THROW_MSG(a.fileno(), mp::OSError, "handle is closed");
  std::string buf(4, '\0');
  EXPECT_THROW_MSG(a.recv_bytes_into(std::span<char>(buf)), mp::OSError, "handle is closed");
  // The closed check precedes argument checks.
  EXPECT_THROW_MSG(a.send_bytes("x", -1), mp::OSError, "handle is closed");
  EXPECT_THROW_MSG(a.recv_bytes(-1), mp::OSError, "handle is closed");
  auto e = expect_throw<mp::OSError>([&] { a.fileno(); });
  EXPECT_EQ(e.errnum(), 0);
  // Moved-from is closed too.
  Connection moved = std::move(b);
  EXPECT_TRUE(b.closed());  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(moved.closed());
}

TEST(Connection, BrokenPipeIsOSErrorNotSignal) {
  {
    auto [a, b] = mp::Pipe();
    b.close();
    auto e = expect_throw<mp::OSError>([&] { a.send_bytes("x"); });
    EXPECT_EQ(e.errnum(), EPIPE);
    EXPECT_STREQ(e.what(), "[Errno 32] Broken pipe");
  }
  {
    auto [r, w] = mp::Pipe(false);  // a real pipe: SIGPIPE must not kill us
    r.close();
    auto e = expect_throw<mp::OSError>([&] { w.send_bytes("x"); });
    EXPECT_EQ(e.errnum(), EPIPE);
    // No SIGPIPE left pending, and the mask is as before.
    sigset_t pending, mask;
    sigpending(&pending);
    EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
    pthread_sigmask(SIG_SETMASK, nullptr, &mask);
    EXPECT_EQ(sigismember(&mask, SIGPIPE), 0);
  }
}

// ---- poll -----------------------------------------------------------------------

TEST(Connection, PollTimeouts) {
  auto [a, b] = mp::Pipe();
  auto start = Clock::now();
  EXPECT_FALSE(b.poll());
  EXPECT_FALSE(b.poll(-1.0));
  EXPECT_FALSE(b.poll(-std::numeric_limits<double>::infinity()));
  start = Clock::now();
  EXPECT_FALSE(b.poll(0.05));
  EXPECT_GE(seconds_since(start), 0.05 - 0.001);
  EXPECT_THROW(b.poll(std::nan("")), mp::ValueError);

  // A message sent while poll waits wakes it; poll does not consume it.
  mp_test::Pipe go;
  Thread sender([&] {
    go.receive();
    a.send_bytes("wake");
  });
  go.send('g');
  EXPECT_TRUE(b.poll(std::nullopt));
  EXPECT_TRUE(b.poll(10.0));
  EXPECT_EQ(b.recv_bytes(), "wake");
}

TEST(Connection, PollWakesOnPeerClose) {
  auto [a, b] = mp::Pipe();
  mp_test::Pipe go;
  Thread closer([&] {
    go.receive();
    a.close();
  });
  go.send('g');
  EXPECT_TRUE(b.poll(30.0));
  EXPECT_THROW(b.recv_bytes(), mp::EOFError);
}

// ---- recv_bytes_into -------------------------------------------------------------

TEST(Connection, RecvBytesInto) {
  auto [a, b] = mp::Pipe();
  std::string buf(8, '.');
  a.send_bytes("abc");
  EXPECT_EQ(b.recv_bytes_into(std::span<char>(buf), 2), 3u);
  EXPECT_EQ(buf, "..abc...");
  a.send_bytes("");
  EXPECT_EQ(b.recv_bytes_into(std::span<char>(buf), 8), 0u);  // offset == size is allowed

  EXPECT_THROW_MSG(b.recv_bytes_into(std::span<char>(buf), -1), mp::ValueError, "negative offset");
  EXPECT_THROW_MSG(b.recv_bytes_into(std::span<char>(buf), 9), mp::ValueError, "offset too large");

  a.send_bytes("0123456789");
  auto e = expect_throw<mp::BufferTooShort>([&] { b.recv_bytes_into(std::span<char>(buf), 0); });
  EXPECT_STREQ(e.kind(), "BufferTooShort");
  EXPECT_EQ(e.message(), "0123456789");
  a.send_bytes("1234567");
  EXPECT_THROW(b.recv_bytes_into(std::span<char>(buf), 2), mp::BufferTooShort);
  // The long messages were consumed: the next one is intact.
  a.send_bytes("ok");
  EXPECT_EQ(b.recv_bytes(), "ok");
  // Exact fit.
  a.send_bytes("12345678");
  EXPECT_EQ(b.recv_bytes_into(std::span<char>(buf)), 8u);
  EXPECT_EQ(buf, "12345678");
}

// ---- the record transport (PipeKind::kMessages, the default) -------------------------

int socket_type(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  EXPECT_EQ(::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len), 0);
  return type;
}

// Sends one raw record (test side of the wire).
void send_record(int fd, const std::string& bytes) {
  ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

TEST(PipeRecords, DefaultIsSeqpacketStreamKindIsAStream) {
  auto [a, b] = mp::Pipe();
  EXPECT_EQ(socket_type(a.fileno()), SOCK_SEQPACKET);
  auto [c, d] = mp::Pipe(true, mp::PipeKind::kStream);
  EXPECT_EQ(socket_type(c.fileno()), SOCK_STREAM);
  // A small message is one record: header and payload together.
  a.send_bytes("hello");
  char buf[64];
  EXPECT_EQ(::recv(b.fileno(), buf, sizeof buf, 0), 9);
  EXPECT_EQ(to_hex(std::string(buf, 9)), "0000000568656c6c6f");
}

// Sizes around the first record's limit (8 KiB with its header) and the later records' (256 KiB),
// both receive calls, and a Connection made from a bare descriptor recognizes the transport.
TEST(PipeRecords, MessagesOfEverySizeArriveWhole) {
  auto [a, b] = mp::Pipe();
  const std::vector<std::size_t> sizes = {0,         1,     1024,  1025,          8187, 8188,
                                          8189,      65536, 270331, 270332,        270333,
                                          1u << 20, (3u << 20) + 7};
  Thread writer([&] {
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      a.send_bytes(pattern(sizes[i], static_cast<unsigned>(i)));
      a.send_bytes(pattern(sizes[i], static_cast<unsigned>(i + 100)));
    }
  });
  Connection reader(::dup(b.fileno()));
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(reader.recv_bytes(), pattern(sizes[i], static_cast<unsigned>(i))) << sizes[i];
    std::string into(sizes[i] + 3, 'x');
    EXPECT_EQ(reader.recv_bytes_into(std::span<char>(into), 3), sizes[i]);
    EXPECT_EQ(into.substr(0, 3), "xxx");
    EXPECT_EQ(into.substr(3), pattern(sizes[i], static_cast<unsigned>(i + 100))) << sizes[i];
  }
  writer.join();
  EXPECT_FALSE(b.poll(0.0));
}

TEST(PipeRecords, BufferTooShortAndMaxlengthKeepTheirMeaning) {
  auto [a, b] = mp::Pipe();
  const std::string big = pattern(100000);
  Thread writer([&] {
    a.send_bytes(big);
    a.send_bytes("next");
  });
  std::string small(10, '\0');
  auto e = expect_throw<mp::BufferTooShort>([&] { b.recv_bytes_into(std::span<char>(small)); });
  EXPECT_EQ(e.message(), big);
  EXPECT_EQ(b.recv_bytes(), "next");
  writer.join();
  Thread writer2([&] { a.send_bytes(big); });
  EXPECT_THROW_MSG(b.recv_bytes(99999), mp::OSError, "bad message length");
  EXPECT_FALSE(b.readable());
  writer2.join();
}

// Records that do not tile a message are refused like a bad header: the end stops receiving.
TEST(PipeRecords, MalformedRecordsAreRefused) {
  const std::vector<std::string> cases = {
      "ab",                                    // shorter than a header
      from_hex("00000003") + "abcde",          // bytes beyond the message's end
      from_hex("fffffffe"),                    // a negative length
      from_hex("ffffffff000000"),              // a cut 12-byte header
      from_hex("00000003") + std::string(9000, 'x'),  // longer than a first record may be
  };
  for (const auto& c : cases) {
    auto [a, b] = mp::Pipe();
    const int raw = a.detach();
    send_record(raw, c);
    SCOPED_TRACE(to_hex(c.substr(0, 8)));
    EXPECT_THROW_MSG(b.recv_bytes(), mp::OSError, "bad message length");
    EXPECT_FALSE(b.readable());
    ::close(raw);
  }
  // A later record that runs past the end of its message.
  auto [a, b] = mp::Pipe();
  const int raw = a.detach();
  send_record(raw, from_hex("00004e20") + std::string(100, 'x'));  // 20000 bytes announced
  send_record(raw, std::string(30000, 'y'));
  EXPECT_THROW_MSG(b.recv_bytes(), mp::OSError, "bad message length");
  ::close(raw);
}

TEST(PipeRecords, EndOfFileBeforeAndInsideThePayload) {
  {
    // Only the header came: no byte of the payload, EOFError as CPython says.
    auto [a, b] = mp::Pipe();
    const int raw = a.detach();
    send_record(raw, from_hex("0000000a"));
    ::close(raw);
    EXPECT_THROW(b.recv_bytes(), mp::EOFError);
  }
  {
    auto [a, b] = mp::Pipe();
    const int raw = a.detach();
    send_record(raw, from_hex("000186a0") + std::string(8188, 'x'));  // 100000 announced
    ::close(raw);
    EXPECT_THROW_MSG(b.recv_bytes(), mp::OSError, "got end of file during message");
  }
  {
    auto [a, b] = mp::Pipe();
    const int raw = a.detach();
    send_record(raw, from_hex("000186a0") + std::string(8188, 'x'));
    ::close(raw);
    std::string into(100000, '\0');
    EXPECT_THROW_MSG(b.recv_bytes_into(std::span<char>(into)), mp::OSError,
                     "got end of file during message");
  }
}

// A sender whose socket takes smaller records than 256 KiB (a shrunk send buffer) sends smaller
// ones; a receiver takes records of any size up to the limits.
TEST(PipeRecords, ShrunkSendBufferGivesSmallerRecords) {
  auto [a, b] = mp::Pipe();
  int size = 20000;  // the kernel doubles it: records of up to about 40000 bytes
  ASSERT_EQ(::setsockopt(a.fileno(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
  const std::string big = pattern(1 << 20, 3);
  Thread writer([&] { a.send_bytes(big); });
  EXPECT_EQ(b.recv_bytes(), big);
  writer.join();
}

// ---- Pipe(duplex=false), fork ---------------------------------------------------

TEST(Pipe, OneWay) {
  auto [r, w] = mp::Pipe(false);
  EXPECT_TRUE(r.readable());
  EXPECT_FALSE(r.writable());
  EXPECT_FALSE(w.readable());
  EXPECT_TRUE(w.writable());
  EXPECT_THROW_MSG(r.send_bytes("x"), mp::OSError, "connection is read-only");
  EXPECT_THROW_MSG(w.recv_bytes(), mp::OSError, "connection is write-only");
  EXPECT_THROW_MSG(w.poll(), mp::OSError, "connection is write-only");
  std::string buf(4, '\0');
  EXPECT_THROW_MSG(w.recv_bytes_into(std::span<char>(buf)), mp::OSError,
                   "connection is write-only");
  w.send_bytes("through");
  EXPECT_EQ(r.recv_bytes(), "through");

  auto [x, y] = mp::Pipe(true);
  EXPECT_TRUE(x.readable() && x.writable() && y.readable() && y.writable());
}

TEST(Pipe, CloseOnExec) {
  auto [a, b] = mp::Pipe();
  auto [r, w] = mp::Pipe(false);
  for (const int fd : {a.fileno(), b.fileno(), r.fileno(), w.fileno()}) {
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  }
}

TEST(Pipe, AcrossFork) {
  auto [parent_end, child_end] = mp::Pipe();
  Child child([&] {
    parent_end.close();
    const std::string m = child_end.recv_bytes();
    child_end.send_bytes("child:" + m);
    child_end.send_bytes(pattern(200000));
    return 0;
  });
  child_end.close();
  parent_end.send_bytes("ping");
  ASSERT_TRUE(parent_end.poll(10.0));
  EXPECT_EQ(parent_end.recv_bytes(), "child:ping");
  EXPECT_EQ(parent_end.recv_bytes(), pattern(200000));
  EXPECT_EQ(child.exit_code(), 0);
  EXPECT_TRUE(parent_end.poll(10.0));  // the child exited: EOF
  EXPECT_THROW(parent_end.recv_bytes(), mp::EOFError);
}

// ---- Address ------------------------------------------------------------------------

TEST(Address, ValuesAndRepr) {
  EXPECT_EQ(Address::inet("127.0.0.1", 8000).to_string(), "('127.0.0.1', 8000)");
  EXPECT_EQ(Address::unix_socket("/tmp/x").to_string(), "'/tmp/x'");
  EXPECT_EQ(Address::abstract_socket("abc").to_string(), "b'\\x00abc'");
  EXPECT_EQ(Address::abstract_socket("abc").path(), "\0abc"s);
  EXPECT_TRUE(Address::abstract_socket("abc").is_abstract());
  EXPECT_FALSE(Address::unix_socket("/tmp/x").is_abstract());
  EXPECT_EQ(Address::unix_socket("/a"), Address::unix_socket("/a"));
  EXPECT_NE(Address::unix_socket("/a"), Address::unix_socket("/b"));
  EXPECT_EQ(Address::inet("h", 1).family(), Address::Family::kInet);
}

// ---- Listener / Client ------------------------------------------------------------

// Exchanges a few messages both ways between a server and a client end.
void exchange(Connection& server, Connection& client) {
  client.send_bytes("from client");
  EXPECT_EQ(server.recv_bytes(), "from client");
  server.send_bytes("");
  EXPECT_EQ(client.recv_bytes(), "");
  const std::string big = pattern(300000);
  Thread t([&] { server.send_bytes(big); });
  EXPECT_EQ(client.recv_bytes(), big);
}

void listener_client_round(const Address& address, std::optional<std::string> key) {
  mp::Listener listener(address, 1, key);
  std::optional<Connection> client;
  Thread t([&] { client.emplace(mp::Client(listener.address(), key)); });
  Connection server = accept_bounded(listener);
  t.join();
  ASSERT_TRUE(client.has_value());
  exchange(server, *client);
  ASSERT_TRUE(listener.last_accepted().has_value());
}

TEST(Listener, UnixWithAndWithoutKey) {
  TempDir dir;
  const std::string path = dir.file("sock");
  for (const auto& key : {std::optional<std::string>(), std::optional("k"s), std::optional(""s)}) {
    {
      mp::Listener listener(Address::unix_socket(path), 1, key);
      EXPECT_EQ(listener.address(), Address::unix_socket(path));
      EXPECT_FALSE(listener.last_accepted().has_value());
      std::optional<Connection> client;
      Thread t([&] { client.emplace(mp::Client(Address::unix_socket(path), key)); });
      Connection server = accept_bounded(listener);
      t.join();
      exchange(server, *client);
      ASSERT_TRUE(listener.last_accepted().has_value());
      EXPECT_EQ(*listener.last_accepted(), Address::unix_socket(""));  // unnamed client
      EXPECT_TRUE(file_exists(path));
      listener.close();
      EXPECT_FALSE(file_exists(path));  // close() removes the socket file
      listener.close();                 // idempotent
      // Accepted connections outlive the listener.
      client->send_bytes("after close");
      EXPECT_EQ(server.recv_bytes(), "after close");
    }
  }
}

TEST(Listener, InetWithAndWithoutKey) {
  for (const auto& key : {std::optional<std::string>(), std::optional("k"s)}) {
    mp::Listener listener(Address::inet("127.0.0.1", 0), 1, key);
    EXPECT_EQ(listener.address().family(), Address::Family::kInet);
    EXPECT_EQ(listener.address().host(), "127.0.0.1");
    EXPECT_NE(listener.address().port(), 0);
    std::optional<Connection> client;
    Thread t([&] { client.emplace(mp::Client(listener.address(), key)); });
    Connection server = accept_bounded(listener);
    t.join();
    exchange(server, *client);
    ASSERT_TRUE(listener.last_accepted().has_value());
    EXPECT_EQ(listener.last_accepted()->host(), "127.0.0.1");
    EXPECT_NE(listener.last_accepted()->port(), listener.address().port());
  }
  // A host name is resolved; the address reports the dotted quad.
  mp::Listener named(Address::inet("localhost", 0));
  EXPECT_EQ(named.address().host(), "127.0.0.1");
}

TEST(Listener, AbstractAddress) {
  const std::string name = "mp-conn-test-" + std::to_string(::getpid());
  listener_client_round(Address::abstract_socket(name), "key"s);
  // An empty AF_UNIX address picks a free abstract name, as in Python.
  mp::Listener auto_named(Address::unix_socket(""));
  EXPECT_TRUE(auto_named.address().is_abstract());
  EXPECT_GT(auto_named.address().path().size(), 1u);
}

TEST(Listener, WrongKeyFailsOnBothSides) {
  for (const auto& address : {Address::inet("127.0.0.1", 0)}) {
    mp::Listener listener(address, 1, "right"s);
    std::optional<std::string> client_error;
    Thread t([&] {
      try {
        mp::Client(listener.address(), "wrong"s);
      } catch (const mp::AuthenticationError& e) {
        client_error = e.what();
      }
    });
    auto e = expect_throw<mp::AuthenticationError>([&] { accept_bounded(listener); });
    EXPECT_STREQ(e.what(), "digest received was wrong");
    EXPECT_STREQ(e.kind(), "AuthenticationError");
    t.join();
    EXPECT_EQ(client_error, "digest sent was rejected");

    // The listener stays usable; the right key passes.
    std::optional<Connection> client;
    Thread t2([&] { client.emplace(mp::Client(listener.address(), "right"s)); });
    Connection server = accept_bounded(listener);
    t2.join();
    exchange(server, *client);
  }
}

// The server proves its key too: a client with the right key rejects a
// server that answers its challenge wrongly (the server's half is simulated).
TEST(Listener, ClientRejectsServerWithWrongKey) {
  auto [server, client] = mp::Pipe();
  std::optional<std::string> server_error;
  Thread t([&] {
    try {
      mp::deliver_challenge(server, "shared");  // the client passes this half
      mp::answer_challenge(server, "not shared");
    } catch (const mp::AuthenticationError& e) {
      server_error = e.what();
    }
  });
  mp::answer_challenge(client, "shared");
  EXPECT_THROW_MSG(mp::deliver_challenge(client, "shared"), mp::AuthenticationError,
                   "digest received was wrong");
  t.join();
  EXPECT_EQ(server_error, "digest sent was rejected");
}

TEST(Listener, AuthenticatingClientAgainstPlainServer) {
  mp::Listener listener(Address::inet("127.0.0.1", 0));
  Thread t([&] {
    Connection s = accept_bounded(listener);
    s.send_bytes("hello");  // a data message where a challenge was expected
  });
  EXPECT_THROW_MSG(mp::Client(listener.address(), "key"s), mp::AuthenticationError,
                   "Protocol error, expected challenge: message=b'hello'");
}

TEST(Listener, ClosedAndErrors) {
  TempDir dir;
  mp::Listener listener(Address::unix_socket(dir.file("s")));
  listener.close();
  EXPECT_TRUE(listener.closed());
  EXPECT_THROW_MSG(listener.accept(), mp::OSError, "listener is closed");
  EXPECT_THROW_MSG(listener.fileno(), mp::OSError, "listener is closed");
  EXPECT_EQ(listener.address(), Address::unix_socket(dir.file("s")));

  // Nobody listens.
  auto e = expect_throw<mp::OSError>([&] { mp::Client(Address::unix_socket(dir.file("none"))); });
  EXPECT_EQ(e.errnum(), ENOENT);
  // An address in use.
  mp::Listener inet(Address::inet("127.0.0.1", 0));
  auto e2 = expect_throw<mp::OSError>([&] { mp::Listener again(inet.address()); });
  EXPECT_EQ(e2.errnum(), EADDRINUSE);
  mp::Listener first(Address::unix_socket(dir.file("t")));
  auto e3 =
      expect_throw<mp::OSError>([&] { mp::Listener again(Address::unix_socket(dir.file("t"))); });
  EXPECT_EQ(e3.errnum(), EADDRINUSE);
  // A port with no listener refuses.
  const Address gone = inet.address();
  inet.close();
  auto e4 = expect_throw<mp::OSError>([&] { mp::Client(gone); });
  EXPECT_EQ(e4.errnum(), ECONNREFUSED);
  // Path too long.
  EXPECT_THROW_MSG(mp::Listener too_long(Address::unix_socket(std::string(200, 'a'))), mp::OSError,
                   "AF_UNIX path too long");
}

TEST(Listener, MoveKeepsOwnership) {
  TempDir dir;
  const std::string path = dir.file("m");
  mp::Listener a(Address::unix_socket(path));
  mp::Listener b(std::move(a));
  EXPECT_TRUE(a.closed());  // NOLINT(bugprone-use-after-move)
  a.close();                // does not unlink b's file
  EXPECT_TRUE(file_exists(path));
  b.close();
  EXPECT_FALSE(file_exists(path));
}

// ---- the handshake, byte by byte (research §2.3.4 test vectors) -------------------

TEST(Handshake, AnswersLegacyChallengeWithRawMd5) {
  auto [fake_server, client] = mp::Pipe(true, mp::PipeKind::kStream);
  const int fd = fake_server.fileno();
  std::string nonce;
  for (int i = 0; i < 20; ++i) nonce += static_cast<char>(i);
  write_raw(fd, frame("#CHALLENGE#" + nonce));
  Thread t([&] { mp::answer_challenge(client, "secret"); });
  EXPECT_EQ(to_hex(read_raw(fd, 20)), "000000107defa9cc46abc3583325d17ccda75190");
  write_raw(fd, frame("#WELCOME#"));
}

TEST(Handshake, AnswersModernChallengeWithPrefixedSha256) {
  auto [fake_server, client] = mp::Pipe(true, mp::PipeKind::kStream);
  const int fd = fake_server.fileno();
  std::string nonce = "{sha256}";
  for (int i = 0; i < 40; ++i) nonce += static_cast<char>(i);
  const std::string challenge = frame("#CHALLENGE#" + nonce);
  EXPECT_EQ(to_hex(challenge.substr(0, 23)), "0000003b234348414c4c454e4745237b7368613235367d");
  write_raw(fd, challenge);
  Thread t([&] {
    EXPECT_THROW_MSG(mp::answer_challenge(client, "secret"), mp::AuthenticationError,
                     "digest sent was rejected");
  });
  EXPECT_EQ(to_hex(read_raw(fd, 44)),
            "000000287b7368613235367d"
            "fc57fbe650d6124b98215e7b5d197d5807ad69982d275a9735ea2d56f1fa6989");
  write_raw(fd, frame("#FAILURE#"));
}

TEST(Handshake, AnswerChallengeFailures) {
  struct Case {
    std::string message;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"hello", "Protocol error, expected challenge: message=b'hello'"},
      {"#CHALLENGE#12345", "challenge too short: 5 bytes"},
      {"#CHALLENGE#{md4}" + std::string(40, 'x'),
       "unsupported message length, missing digest prefix, or unsupported digest: "
       "message=b'{md4}" +
           std::string(40, 'x') + "'"},
      {"#CHALLENGE#" + std::string(30, '\x01'),
       "unsupported message length, missing digest prefix, or unsupported digest: "
       "message=b'" +
           [] {
             std::string s;
             for (int i = 0; i < 30; ++i) s += "\\x01";
             return s;
           }() +
           "'"},
  };
  for (const auto& c : cases) {
    auto [fake_server, client] = mp::Pipe(true, mp::PipeKind::kStream);
    write_raw(fake_server.fileno(), frame(c.message));
    EXPECT_THROW_MSG(mp::answer_challenge(client, "k"), mp::AuthenticationError, c.error);
  }
  // Messages over 256 bytes are refused before they are read.
  auto [fake_server, client] = mp::Pipe(true, mp::PipeKind::kStream);
  write_raw(fake_server.fileno(), frame("#CHALLENGE#" + std::string(300, 'x')));
  EXPECT_THROW_MSG(mp::answer_challenge(client, "k"), mp::OSError, "bad message length");
}

// deliver_challenge against hand-made responses in every accepted form.
TEST(Handshake, DeliverChallengeAcceptsLegacyAndModernResponses) {
  struct Case {
    std::string digest;  // "" = legacy raw MD5
    std::string key;
    bool ok;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"", "secret", true, ""},
      {"sha256", "secret", true, ""},
      {"md5", "secret", true, ""},
      {"sha384", "secret", true, ""},
      {"sha3_256", "secret", true, ""},
      {"sha3_384", "secret", true, ""},
      {"", "", true, ""},  // an empty key is an ordinary key
      {"", "other", false, "digest received was wrong"},
      {"sha256", "other", false, "digest received was wrong"},
  };
  for (const auto& c : cases) {
    auto [server, fake_client] = mp::Pipe(true, mp::PipeKind::kStream);
    const int fd = fake_client.fileno();
    std::optional<std::string> error;
    Thread t([&] {
      try {
        mp::deliver_challenge(server, c.ok ? c.key : "secret");
      } catch (const mp::AuthenticationError& e) {
        error = e.what();
      }
    });
    const std::string header = read_raw(fd, 4);
    ASSERT_EQ(to_hex(header), "0000003b");
    const std::string challenge = read_raw(fd, 59);
    ASSERT_EQ(challenge.substr(0, 19), "#CHALLENGE#{sha256}");
    const std::string message = challenge.substr(11);
    std::string response;
    if (c.digest.empty()) {
      response = *mp::platform::hmac("md5", c.key, message);
    } else {
      response = "{" + c.digest + "}" + *mp::platform::hmac(c.digest, c.key, message);
    }
    write_raw(fd, frame(response));
    const std::string verdict = read_raw(fd, 13);
    t.join();
    if (c.ok) {
      EXPECT_EQ(verdict, frame("#WELCOME#")) << c.digest;
      EXPECT_FALSE(error.has_value()) << *error;
    } else {
      EXPECT_EQ(verdict, frame("#FAILURE#"));
      EXPECT_EQ(error, c.error);
    }
  }
}

TEST(Handshake, DeliverChallengeRejectsMalformedResponses) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {std::string(20, 'x'), "expected 'md5' of length 16 got 20"},
      {"{sha256}" + std::string(31, 'x'), "expected 'sha256' of length 32 got 31"},
      {"{md4}" + std::string(16, 'x'),
       "unsupported message length, missing digest prefix, or unsupported digest: message=b'{md4}" +
           std::string(16, 'x') + "'"},
      {"", "unsupported message length, missing digest prefix, or unsupported digest: message=b''"},
  };
  for (const auto& [response, error_text] : cases) {
    auto [server, fake_client] = mp::Pipe(true, mp::PipeKind::kStream);
    const int fd = fake_client.fileno();
    std::optional<std::string> error;
    Thread t([&] {
      try {
        mp::deliver_challenge(server, "k");
      } catch (const mp::AuthenticationError& e) {
        error = e.what();
      }
    });
    read_raw(fd, 63);
    write_raw(fd, frame(response));
    EXPECT_EQ(read_raw(fd, 13), frame("#FAILURE#"));
    t.join();
    EXPECT_EQ(error, error_text);
  }
  // Oversized responses: OSError, nothing else is sent.
  auto [server, fake_client] = mp::Pipe(true, mp::PipeKind::kStream);
  Thread t([&] {
    EXPECT_THROW_MSG(mp::deliver_challenge(server, "k"), mp::OSError, "bad message length");
  });
  read_raw(fake_client.fileno(), 63);
  write_raw(fake_client.fileno(), frame(std::string(257, 'x')));
  t.join();
  EXPECT_FALSE(fake_client.poll(0.0));
}

TEST(Handshake, NoncesAreRandom) {
  std::string first;
  for (int i = 0; i < 2; ++i) {
    auto [server, fake_client] = mp::Pipe(true, mp::PipeKind::kStream);
    Thread t([&] { EXPECT_THROW(mp::deliver_challenge(server, "k"), mp::EOFError); });
    const std::string c = read_raw(fake_client.fileno(), 63);
    fake_client.close();
    t.join();
    if (i == 0) {
      first = c;
    } else {
      EXPECT_NE(c, first);
    }
  }
}

// ---- interoperation with CPython --------------------------------------------------

// The peer scripts. argv: family ("unix", "abstract" or "inet"), address (path,
// name, or port / "0"), key (hex, or "-" for none). The handshake's messages
// are logged by wrapping Connection.send_bytes/recv_bytes, and printed as
// "HS s31 r16 ..." (s = sent, r = received, with payload lengths), so the test
// can tell which form (legacy or modern) each side used.
const char* const kPyCommon = R"PY(
import sys
import multiprocessing.connection as mc
from multiprocessing.connection import Listener, Client, AuthenticationError
fam, addr, key = sys.argv[1], sys.argv[2], sys.argv[3]
key = None if key == '-' else bytes.fromhex(key)
if fam == 'inet':
    address = ('127.0.0.1', int(addr))
elif fam == 'abstract':
    address = '\0' + addr
else:
    address = addr
log = []
orig_send, orig_recv = mc.Connection.send_bytes, mc.Connection.recv_bytes
def logged_send(self, buf, *a, **k):
    log.append('s%d' % len(bytes(buf)))
    return orig_send(self, buf, *a, **k)
def logged_recv(self, *a, **k):
    r = orig_recv(self, *a, **k)
    log.append('r%d' % len(r))
    return r
mc.Connection.send_bytes, mc.Connection.recv_bytes = logged_send, logged_recv
def handshake_done():
    mc.Connection.send_bytes, mc.Connection.recv_bytes = orig_send, orig_recv
    print(' '.join(['HS'] + log), flush=True)
)PY";

// Server: accepts one client, echoes "py:" + reversed message until b"bye",
// then sends b"" and a 256000-byte message.
const char* const kPyServer = R"PY(
with Listener(address, authkey=key) as l:
    a = l.address
    print('READY', a[1] if fam == 'inet' else 0, flush=True)
    try:
        c = l.accept()
    except AuthenticationError as e:
        print('AUTHFAIL', e, flush=True)
        sys.exit(3)
    handshake_done()
    with c:
        while True:
            m = c.recv_bytes()
            if m == b'bye':
                break
            c.send_bytes(b'py:' + m[::-1])
        c.send_bytes(b'')
        c.send_bytes(bytes(range(256)) * 1000)
sys.exit(0)
)PY";

// Client: sends three messages, expects "cpp:" + reversed for each, sends "bye".
const char* const kPyClient = R"PY(
try:
    c = Client(address, authkey=key)
except AuthenticationError as e:
    print('AUTHFAIL', e, flush=True)
    sys.exit(3)
handshake_done()
for m in [b'hello from python', b'', bytes(range(256)) * 400]:
    c.send_bytes(m)
    if c.recv_bytes() != b'cpp:' + m[::-1]:
        sys.exit(4)
c.send_bytes(b'bye')
c.close()
sys.exit(0)
)PY";

// A Python process whose stdout we read; killed and reaped if still running.
class PythonPeer {
 public:
  // `pass_fd` >= 0: that descriptor becomes the child's descriptor 3.
  PythonPeer(const std::string& python, const std::string& script,
             const std::vector<std::string>& args, int pass_fd = -1) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
    child_.emplace([&] {
      ::dup2(fds[1], 1);
      if (pass_fd >= 0) ::dup2(pass_fd, 3);  // the copy is not close-on-exec
      std::vector<std::string> argv_s = {python, "-c", script};
      argv_s.insert(argv_s.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& s : argv_s) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::execvp(python.c_str(), argv.data());
      return 127;
    });
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~PythonPeer() { ::close(out_); }
  PythonPeer(const PythonPeer&) = delete;
  PythonPeer& operator=(const PythonPeer&) = delete;

  // The next line of output, or "" on EOF or timeout.
  std::string line() {
    std::string s;
    for (;;) {
      const std::string c = read_raw(out_, 1);
      if (c.empty() || c == "\n") return s;
      s += c;
    }
  }

  int exit_code() { return child_->exit_code(); }

 private:
  std::optional<Child> child_;
  int out_ = -1;
};

struct PythonVersion {
  std::string label;
  std::string path;  // an executable path, or a name looked up on PATH
};

using Key = std::optional<std::string>;

std::string key_arg(const Key& k) { return k ? to_hex(*k) : "-"; }

class Interop : public testing::TestWithParam<PythonVersion> {
 protected:
  void SetUp() override {
    const std::string& path = GetParam().path;
    if (path.find('/') != std::string::npos && ::access(path.c_str(), X_OK) != 0) {
      GTEST_SKIP() << path << " not present";
    }
    // The real interpreter (PATH may hold a slow pyenv shim) and its version.
    PythonPeer p(path, "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)",
                 {});
    version_ = p.line();
    python_ = p.line();
    if (p.exit_code() != 0 || version_.empty() || python_.empty()) {
      GTEST_SKIP() << path << " does not run";
    }
    RecordProperty("python", version_);
    std::printf("[ python   ] %s -> %s (%s)\n", path.c_str(), python_.c_str(), version_.c_str());
  }

  // CPython <= 3.11 speaks only the legacy handshake (20-byte nonce, raw
  // HMAC-MD5); 3.12+ the {sha256} one.
  bool legacy() const {
    const std::size_t dot = version_.find('.');
    return std::stoi(version_.substr(0, dot)) == 3 && std::stoi(version_.substr(dot + 1)) < 12;
  }

  // The handshake as a Python peer logs it (see kPyCommon), when it ran
  // against libmp, by role and by the peer's protocol generation. libmp always
  // challenges in the modern form (59 bytes); it answers a legacy challenge
  // (31 bytes) with a raw 16-byte MD5 and a modern one with 40 bytes.
  std::string expected_log(bool python_is_server) const {
    if (python_is_server) return legacy() ? "HS s31 r16 s9 r59 s16 r9" : "HS s59 r40 s9 r59 s40 r9";
    return legacy() ? "HS r59 s16 r9 s31 r16 s9" : "HS r59 s40 r9 s59 r40 s9";
  }

  // Python Listener, mp::Client.
  void run_python_server(const std::string& fam, const std::string& where, const Key& server_key,
                         const Key& client_key, bool expect_ok) {
    PythonPeer py(python_, std::string(kPyCommon) + kPyServer, {fam, where, key_arg(server_key)});
    const std::string ready = py.line();
    ASSERT_EQ(ready.substr(0, 6), "READY ") << ready;
    const Address address =
        fam == "inet"
            ? Address::inet("127.0.0.1", static_cast<std::uint16_t>(std::stoi(ready.substr(6))))
        : fam == "abstract" ? Address::abstract_socket(where)
                            : Address::unix_socket(where);
    if (!expect_ok) {
      EXPECT_THROW_MSG(mp::Client(address, client_key), mp::AuthenticationError,
                       "digest sent was rejected");
      EXPECT_EQ(py.line(), "AUTHFAIL digest received was wrong");
      EXPECT_EQ(py.exit_code(), 3);
      return;
    }
    Connection c = mp::Client(address, client_key);
    EXPECT_EQ(py.line(), server_key ? expected_log(true) : "HS");
    for (const auto& m : {"hello"s, ""s, pattern(100000)}) {
      c.send_bytes(m);
      EXPECT_EQ(c.recv_bytes(), "py:" + std::string(m.rbegin(), m.rend()));
    }
    c.send_bytes("bye");
    EXPECT_EQ(c.recv_bytes(), "");
    std::string expected;
    for (int i = 0; i < 1000; ++i) {
      for (int b = 0; b < 256; ++b) expected += static_cast<char>(b);
    }
    EXPECT_EQ(c.recv_bytes(), expected);
    EXPECT_TRUE(c.poll(10.0));
    EXPECT_THROW(c.recv_bytes(), mp::EOFError);
    EXPECT_EQ(py.exit_code(), 0);
  }

  // mp::Listener, Python Client.
  void run_python_client(const Address& listen_at, const Key& server_key, const Key& client_key,
                         bool expect_ok) {
    mp::Listener listener(listen_at, 1, server_key);
    std::string fam, where;
    if (listener.address().family() == Address::Family::kInet) {
      fam = "inet";
      where = std::to_string(listener.address().port());
    } else if (listener.address().is_abstract()) {
      fam = "abstract";
      where = listener.address().path().substr(1);
    } else {
      fam = "unix";
      where = listener.address().path();
    }
    PythonPeer py(python_, std::string(kPyCommon) + kPyClient, {fam, where, key_arg(client_key)});
    if (!expect_ok) {
      EXPECT_THROW_MSG(accept_bounded(listener), mp::AuthenticationError,
                       "digest received was wrong");
      EXPECT_EQ(py.line(), "AUTHFAIL digest sent was rejected");
      EXPECT_EQ(py.exit_code(), 3);
      return;
    }
    Connection c = accept_bounded(listener);
    EXPECT_EQ(py.line(), client_key ? expected_log(false) : "HS");
    for (;;) {
      ASSERT_TRUE(c.poll(10.0));
      const std::string m = c.recv_bytes();
      if (m == "bye") break;
      c.send_bytes("cpp:" + std::string(m.rbegin(), m.rend()));
    }
    EXPECT_EQ(py.exit_code(), 0);
  }

  std::string version_;
  std::string python_;
};

TEST_P(Interop, PythonListenerUnixWithKey) {
  TempDir dir;
  run_python_server("unix", dir.file("py.sock"), "s3cret", "s3cret", true);
}

TEST_P(Interop, PythonListenerInetWithKey) {
  run_python_server("inet", "0", "s3cret", "s3cret", true);
}

TEST_P(Interop, PythonListenerAbstractWithKey) {
  run_python_server("abstract", "mp-interop-" + std::to_string(::getpid()), "k", "k", true);
}

TEST_P(Interop, PythonListenerNoKey) {
  run_python_server("inet", "0", std::nullopt, std::nullopt, true);
}

TEST_P(Interop, PythonListenerWrongKey) { run_python_server("inet", "0", "right", "wrong", false); }

TEST_P(Interop, PythonClientUnixWithKey) {
  TempDir dir;
  run_python_client(Address::unix_socket(dir.file("cpp.sock")), "s3cret", "s3cret", true);
}

TEST_P(Interop, PythonClientInetWithKey) {
  run_python_client(Address::inet("127.0.0.1", 0), "s3cret", "s3cret", true);
}

TEST_P(Interop, PythonClientAbstractWithKey) {
  run_python_client(Address::abstract_socket("mp-interop-c-" + std::to_string(::getpid())),
                    "\x01\x02key", "\x01\x02key", true);
}

// An empty key is a key: every CPython Client authenticates with b''
// (`authkey is not None`), and so does mp::Listener.
TEST_P(Interop, PythonClientEmptyKey) {
  run_python_client(Address::inet("127.0.0.1", 0), ""s, ""s, true);
}

TEST_P(Interop, PythonClientNoKey) {
  run_python_client(Address::inet("127.0.0.1", 0), std::nullopt, std::nullopt, true);
}

TEST_P(Interop, PythonClientWrongKey) {
  run_python_client(Address::inet("127.0.0.1", 0), "right", "wrong", false);
}

// A Pipe end handed to Python over fork+exec: no handshake, framing only.
TEST_P(Interop, PythonConnectionOverInheritedSocket) {
  auto [mine, theirs] = mp::Pipe(true, mp::PipeKind::kStream);
  const std::string script = R"PY(
import sys
from multiprocessing.connection import Connection
c = Connection(int(sys.argv[1]))
m = c.recv_bytes()
c.send_bytes(m * 2)
c.send_bytes(b'')
)PY";
  PythonPeer py(python_, script, {"3"}, theirs.fileno());
  theirs.close();
  mine.send_bytes("ab\0c"s);
  ASSERT_TRUE(mine.poll(10.0));
  EXPECT_EQ(mine.recv_bytes(), "ab\0cab\0c"s);
  EXPECT_EQ(mine.recv_bytes(), "");
  EXPECT_EQ(py.exit_code(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    CPython, Interop,
    testing::Values(PythonVersion{"path_python3", "python3"},
                    PythonVersion{"py3_12", "/root/.pyenv/versions/3.12.1/bin/python3"},
                    PythonVersion{"py3_13", "/root/.pyenv/versions/3.13.0/bin/python3"}),
    [](const testing::TestParamInfo<PythonVersion>& param_info) { return param_info.param.label; });

}  // namespace
