// mp::Address, mp::Listener, mp::Client and the authentication handshake of
// multiprocessing.connection (CPython 3.12+'s form, compatible with 3.11's).
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "mp/connection.hpp"
#include "mp/errors.hpp"
#include "mp/platform/clock.hpp"
#include "mp/platform/crypto.hpp"
#include "mp/platform/socket.hpp"

namespace mp {

namespace {

constexpr std::string_view kChallenge = "#CHALLENGE#";
constexpr std::string_view kWelcome = "#WELCOME#";
constexpr std::string_view kFailure = "#FAILURE#";
// Every handshake message is read with this maxlength (CPython's bound).
constexpr std::int64_t kMaxHandshakeMessage = 256;
// Random bytes after the "{sha256}" prefix of a challenge (CPython's
// MESSAGE_LENGTH; must exceed 20 so that the challenge is never legacy-sized).
constexpr std::size_t kNonceLength = 40;
constexpr std::string_view kDigest = "sha256";
// A legacy (<= 3.11) challenge has exactly 20 bytes; a legacy response is a raw
// 16-byte HMAC-MD5. Modern messages are always longer.
constexpr std::size_t kLegacyChallengeLength = 20;
constexpr std::size_t kMd5Length = 16;
constexpr std::array<std::string_view, 5> kAllowedDigests = {"md5", "sha256", "sha384", "sha3_256",
                                                             "sha3_384"};
constexpr std::size_t kMaxDigestNameLength = 8;

// Reads one handshake message: with `deadline` null, as Connection::recv_bytes(256) (CPython,
// no bound); otherwise every byte must arrive before `deadline`, else
// AuthenticationError("handshake timed out ..."). The frame is read exactly, straight from the
// descriptor (nothing is buffered before a handshake), with the errors of recv_bytes: EOF
// before the message -> EOFError, inside it -> OSError, longer than 256 -> OSError("bad
// message length") without reading the payload.
std::string read_handshake_message(Connection& connection, const platform::Deadline* deadline) {
  if (deadline == nullptr) return connection.recv_bytes(kMaxHandshakeMessage);
  const int fd = connection.fileno();
  auto read_exact = [&](char* data, std::size_t size, bool eof_is_eoferror) {
    std::size_t got = 0;
    while (got < size) {
      if (!platform::poll_readable(fd, *deadline)) {
        throw AuthenticationError("handshake timed out after " +
                                  std::to_string(static_cast<int>(kHandshakeTimeoutSeconds)) +
                                  " s: the peer sent nothing");
      }
      const std::size_t n = platform::read_some(fd, data + got, size - got);
      if (n == 0) {
        if (eof_is_eoferror && got == 0) throw EOFError();
        throw OSError("got end of file during message");
      }
      got += n;
    }
  };
  unsigned char header[8];
  read_exact(reinterpret_cast<char*>(header), 4, true);
  std::uint64_t size = std::uint64_t{header[0]} << 24 | std::uint64_t{header[1]} << 16 |
                       std::uint64_t{header[2]} << 8 | header[3];
  if (size == 0xFFFFFFFFu) {
    read_exact(reinterpret_cast<char*>(header), 8, false);
    size = 0;
    for (unsigned char b : header) size = size << 8 | b;
  } else if (size & 0x80000000u) {
    throw OSError("bad message length");  // a negative length other than -1, as recv_bytes
  }
  if (size > static_cast<std::uint64_t>(kMaxHandshakeMessage)) throw OSError("bad message length");
  std::string payload(size, '\0');
  read_exact(payload.data(), payload.size(), true);
  return payload;
}

void deliver_challenge(Connection& connection, std::string_view authkey,
                       const platform::Deadline* deadline);
void answer_challenge(Connection& connection, std::string_view authkey,
                      const platform::Deadline* deadline);

// Python's repr() of a bytes object: b'...' (or b"..." when that avoids escapes).
std::string bytes_repr(std::string_view bytes) {
  const bool has_single = bytes.find('\'') != std::string_view::npos;
  const bool has_double = bytes.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out = "b";
  out += quote;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += ch;
    }
  }
  out += quote;
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// CPython's _get_digest_name_and_payload(): ("", message) for a legacy-sized
// message, (name, rest) for "{name}rest" with an allowed name, else throws.
std::pair<std::string_view, std::string_view> digest_name_and_payload(std::string_view message) {
  if (message.size() == kLegacyChallengeLength || message.size() == kMd5Length) {
    return {std::string_view(), message};
  }
  if (starts_with(message, "{")) {
    // The closing brace must be within the first kMaxDigestNameLength + 2 bytes.
    const std::size_t curly = message.substr(0, kMaxDigestNameLength + 2).find('}', 1);
    if (curly != std::string_view::npos) {
      const std::string_view name = message.substr(1, curly - 1);
      for (const std::string_view allowed : kAllowedDigests) {
        if (name == allowed) return {allowed, message.substr(curly + 1)};
      }
    }
  }
  throw AuthenticationError(
      "unsupported message length, missing digest prefix, or unsupported digest: message=" +
      bytes_repr(message));
}

// CPython's _create_response().
std::string create_response(std::string_view authkey, std::string_view message) {
  std::string_view name = digest_name_and_payload(message).first;
  if (name.empty()) {
    if (auto mac = platform::hmac("md5", authkey, message)) return *mac;
    name = kDigest;  // MD5 unavailable (FIPS): answer in the modern form
  }
  auto mac = platform::hmac(name, authkey, message);
  if (!mac) throw AuthenticationError("digest " + std::string(name) + " unsupported");
  std::string response = "{";
  response += name;
  response += '}';
  response += *mac;
  return response;
}

// CPython's _verify_challenge().
void verify_challenge(std::string_view authkey, std::string_view message,
                      std::string_view response) {
  auto [name, mac] = digest_name_and_payload(response);
  if (name.empty()) name = "md5";
  const auto expected = platform::hmac(name, authkey, message);
  if (!expected) {
    throw AuthenticationError("response_digest='" + std::string(name) + "' unsupported");
  }
  if (expected->size() != mac.size()) {
    throw AuthenticationError("expected '" + std::string(name) + "' of length " +
                              std::to_string(expected->size()) + " got " +
                              std::to_string(mac.size()));
  }
  if (!platform::equal_constant_time(*expected, mac)) {
    throw AuthenticationError("digest received was wrong");
  }
}

Address to_address(const platform::SocketAddress& socket_address) {
  const platform::DecodedAddress d = platform::decode(socket_address);
  if (d.family == AF_INET) return Address::inet(d.host, d.port);
  return Address::unix_socket(d.path);
}

platform::SocketAddress to_socket_address(const Address& address) {
  if (address.family() == Address::Family::kInet) {
    return platform::inet_socket_address(address.host(), address.port());
  }
  return platform::unix_socket_address(address.path());
}

}  // namespace

// ---- Address ----------------------------------------------------------------

Address Address::unix_socket(std::string path) {
  return Address(Family::kUnix, std::move(path), 0);
}

Address Address::abstract_socket(std::string_view name) {
  std::string path(1, '\0');
  path += name;
  return Address(Family::kUnix, std::move(path), 0);
}

Address Address::inet(std::string host, std::uint16_t port) {
  return Address(Family::kInet, std::move(host), port);
}

Address Address::arbitrary(Family family) {
  if (family == Family::kInet) return inet("localhost", 0);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix;
  for (char c : platform::random_bytes(8)) {
    const auto b = static_cast<unsigned char>(c);
    suffix += kHex[b >> 4];
    suffix += kHex[b & 15];
  }
  const char* dir = std::getenv("TMPDIR");
  std::string path = (dir != nullptr && *dir != '\0') ? dir : "/tmp";
  path += "/mp-listener-" + std::to_string(::getpid()) + "-" + suffix;
  return unix_socket(std::move(path));
}

std::string Address::to_string() const {
  if (family_ == Family::kInet) {
    return "(" + bytes_repr(text_).substr(1) + ", " + std::to_string(port_) + ")";
  }
  if (is_abstract()) return bytes_repr(text_);
  return bytes_repr(text_).substr(1);  // a str: no "b" prefix
}

// ---- Listener ---------------------------------------------------------------

Listener::Listener(const Address& address, int backlog, std::optional<std::string> authkey)
    : address_(address), authkey_(std::move(authkey)) {
  fd_ = platform::listen_on(to_socket_address(address), backlog);
  try {
    address_ = to_address(platform::local_address(fd_));
  } catch (...) {
    platform::close_stream(fd_);
    throw;
  }
  if (address.family() == Address::Family::kUnix && !address.path().empty() &&
      !address.is_abstract()) {
    unlink_path_ = address.path();
  }
}

Listener::Listener(Listener&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      address_(other.address_),
      last_accepted_(std::move(other.last_accepted_)),
      authkey_(std::move(other.authkey_)),
      unlink_path_(std::exchange(other.unlink_path_, std::string())) {}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    address_ = other.address_;
    last_accepted_ = std::move(other.last_accepted_);
    authkey_ = std::move(other.authkey_);
    unlink_path_ = std::exchange(other.unlink_path_, std::string());
  }
  return *this;
}

Listener::~Listener() { close(); }

Connection Listener::accept() {
  if (fd_ < 0) throw OSError("listener is closed");
  platform::SocketAddress peer;
  Connection connection(platform::accept_on(fd_, &peer));
  last_accepted_ = to_address(peer);
  if (authkey_.has_value()) {
    const auto deadline = platform::Deadline::after(kHandshakeTimeoutSeconds);
    deliver_challenge(connection, *authkey_, &deadline);
    answer_challenge(connection, *authkey_, &deadline);
  }
  return connection;
}

void Listener::close() noexcept {
  if (fd_ < 0) return;
  platform::close_stream(std::exchange(fd_, -1));
  if (!unlink_path_.empty()) platform::unlink_path(std::exchange(unlink_path_, std::string()));
}

int Listener::fileno() const {
  if (fd_ < 0) throw OSError("listener is closed");
  return fd_;
}

// ---- Client -----------------------------------------------------------------

Connection Client(const Address& address, std::optional<std::string> authkey) {
  Connection connection(platform::connect_to(to_socket_address(address)));
  if (authkey.has_value()) {
    const auto deadline = platform::Deadline::after(kHandshakeTimeoutSeconds);
    answer_challenge(connection, *authkey, &deadline);
    deliver_challenge(connection, *authkey, &deadline);
  }
  return connection;
}

// ---- Handshake --------------------------------------------------------------

void deliver_challenge(Connection& connection, std::string_view authkey) {
  deliver_challenge(connection, authkey, nullptr);
}

void answer_challenge(Connection& connection, std::string_view authkey) {
  answer_challenge(connection, authkey, nullptr);
}

namespace {

void deliver_challenge(Connection& connection, std::string_view authkey,
                       const platform::Deadline* deadline) {
  std::string message = "{";
  message += kDigest;
  message += '}';
  message += platform::random_bytes(kNonceLength);
  std::string challenge(kChallenge);
  challenge += message;
  connection.send_bytes(challenge);
  const std::string response = read_handshake_message(connection, deadline);
  try {
    verify_challenge(authkey, message, response);
  } catch (const AuthenticationError&) {
    try {
      connection.send_bytes(kFailure);
    } catch (const Error&) {
      // The peer is gone; the authentication failure is what matters.
    }
    throw;
  }
  connection.send_bytes(kWelcome);
}

void answer_challenge(Connection& connection, std::string_view authkey,
                      const platform::Deadline* deadline) {
  const std::string received = read_handshake_message(connection, deadline);
  if (!starts_with(received, kChallenge)) {
    throw AuthenticationError("Protocol error, expected challenge: message=" +
                              bytes_repr(received));
  }
  const std::string_view message = std::string_view(received).substr(kChallenge.size());
  if (message.size() < kLegacyChallengeLength) {
    throw AuthenticationError("challenge too short: " + std::to_string(message.size()) + " bytes");
  }
  connection.send_bytes(create_response(authkey, message));
  const std::string verdict = read_handshake_message(connection, deadline);
  if (verdict != kWelcome) throw AuthenticationError("digest sent was rejected");
}

}  // namespace

}  // namespace mp
