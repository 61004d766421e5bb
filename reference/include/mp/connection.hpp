// -----------------------------------------------------------------------------
// File: connection.hpp
// -----------------------------------------------------------------------------
//
// This header defines byte-message connections that are wire compatible with
// Python's `multiprocessing.connection` (3.11 - 3.13), and the authenticated
// Listener / Client pair that opens them across unrelated processes:
//
//   mp::Connection         one end of a connection: a file descriptor that
//                          carries whole messages (send_bytes / recv_bytes)
//   mp::Pipe()             two connected Connections (socketpair or pipe)
//   mp::PipeKind           a Pipe's transport: records (fast, libmp peers)
//                          or a stream (CPython's)
//   mp::Address            an AF_UNIX path or abstract name, or an AF_INET
//                          (host, port) pair
//   mp::Listener           a listening socket whose accept() returns
//                          Connections, after an optional handshake
//   mp::Client()           connects to a Listener (C++ or Python)
//   mp::deliver_challenge(), mp::answer_challenge()
//                          the two halves of the authentication handshake
//
// Wire format (CPython's, byte for byte). A message is a header followed by
// its payload. The header of an n-byte payload is n as a signed 32-bit
// big-endian integer when n <= 0x7fffffff, and otherwise the bytes FF FF FF FF
// followed by n as an unsigned 64-bit big-endian integer. Messages are never
// merged or split: each recv_bytes() returns exactly one send_bytes()'s bytes,
// also the empty message. A C++ end and a Python end of one connection
// interoperate, as long as the Python side uses send_bytes/recv_bytes (or
// sends objects the C++ side decodes itself).
//
// Example:
//
//   auto [left, right] = mp::Pipe();              // duplex socketpair (records)
//   left.send_bytes("hello");
//   std::string m = right.recv_bytes();           // "hello"
//   if (right.poll(0.5)) { ... }                  // wait up to 0.5 s
//
//   mp::Listener listener(mp::Address::inet("127.0.0.1", 0), 1, "secret");
//   // another process:
//   //   mp::Connection c = mp::Client(listener_address, "secret");
//   //   or, in Python: multiprocessing.connection.Client(addr, authkey=b'secret')
//   mp::Connection c = listener.accept();         // handshake done when it returns
//
// Errors follow CPython's kinds (see mp/errors.hpp): mp::ValueError for bad
// arguments, mp::OSError for closed handles, one-way misuse, oversized
// messages, truncated messages and system failures (with errno where the
// kernel gave one), mp::EOFError when the peer closed, mp::BufferTooShort and
// mp::AuthenticationError.
//
// Threads and processes. A Connection (like CPython's) is not synchronized:
// two threads must not read from (or write to) one end at the same time, and
// close() must not race with another thread's call. Reading in one thread
// while another writes is fine on a duplex connection. After fork() a child
// that keeps a copy of the object owns a duplicate descriptor of the same
// stream; processes sharing one end must take turns (e.g. under an mp::Lock),
// as multiprocessing's queues do. Connections never read ahead of the current
// message, so turn-taking readers never lose each other's messages.
//
// Crashes. When the process at the other end dies, its descriptors close: a
// reader then gets EOFError (or OSError if the peer died mid-message), poll()
// returns true, and a writer gets OSError(EPIPE) or OSError(ECONNRESET).

#ifndef MP_CONNECTION_HPP_
#define MP_CONNECTION_HPP_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace mp {

class Value;

// mp::Connection
//
// One end of a connection: owns a file descriptor (a socket or one end of a
// pipe) and knows whether this end may read and write. Move-only; the
// destructor closes the descriptor. A moved-from Connection is closed.
//
// Blocking. send_bytes() blocks until the whole message is in the kernel's
// buffer (a large message waits for the reader to make room). recv_bytes() and
// recv_bytes_into() block until a whole message has arrived, without a
// timeout, as in CPython; use poll() first to wait with one. No call spins or
// polls in a loop: they sleep in the kernel.
//
// Signals. Interrupted system calls (EINTR) are resumed, with the same
// deadline for poll(). Writing never raises SIGPIPE: a write to a closed peer
// throws mp::OSError(EPIPE) ("[Errno 32] Broken pipe"), as in CPython.
class Connection {
 public:
  // Connection::Connection()
  //
  // Takes ownership of `fd`, which must be an open stream (socket, pipe, or
  // anything read()/write() moves bytes through), or a record socket made by
  // Pipe(true, PipeKind::kMessages) (recognized with one getsockopt).
  // `readable` / `writable` say which directions this end may use.
  //
  // Throws mp::ValueError("invalid handle") if fd < 0, and
  // mp::ValueError("at least one of `readable` and `writable` must be True")
  // if both are false. `fd` is not closed when the constructor throws.
  explicit Connection(int fd, bool readable = true, bool writable = true);

  Connection(Connection&& other) noexcept;
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  // Closes the descriptor if still open.
  ~Connection();

  // Whether close() (or detach(), or a move) has happened.
  bool closed() const noexcept { return fd_ < 0; }
  // Whether this end may receive. Becomes false after a recv_bytes() whose
  // message exceeded `maxlength` on a writable end (see recv_bytes()).
  bool readable() const noexcept { return readable_; }
  // Whether this end may send.
  bool writable() const noexcept { return writable_; }

  // Connection::fileno()
  //
  // The descriptor, e.g. to wait for several connections at once with
  // poll(2). Throws mp::OSError("handle is closed") if closed.
  int fileno() const;

  // Connection::close()
  //
  // Closes the descriptor. Idempotent; never throws. The peer then sees end
  // of file once it has read what was sent before.
  void close() noexcept;

  // Connection::detach()
  //
  // Gives up ownership: returns the descriptor (or -1 if closed) and leaves
  // this Connection closed without closing the descriptor.
  int detach() noexcept;

  // Connection::send_bytes()
  //
  // Sends bytes [offset, offset + size) of `buf` as one message (`size`
  // nullopt: to the end of `buf`). CPython's checks, in this order:
  //
  //   closed                      -> mp::OSError("handle is closed")
  //   not writable                -> mp::OSError("connection is read-only")
  //   offset < 0                  -> mp::ValueError("offset is negative")
  //   offset > buf.size()         -> mp::ValueError("buffer length < offset")
  //   size < 0                    -> mp::ValueError("size is negative")
  //   offset + size > buf.size()  -> mp::ValueError("buffer length < offset + size")
  //
  // offset == buf.size() is allowed and sends an empty message. Header and
  // payload go out in one write (a gather write above 1 KiB) where the kernel
  // takes them at once.
  // Throws mp::OSError(errno) if the write fails, e.g. EPIPE when the reading
  // end is closed; part of the message may then have been sent, and the
  // stream should be abandoned.
  void send_bytes(std::span<const std::byte> buf, std::int64_t offset = 0,
                  std::optional<std::int64_t> size = std::nullopt);
  void send_bytes(std::string_view buf, std::int64_t offset = 0,
                  std::optional<std::int64_t> size = std::nullopt);

  // Connection::recv_bytes()
  //
  // Blocks until one whole message has arrived and returns its bytes.
  //
  //   closed                -> mp::OSError("handle is closed")
  //   not readable          -> mp::OSError("connection is write-only")
  //   maxlength < 0         -> mp::ValueError("negative maxlength")
  //   peer closed, nothing  -> mp::EOFError (see below)
  //   message > maxlength   -> mp::OSError("bad message length")
  //   EOF inside a header or payload
  //                         -> mp::OSError("got end of file during message")
  //
  // EOFError is thrown exactly where CPython throws it: when end of file is
  // met before the first byte of the message, or right after a complete
  // length field before any byte of what follows. EOF after part of the
  // length field or part of the payload is an OSError.
  //
  // After "bad message length" the payload is left unread in the stream and
  // this end can no longer receive: a writable end becomes write-only
  // (readable() false), a read-only end is closed.
  //
  // A header with a negative length other than -1 is refused like an
  // oversized one: OSError("bad message length") (CPython returns an empty
  // message; no conforming sender produces one). The 12-byte
  // header is accepted for any length. A message is read exactly, never more:
  // the bytes of the next message stay in the kernel. Memory for a payload
  // larger than 64 MiB grows as its bytes arrive (in steps of 8x), so a peer
  // that announces a huge message and sends less cannot make this call
  // allocate more than about 8 times what it received. (CPython allocates
  // the announced size at once.) Bound untrusted peers with `maxlength`.
  std::string recv_bytes(std::optional<std::int64_t> maxlength = std::nullopt);

  // Connection::recv_bytes_into()
  //
  // Blocks until one whole message has arrived and copies it into `buf`
  // starting at byte `offset`; returns the message's length in bytes.
  //
  //   closed, not readable  -> as recv_bytes()
  //   offset < 0            -> mp::ValueError("negative offset")
  //   offset > buf.size()   -> mp::ValueError("offset too large")
  //   message longer than buf.size() - offset
  //                         -> mp::BufferTooShort, whose message() holds the
  //                            whole message; it is consumed from the stream
  //
  // EOF is reported as by recv_bytes(). When a read fails mid-message, the
  // bytes of `buf` after `offset` are unspecified.
  std::size_t recv_bytes_into(std::span<std::byte> buf, std::int64_t offset = 0);
  std::size_t recv_bytes_into(std::span<char> buf, std::int64_t offset = 0);

  // Connection::send()
  //
  // Sends `value` as one message: its pickle at protocol 4 (mp/codec.hpp), as
  // CPython's `Connection.send` writes it, so a Python peer's `recv()` returns
  // the equal Python value. Errors as send_bytes() (closed, read-only, write
  // failures), plus those of mp::pickle_dumps (mp::ValueError for a string
  // that is not UTF-8 or nesting deeper than kPickleMaxDepth); nothing is
  // sent when the value cannot be encoded.
  void send(const Value& value);

  // Connection::recv()
  //
  // Blocks until one whole message has arrived and decodes it as a pickle of
  // a value of the domain (mp::pickle_loads with its default limits, which
  // runs no code). Errors as recv_bytes() (EOFError, closed, write-only, ...);
  // a message that is not such a pickle throws mp::ValueError, after the
  // message has been consumed (the stream stays usable).
  Value recv();

  // Connection::poll()
  //
  // Whether a message can be read without blocking, waiting up to `timeout`
  // seconds for one: true as soon as a byte of a message is available, or the
  // peer has closed its end (a read then throws EOFError), or the descriptor
  // is in error. Never consumes anything.
  //
  //   timeout 0.0 (default), < 0, -inf   one check, no wait
  //   timeout > 0                        waits until an absolute
  //                                      CLOCK_MONOTONIC deadline; returns
  //                                      false no earlier than `timeout`
  //                                      seconds after the call
  //   nullopt, +inf, >= 4e9              waits without limit
  //   NaN                                mp::ValueError
  //
  // Closed -> mp::OSError("handle is closed"); not readable ->
  // mp::OSError("connection is write-only"). (CPython raises OverflowError for
  // timeouts beyond its platform's range; libmp waits without limit.)
  bool poll(std::optional<double> timeout = 0.0);

 private:
  // Record transport: the most bytes (header included) a message's first
  // record holds (see connection.cpp).
  static constexpr std::size_t kFirstRecord = 8192;
  // The start of a received message: its payload length, and (record
  // transport) the payload bytes that came with the header.
  struct MessageStart {
    std::uint64_t size = 0;
    const unsigned char* prefix_data = nullptr;
    std::size_t prefix = 0;
    unsigned char first[kFirstRecord];  // the first record
  };

  void check_readable() const;
  void check_writable() const;
  void send_frame(const std::byte* data, std::uint64_t size);
  [[noreturn]] static void record_too_large();
  // Reads up to `size` bytes of the current message: read() on a stream, one
  // record on a record socket (a record longer than `size`:
  // bad_message_length()). 0 at end of file.
  std::size_t read_chunk(void* data, std::size_t size);
  // Reads a header (and, on a record socket, the first record); a negative
  // length other than -1: bad_message_length().
  void read_start(MessageStart& m);
  // Reads exactly `size` bytes; end of file before the first -> EOFError
  // (unless `started`: part of this message came already), later ->
  // OSError("got end of file during message").
  void read_exact(void* data, std::size_t size, bool started);
  std::string read_payload(const MessageStart& m);
  [[noreturn]] void bad_message_length();

  int fd_ = -1;
  bool readable_ = false;
  bool writable_ = false;
  bool socket_ = false;   // write with MSG_NOSIGNAL instead of blocking SIGPIPE
  bool records_ = false;  // SOCK_SEQPACKET (or DGRAM): a message is one or more records
};

// mp::PipeKind
//
// The transport of a duplex mp::Pipe().
enum class PipeKind {
  // An AF_UNIX SOCK_SEQPACKET socketpair (where the platform has one; else as
  // kStream). The kernel keeps message boundaries, so a receiver gets the
  // header and a small payload in one system call (a stream needs two: the
  // header, then the payload, since a Connection never reads ahead): a small
  // message's round trip is about a fifth faster than over a stream. Both
  // ends must be libmp Connections: CPython reads a stream and would lose the
  // rest of each record after its 4-byte header read.
  kMessages,
  // An AF_UNIX SOCK_STREAM socketpair: CPython's `Pipe()` transport. Use it
  // when an end goes to a process that speaks CPython's framing with its own
  // reads (e.g. a Python process given the descriptor).
  kStream,
};

// mp::Pipe()
//
// Two connected Connections. duplex (default): a socketpair of `kind`, both
// ends read and write. duplex == false: a pipe() (`kind` is ignored; a pipe
// is a byte stream, as in CPython); the first Connection only reads, the
// second only writes (CPython's `Pipe(False)` order). Descriptors are
// close-on-exec. Throws mp::OSError if the kernel refuses (EMFILE, ...).
//
// Either transport carries CPython's framing (header, payload) and keeps every
// guarantee of this header: messages never merged or split, poll(), end of
// file, turn-taking readers. On kMessages a message travels as records (the
// header with up to 8 KiB, then records of up to 256 KiB), which a
// Connection made from the descriptor (any process) recognizes by itself.
std::pair<Connection, Connection> Pipe(bool duplex = true, PipeKind kind = PipeKind::kMessages);

// mp::Address
//
// Where a Listener listens and a Client connects: an AF_UNIX socket (a
// filesystem path, or a Linux abstract-namespace name, written with a leading
// NUL byte as in Python: "\0name"), or an AF_INET socket (an IPv4 host name or
// dotted quad, and a port). A value type.
//
//   mp::Address::unix_socket("/tmp/d/sock")      Python '/tmp/d/sock'
//   mp::Address::abstract_socket("name")         Python '\0name'
//   mp::Address::inet("127.0.0.1", 0)            Python ('127.0.0.1', 0);
//                                                port 0 picks a free port
class Address {
 public:
  enum class Family { kUnix, kInet };

  // An AF_UNIX address; a `path` starting with '\0' names an abstract socket.
  // For a Listener, "" asks for a free abstract name (Linux autobind), which
  // address() then reports.
  static Address unix_socket(std::string path);
  // The abstract AF_UNIX address "\0" + `name`.
  static Address abstract_socket(std::string_view name);
  // An AF_INET address. `host` "" means any interface (for a Listener).
  static Address inet(std::string host, std::uint16_t port);
  // A free address of `family` for a Listener (CPython's `arbitrary_address`):
  // AF_INET: ("localhost", 0), the kernel picks the port; AF_UNIX: a path that
  // does not exist yet, `$TMPDIR/mp-listener-<pid>-<16 random hex digits>` (or
  // under /tmp), which the Listener removes when it closes. Throws mp::OSError
  // if no random bytes can be drawn.
  static Address arbitrary(Family family);

  Family family() const noexcept { return family_; }
  // AF_UNIX: the path or "\0name"; "" for an unnamed (client) socket.
  const std::string& path() const noexcept { return text_; }
  // AF_INET: the host as given, or a dotted quad when reported by a Listener.
  const std::string& host() const noexcept { return text_; }
  // AF_INET: the port.
  std::uint16_t port() const noexcept { return port_; }
  // Whether this is an AF_UNIX abstract-namespace address.
  bool is_abstract() const noexcept {
    return family_ == Family::kUnix && !text_.empty() && text_[0] == '\0';
  }

  // How Python prints the address: "('127.0.0.1', 8000)", "'/tmp/d/sock'",
  // "b'\\x00name'".
  std::string to_string() const;

  friend bool operator==(const Address&, const Address&) = default;

 private:
  Address(Family family, std::string text, std::uint16_t port)
      : family_(family), text_(std::move(text)), port_(port) {}

  Family family_;
  std::string text_;  // path or host
  std::uint16_t port_;
};

// mp::kHandshakeTimeoutSeconds
//
// How long Listener::accept() and Client() wait for the peer during the
// authentication handshake, in all (from the first handshake message to the
// last): a peer that stalls, sends nothing, or stops in the middle of a
// message fails the handshake with mp::AuthenticationError("handshake timed
// out ...") after this many seconds, so that one stalled client cannot hold
// up a server's accept loop for ever (CPython waits without limit;
// spec/connection/listener.md, [listener.auth.bounded]). The free functions
// deliver_challenge() and answer_challenge() have no bound, as CPython's.
inline constexpr double kHandshakeTimeoutSeconds = 10.0;

// mp::Listener
//
// A bound, listening stream socket, like `multiprocessing.connection.Listener`:
// accept() returns a Connection for each client, after authenticating it when
// the Listener has an authkey. Move-only; the destructor closes it.
//
// Authentication. With an `authkey` (any bytes, also empty: CPython 3.13's
// rule), accept() runs the mutual handshake before returning: first
// deliver_challenge() (the client proves it knows the key), then
// answer_challenge() (this side proves it). Clients of CPython 3.11 (HMAC-MD5)
// and 3.12+ ({sha256}) and mp::Client are all accepted. Without one, no
// handshake is done; an authenticating mp::Client then gives up after
// kHandshakeTimeoutSeconds (a CPython client waits for ever, gh-123736).
//
// Threads. Not synchronized: use one Listener from one thread at a time (and
// do not close() it while another thread is blocked in accept()).
class Listener {
 public:
  // Listener::Listener()
  //
  // socket(), SO_REUSEADDR, bind(`address`), listen(`backlog`); descriptors are
  // close-on-exec. Throws mp::OSError if the address cannot be resolved or
  // bound (e.g. errno EADDRINUSE, or a socket file that exists already: like
  // CPython, libmp does not remove stale socket files before binding), or
  // "AF_UNIX path too long".
  explicit Listener(const Address& address, int backlog = 1,
                    std::optional<std::string> authkey = std::nullopt);

  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  // Closes the listener (see close()).
  ~Listener();

  // Listener::accept()
  //
  // Blocks until a client connects (no timeout, as in CPython; poll fileno()
  // for POLLIN first to wait with one), records its address in
  // last_accepted(), then authenticates it if there is an authkey, within
  // kHandshakeTimeoutSeconds.
  //
  //   closed                     -> mp::OSError("listener is closed")
  //   client fails the handshake -> mp::AuthenticationError (the connection
  //                                 is closed; the Listener stays usable)
  //   client leaves or misbehaves during the handshake
  //                              -> mp::EOFError or mp::OSError (e.g. "bad
  //                                 message length": handshake messages are
  //                                 limited to 256 bytes)
  Connection accept();

  // Listener::close()
  //
  // Closes the socket and, for a filesystem AF_UNIX address, removes the
  // socket file (the path as given to the constructor). Idempotent; never
  // throws (a socket file that is already gone is not an error, unlike
  // CPython's FileNotFoundError). Connections already accepted stay open.
  void close() noexcept;

  bool closed() const noexcept { return fd_ < 0; }

  // The address the socket is bound to (getsockname): the actual port when
  // port 0 was asked for, a dotted quad for a host name, the chosen name for
  // an empty abstract address. Still available after close().
  const Address& address() const noexcept { return address_; }

  // The peer address of the last accepted connection, nullopt before the
  // first (AF_UNIX clients are usually unnamed: path "").
  const std::optional<Address>& last_accepted() const noexcept { return last_accepted_; }

  // The listening descriptor, to wait for a client with poll(2) before
  // accept(). Throws mp::OSError("listener is closed") if closed.
  int fileno() const;

 private:
  int fd_ = -1;
  Address address_;
  std::optional<Address> last_accepted_;
  std::optional<std::string> authkey_;
  std::string unlink_path_;  // "" unless a filesystem AF_UNIX socket
};

// mp::Client()
//
// Connects to the Listener at `address` (C++ or Python) and returns the
// Connection. With an `authkey` (any bytes, also empty), runs the mutual
// handshake before returning: answer_challenge() then deliver_challenge().
// Blocks in connect() without a timeout, as CPython does; the handshake is
// bounded by kHandshakeTimeoutSeconds (AuthenticationError after it).
//
//   cannot connect       -> mp::OSError (ENOENT, ECONNREFUSED, ...)
//   wrong key            -> mp::AuthenticationError("digest sent was rejected")
//   listener without authkey, or not a multiprocessing peer
//                        -> mp::AuthenticationError (protocol error, or no
//                           challenge within kHandshakeTimeoutSeconds)
Connection Client(const Address& address, std::optional<std::string> authkey = std::nullopt);

// mp::deliver_challenge()
//
// The verifying half of the handshake (CPython 3.12+'s form): sends
// "#CHALLENGE#" + "{sha256}" + 40 random bytes, reads the response (at most
// 256 bytes), and checks it in constant time. Accepted responses:
//
//   16 or 20 bytes                 legacy: raw HMAC-MD5(key, challenge)
//                                  (CPython <= 3.11 peers)
//   "{d}" + HMAC-d(key, challenge) for d in md5, sha256, sha384, sha3_256,
//                                  sha3_384 (any of them, as CPython)
//
// where `challenge` is everything after "#CHALLENGE#", the "{sha256}" prefix
// included. Sends "#WELCOME#" on success. Otherwise sends "#FAILURE#" and
// throws mp::AuthenticationError: "digest received was wrong", "expected
// 'sha256' of length 32 got N", or "unsupported message length, missing
// digest prefix, or unsupported digest: message=b'...'". (Should sending
// "#FAILURE#" itself fail, the AuthenticationError is still what is thrown.)
// Transport failures propagate as mp::EOFError / mp::OSError.
void deliver_challenge(Connection& connection, std::string_view authkey);

// mp::answer_challenge()
//
// The proving half (CPython 3.12+'s, which also answers 3.11 servers): reads
// the challenge (at most 256 bytes, else OSError("bad message length")), and
// answers
//
//   challenge of exactly 20 (or 16) bytes   raw HMAC-MD5(key, challenge)
//   "{d}..." for an allowed digest d        "{d}" + HMAC-d(key, challenge)
//
// then reads the verdict. Throws mp::AuthenticationError for: a first message
// that is not "#CHALLENGE#..." ("Protocol error, expected challenge:
// message=b'...'"), a challenge shorter than 20 bytes ("challenge too short:
// N bytes"), any other length without a supported "{digest}" prefix, and a
// verdict other than "#WELCOME#" ("digest sent was rejected").
void answer_challenge(Connection& connection, std::string_view authkey);

}  // namespace mp

#endif  // MP_CONNECTION_HPP_
