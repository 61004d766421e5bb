// libmp against the wire fixtures (fixtures/wire/**/*.hex, format in fixtures/wire/README.md):
// the same files that wire_fixture_check.py checks against every CPython on the machine.
//
//   kind: frames        mp::Connection::send_bytes of each `send:` payload writes exactly
//                       `wire:`; recv_bytes (with `maxlength:`) on `wire:` + EOF gives each
//                       `expect:` in turn; an `object:` payload is what pickle_dumps writes for
//                       the value that pickle_loads decodes from it, whose repr() is `object:`.
//   kind: large-header  send_bytes of a `length:`-byte payload (untouched zero pages, the peer
//                       closing after the header) writes `wire:` first; `wire:` + 3 bytes + EOF
//                       gives OSError("bad message length") with maxlength length - 1, and
//                       OSError("got end of file during message") otherwise, without allocating
//                       the announced size.
//   kind: handshake     libmp plays every side of the transcript that is modern (its only
//                       handshake: deliver_challenge with the fixture's nonce, see RAND_bytes
//                       below), and the answering half of a legacy side that answers a legacy
//                       20-byte challenge (where a modern answer is the same bytes).
//
// One test per fixture file: reference.Wire/Fixture.Check/<dir>_<name>.

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mp/codec.hpp"
#include "mp/connection.hpp"
#include "mp/errors.hpp"
#include "mp/value.hpp"

#ifndef MP_WIRE_FIXTURES_DIR
#error "MP_WIRE_FIXTURES_DIR must name the fixtures/wire directory"
#endif

// ---- a deterministic nonce for deliver_challenge -------------------------------------------
//
// libmp draws its nonce with OpenSSL's RAND_bytes (src/platform/crypto.cpp). This definition
// takes precedence over libcrypto's for the whole test program (the target is linked with
// ENABLE_EXPORTS, so a shared libmp binds to it too). While a nonce is armed, the next call
// returns it; otherwise the bytes come from getrandom(2).
namespace {
std::string g_nonce;
bool g_nonce_armed = false;
int g_nonce_calls = 0;
std::string g_nonce_error;
}  // namespace

extern "C" int RAND_bytes(unsigned char* buf, int num) {
  if (num < 0) return 0;
  if (g_nonce_armed) {
    g_nonce_armed = false;
    ++g_nonce_calls;
    if (static_cast<std::size_t>(num) != g_nonce.size()) {
      g_nonce_error = "RAND_bytes(" + std::to_string(num) + ") but the fixture nonce has " +
                      std::to_string(g_nonce.size()) + " bytes";
      return 0;
    }
    std::memcpy(buf, g_nonce.data(), g_nonce.size());
    return 1;
  }
  std::size_t done = 0;
  while (done < static_cast<std::size_t>(num)) {
    const ssize_t n = ::getrandom(buf + done, static_cast<std::size_t>(num) - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return 0;
    }
    done += static_cast<std::size_t>(n);
  }
  return 1;
}

namespace {

namespace fs = std::filesystem;

// ---- fixture files -----------------------------------------------------------------------

std::string unhex(const std::string& text) {
  std::string digits;
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) digits += c;
  }
  if (digits == "empty") return "";
  if (digits.size() % 2 != 0) throw std::runtime_error("odd hex: " + text);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); i += 2) {
    out += static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string hex(std::string_view b) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

struct Fixture {
  std::string name;  // "frames/hello.hex"
  std::vector<std::pair<std::string, std::string>> ordered;

  std::vector<std::string> all(const std::string& key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : ordered) {
      if (k == key) out.push_back(v);
    }
    return out;
  }
  std::optional<std::string> get(const std::string& key) const {
    for (const auto& [k, v] : ordered) {
      if (k == key) return v;
    }
    return std::nullopt;
  }
  std::string one(const std::string& key) const {
    auto v = get(key);
    if (!v) throw std::runtime_error(name + ": missing field " + key);
    return *v;
  }
};

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

Fixture load(const fs::path& path, const std::string& name) {
  Fixture f;
  f.name = name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::string line;
  while (std::getline(in, line)) {
    std::string s = trim(line);
    if (s.empty() || s[0] == '#') continue;
    if (auto c = s.find(" #"); c != std::string::npos) s = trim(s.substr(0, c));
    const auto colon = s.find(':');
    if (colon == std::string::npos) throw std::runtime_error(name + ": expected 'key: value'");
    f.ordered.emplace_back(trim(s.substr(0, colon)), trim(s.substr(colon + 1)));
  }
  return f;
}

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  const fs::path root(MP_WIRE_FIXTURES_DIR);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".hex") {
      names.push_back(fs::relative(it->path(), root).generic_string());
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

// ---- sockets -------------------------------------------------------------------------------

// A libmp Connection and the raw descriptor of its peer (an AF_UNIX socketpair). Every
// socket wait is bounded: a libmp bug must fail the test, not hang it.
std::pair<mp::Connection, int> make_pair_() {
  auto [a, b] = mp::Pipe(true, mp::PipeKind::kStream);  // the wire is a byte stream
  const int raw = b.detach();
  timeval tv{10, 0};
  for (int fd : {a.fileno(), raw}) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  return {std::move(a), raw};
}

struct Pair {
  explicit Pair(std::pair<mp::Connection, int> p = make_pair_())
      : conn(std::move(p.first)), raw(p.second) {}
  ~Pair() { close_raw(); }
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  void close_raw() {
    if (raw >= 0) ::close(raw);
    raw = -1;
  }
  mp::Connection conn;
  int raw;
};

void write_raw(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ASSERT_GT(n, 0) << "write: " << std::strerror(errno);
    done += static_cast<std::size_t>(n);
  }
}

std::string read_raw(int fd, std::optional<std::size_t> limit = std::nullopt) {
  std::string out;
  char buf[65536];
  while (!limit || out.size() < *limit) {
    const std::size_t want = limit ? std::min(sizeof buf, *limit - out.size()) : sizeof buf;
    const ssize_t n = ::read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string describe(const std::exception& e) {
  if (dynamic_cast<const mp::EOFError*>(&e)) return "EOFError";
  if (const auto* err = dynamic_cast<const mp::Error*>(&e)) {
    const std::string what = err->what();
    return std::string(err->kind()) + (what.empty() ? "" : ": " + what);
  }
  return std::string("std::exception: ") + e.what();
}

long max_rss_kib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// ---- kind: frames ----------------------------------------------------------------------------

void check_frames(const Fixture& f) {
  std::string wire;
  for (const auto& w : f.all("wire")) wire += unhex(w);
  const std::vector<std::string> sends = f.all("send");
  std::optional<std::int64_t> maxlength;
  if (auto m = f.get("maxlength")) maxlength = std::stoll(*m);

  if (!sends.empty()) {
    Pair p;
    for (const auto& s : sends) p.conn.send_bytes(unhex(s));
    p.conn.close();
    EXPECT_EQ(hex(read_raw(p.raw)), hex(wire)) << "what send_bytes wrote";
  }
  if (auto object = f.get("object")) {
    ASSERT_EQ(sends.size(), 1u);
    const std::string payload = unhex(sends[0]);
    const auto bytes = std::as_bytes(std::span(payload.data(), payload.size()));
    const mp::Value v = mp::pickle_loads(bytes);
    EXPECT_EQ(v.repr(), *object);
    const std::vector<std::byte> again = mp::pickle_dumps(v);
    EXPECT_EQ(hex(std::string_view(reinterpret_cast<const char*>(again.data()), again.size())),
              hex(payload))
        << "pickle_dumps of " << v.repr();
  }

  // The receiver.
  Pair p;
  write_raw(p.raw, wire);
  p.close_raw();
  std::vector<std::string> got, want;
  // `libmp-expect:` lines, when present, replace `expect:` for libmp (where libmp's strict
  // behaviour differs from CPython's, e.g. a negative length).
  const auto expects = f.all("libmp-expect").empty() ? f.all("expect") : f.all("libmp-expect");
  for (const auto& e : expects) {
    want.push_back(e.rfind("message", 0) == 0 ? "message " + hex(unhex(e.substr(7))) : e);
  }
  for (std::size_t i = 0; i < want.size(); ++i) {
    try {
      got.push_back("message " + hex(p.conn.recv_bytes(maxlength)));
    } catch (const std::exception& e) {
      got.push_back(describe(e));
      break;
    }
  }
  EXPECT_EQ(got, want) << "what recv_bytes returned";
}

// ---- kind: large-header ----------------------------------------------------------------------

void check_large_header(const Fixture& f) {
  const std::uint64_t n = std::stoull(f.one("length"));
  const std::string header = unhex(f.one("wire"));

  // Sender: n bytes of untouched, never-committed zero pages; the peer reads the header and
  // closes, so the write stops at once (EPIPE / ECONNRESET).
  void* mem = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    ADD_FAILURE() << "mmap of " << n << " bytes failed: " << std::strerror(errno)
                  << " (the send check needs that much address space, not memory)";
  } else {
    Pair p;
    std::string send_error;
    std::thread sender([&] {
      try {
        p.conn.send_bytes(std::span(static_cast<const std::byte*>(mem), n));
        send_error = "send_bytes returned";
      } catch (const std::exception& e) {
        send_error = describe(e);
      }
    });
    const std::string got = read_raw(p.raw, header.size());
    p.close_raw();
    sender.join();
    ::munmap(mem, n);
    EXPECT_EQ(hex(got), hex(header)) << "the header send_bytes wrote for " << n << " bytes";
    EXPECT_EQ(send_error.rfind("OSError", 0), 0u) << send_error;
  }

  // Receiver: header, 3 bytes, end of file.
  const long rss_before = max_rss_kib();
  auto receive = [&](auto&& call) -> std::string {
    Pair p;
    write_raw(p.raw, header + "xyz");
    p.close_raw();
    try {
      call(p.conn);
      return "returned";
    } catch (const std::exception& e) {
      return describe(e);
    }
  };
  EXPECT_EQ(receive([&](mp::Connection& c) { c.recv_bytes(static_cast<std::int64_t>(n - 1)); }),
            "OSError: bad message length");
  EXPECT_EQ(receive([&](mp::Connection& c) { c.recv_bytes(); }),
            "OSError: got end of file during message");
  if (n <= static_cast<std::uint64_t>(INT64_MAX)) {
    EXPECT_EQ(receive([&](mp::Connection& c) { c.recv_bytes(static_cast<std::int64_t>(n)); }),
              "OSError: got end of file during message");
  }
  EXPECT_EQ(receive([&](mp::Connection& c) {
              char small[16];
              c.recv_bytes_into(std::span<char>(small, sizeof small));
            }),
            "OSError: got end of file during message");
  // The announced size was not allocated (and zero-filled) up front: libmp grows the buffer
  // from 64 MiB as bytes arrive. 1 GiB leaves room for that and for the test itself.
  const long grown_kib = max_rss_kib() - rss_before;
  EXPECT_LT(grown_kib, 1L << 20) << "peak RSS grew by " << grown_kib << " KiB";
}

// ---- kind: handshake -------------------------------------------------------------------------

std::string joined(const std::vector<std::string>& frames, std::size_t from = 0,
                   std::size_t count = SIZE_MAX) {
  std::string out;
  for (std::size_t i = from; i < frames.size() && i - from < count; ++i) out += frames[i];
  return out;
}

// Runs `body` on a Connection whose peer has already written `theirs` (then shut down its
// writing side); returns (what the Connection wrote, "ok" or the exception).
template <class Body>
std::pair<std::string, std::string> play(const std::string& theirs, Body&& body) {
  Pair p;
  write_raw(p.raw, theirs);
  ::shutdown(p.raw, SHUT_WR);
  std::string outcome = "ok";
  try {
    body(p.conn);
  } catch (const std::exception& e) {
    outcome = describe(e);
  }
  p.conn.close();
  return {read_raw(p.raw), outcome};
}

void check_handshake(const Fixture& f) {
  std::vector<std::string> s2c, c2s;
  for (const auto& v : f.all("s>c")) s2c.push_back(unhex(v));
  for (const auto& v : f.all("c>s")) c2s.push_back(unhex(v));
  int checked = 0;

  for (const std::string side : {"server", "client"}) {
    const std::string key = unhex(f.one(side + "-key"));
    const bool server = side == "server";
    const auto& mine = server ? s2c : c2s;
    const auto& theirs = server ? c2s : s2c;
    if (f.one(side) == "modern") {
      // libmp plays the whole side, with the fixture's nonce.
      SCOPED_TRACE("libmp as the " + side);
      g_nonce = unhex(f.one(side + "-nonce"));
      g_nonce_armed = true;
      g_nonce_calls = 0;
      g_nonce_error.clear();
      auto [wrote, outcome] = play(joined(theirs), [&](mp::Connection& c) {
        if (server) {
          mp::deliver_challenge(c, key);
          mp::answer_challenge(c, key);
        } else {
          mp::answer_challenge(c, key);
          mp::deliver_challenge(c, key);
        }
      });
      const bool delivered = server || outcome == "ok";
      g_nonce_armed = false;
      EXPECT_EQ(g_nonce_error, "");
      if (delivered) {
        EXPECT_EQ(g_nonce_calls, 1) << "RAND_bytes was not called: the interposition of "
                                       "RAND_bytes did not take effect in this build";
      }
      EXPECT_EQ(hex(wrote), hex(joined(mine))) << "the frames libmp wrote";
      EXPECT_EQ(outcome, f.one(side + "-result"));
      ++checked;
      continue;
    }
    // A legacy side: libmp's answer to a legacy (20-byte) challenge is the legacy answer.
    // The client answers s>c[0] (verdict s>c[1]); the server answers c>s[1] (verdict c>s[2]).
    const std::size_t challenge = server ? 1 : 0;
    if (theirs.size() <= challenge + 1 || theirs[challenge].size() != 4 + 11 + 20) continue;
    SCOPED_TRACE("libmp answering the legacy challenge as the " + side);
    auto [wrote, outcome] = play(theirs[challenge] + theirs[challenge + 1],
                                 [&](mp::Connection& c) { mp::answer_challenge(c, key); });
    // The answer is the side's frame that follows the challenge it read.
    const std::size_t answer = server ? 2 : 0;
    ASSERT_LT(answer, mine.size());
    EXPECT_EQ(hex(wrote), hex(mine[answer])) << "libmp's answer";
    const bool welcomed = theirs[challenge + 1] == unhex("00000009 2357454c434f4d4523");
    EXPECT_EQ(outcome, welcomed ? "ok" : "AuthenticationError: digest sent was rejected");
    if (!welcomed) {
      EXPECT_EQ(outcome, f.one(side + "-result"));
    }
    ++checked;
  }
  EXPECT_GT(checked, 0) << "libmp plays no part of this transcript";
}

// ---- the tests ---------------------------------------------------------------------------------

class WireFixture : public testing::TestWithParam<std::string> {};

TEST_P(WireFixture, Check) {
  const Fixture f = load(fs::path(MP_WIRE_FIXTURES_DIR) / GetParam(), GetParam());
  const std::string kind = f.one("kind");
  if (kind == "frames") {
    check_frames(f);
  } else if (kind == "large-header") {
    check_large_header(f);
  } else if (kind == "handshake") {
    check_handshake(f);
  } else {
    FAIL() << "unknown kind " << kind;
  }
}

TEST(WireFixtures, Present) {
  EXPECT_GE(fixture_names().size(), 10u) << "fixtures missing under " << MP_WIRE_FIXTURES_DIR;
}

std::string test_name(const testing::TestParamInfo<std::string>& info) {
  std::string s = info.param.substr(0, info.param.size() - 4);  // drop ".hex"
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

INSTANTIATE_TEST_SUITE_P(Wire, WireFixture, testing::ValuesIn(fixture_names()), test_name);

}  // namespace
