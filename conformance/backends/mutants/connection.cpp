// Connection, Listener and Process mutants, built on the reference adapters (whose sources the
// mutant driver compiles in) with one behaviour broken:
//   connection-merges-small     recv_bytes returns every message that has already arrived as
//                               one message: the classic bug of treating a byte stream as if
//                               it kept message boundaries. (It reads whole messages of
//                               either transport, stream or the reference Pipe's records,
//                               and then glues them together.)
//   listener-accepts-wrong-key  a Listener with an authkey delivers its challenge but sends
//                               #WELCOME# whatever the response (it never checks the MAC).
//   process-exitcode-ignores-signals
//                               exitcode reports 0 for a child ended by a signal (WEXITSTATUS
//                               read without WIFSIGNALED).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <mp/connection.hpp>
#include <mp/errors.hpp>
#include <mutex>
#include <optional>

#include "../reference/types.hpp"
#include "bytes_json.hpp"
#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

using reference_backend::ConnectionObject;

// Reads exactly `n` bytes from `fd`; false at end of file before the first byte.
bool read_exact(int fd, char* p, std::size_t n) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw mp::OSError(errno, std::strerror(errno));
    if (r == 0) {
      if (got == 0) return false;
      throw mp::OSError("got end of file during message");
    }
    got += static_cast<std::size_t>(r);
  }
  return true;
}

// One message of the record transport (mp::Pipe()'s SOCK_SEQPACKET pair, PipeKind::kMessages):
// the first record holds the header and the start of the payload, later records the rest.
std::optional<std::string> read_frame_records(int fd) {
  std::string record(std::size_t{256} << 10, '\0');
  ssize_t r;
  while ((r = ::recv(fd, record.data(), 8192, 0)) < 0 && errno == EINTR) {
  }
  if (r < 0) throw mp::OSError(errno, std::strerror(errno));
  if (r == 0) return std::nullopt;
  if (r < 4) throw mp::OSError("bad message length");
  const auto* h = reinterpret_cast<const unsigned char*>(record.data());
  const std::uint32_t n =
      std::uint32_t{h[0]} << 24 | std::uint32_t{h[1]} << 16 | std::uint32_t{h[2]} << 8 | h[3];
  if (n > (64u << 20)) throw mp::OSError("bad message length");
  std::string payload = record.substr(4, static_cast<std::size_t>(r) - 4);
  while (payload.size() < n) {
    while ((r = ::recv(fd, record.data(), record.size(), 0)) < 0 && errno == EINTR) {
    }
    if (r < 0) throw mp::OSError(errno, std::strerror(errno));
    if (r == 0) throw mp::OSError("got end of file during message");
    payload.append(record.data(), static_cast<std::size_t>(r));
  }
  return payload;
}

bool is_record_socket(int fd) {
  int type = 0;
  socklen_t len = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_SEQPACKET;
}

std::optional<std::string> read_frame(int fd) {
  if (is_record_socket(fd)) return read_frame_records(fd);
  unsigned char h[4];
  if (!read_exact(fd, reinterpret_cast<char*>(h), 4)) return std::nullopt;
  const std::uint32_t n =
      std::uint32_t{h[0]} << 24 | std::uint32_t{h[1]} << 16 | std::uint32_t{h[2]} << 8 | h[3];
  if (n > (64u << 20)) throw mp::OSError("bad message length");
  std::string payload(n, '\0');
  if (n > 0 && !read_exact(fd, payload.data(), n))
    throw mp::OSError("got end of file during message");
  return payload;
}

class MergingConnection : public ConnectionObject {
 public:
  Json call(const std::string& method, const Json& args) override {
    if (method != "recv_bytes") return ConnectionObject::call(method, args);
    const int fd = get()->fileno();
    auto first = read_frame(fd);
    if (!first) throw mp::EOFError();
    std::string merged = *first;
    for (;;) {  // the bug: whatever else has arrived joins this message
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) break;
      auto next = read_frame(fd);
      if (!next) break;
      merged += *next;
    }
    return bytes_json(merged);
  }
};

class ExitcodeIgnoresSignals : public driverkit::Object, public reference_backend::Waitable {
 public:
  explicit ExitcodeIgnoresSignals(std::unique_ptr<driverkit::Object> inner)
      : inner_(std::move(inner)) {}
  Json call(const std::string& method, const Json& args) override {
    Json v = inner_->call(method, args);
    if (method == "exitcode" && v.is_number_integer() && v.get<int>() < 0) return 0;  // the bug
    return v;
  }
  int wait_fd() override { return dynamic_cast<reference_backend::Waitable&>(*inner_).wait_fd(); }

 private:
  std::unique_ptr<driverkit::Object> inner_;
};

// A Listener whose handshake never checks the client's response. Supports what the tests
// that must catch it use: an AF_UNIX path, no address (a free AF_UNIX one), [host, port].
class TrustingListener : public driverkit::Object {
 public:
  TrustingListener(Json args, const driverkit::Objects& objects)
      : args_(std::move(args)), objects_(objects) {}

  Json call(const std::string& method, const Json& args) override {
    std::lock_guard<std::mutex> g(mu_);
    if (pid_ != ::getpid()) {
      listener_.reset();
      listener_.emplace(address(), 1, std::nullopt);  // the handshake is done by hand below
      pid_ = ::getpid();
    }
    if (method == "address") {
      const auto& a = listener_->address();
      if (a.family() == mp::Address::Family::kInet) return Json::array({a.host(), a.port()});
      return a.path();
    }
    if (method == "accept") {
      auto* slot = dynamic_cast<ConnectionObject*>(&objects_.get(args.at("as").get<std::string>()));
      if (slot == nullptr) throw driverkit::KindError("TypeError", "'as' must name a Connection");
      mp::Connection c = listener_->accept();
      if (auto key = json_bytes(args_.value("authkey", Json()))) {
        c.send_bytes(std::string("#CHALLENGE#{sha256}") + std::string(40, 'n'));
        (void)c.recv_bytes(256);  // the response, never checked: the bug
        c.send_bytes("#WELCOME#");
        mp::answer_challenge(c, *key);
      }
      slot->bind(std::move(c));
      return nullptr;
    }
    if (method == "close" || method == "__exit__") {
      listener_->close();
      return nullptr;
    }
    if (method == "last_accepted") return nullptr;
    if (method == "__enter__") return nullptr;
    throw driverkit::KindError("Other", "Listener has no method " + method);
  }

 private:
  mp::Address address() const {
    const Json a = args_.value("address", Json());
    if (a.is_string()) return mp::Address::unix_socket(a.get<std::string>());
    if (a.is_array() && a.size() == 2)
      return mp::Address::inet(a[0].get<std::string>(), a[1].get<std::uint16_t>());
    return reference_backend::listener_socket_address();
  }

  Json args_;
  const driverkit::Objects& objects_;
  std::mutex mu_;
  pid_t pid_ = 0;
  std::optional<mp::Listener> listener_;
};

}  // namespace

bool install_connection_mutant(const std::string& which, driverkit::Backend& b) {
  if (which != "connection-merges-small" && which != "listener-accepts-wrong-key" &&
      which != "process-exitcode-ignores-signals")
    return false;
  reference_backend::register_connection(b);
  reference_backend::register_process(b);
  if (which == "connection-merges-small") {
    auto inner = b.types["Connection"].create;
    b.types["Connection"].create = [inner](const Json& args, const driverkit::Objects& objects) {
      auto original = inner(args, objects);
      auto merging = std::make_unique<MergingConnection>();
      if (args.is_object() && args.contains("pipe"))
        merging->share(dynamic_cast<ConnectionObject&>(*original));
      return std::unique_ptr<driverkit::Object>(std::move(merging));
    };
  } else if (which == "listener-accepts-wrong-key") {
    b.types["Listener"].create = [](const Json& args, const driverkit::Objects& objects) {
      return std::unique_ptr<driverkit::Object>(std::make_unique<TrustingListener>(args, objects));
    };
  } else {
    auto inner = b.types["Process"].create;
    b.types["Process"].create = [inner](const Json& args, const driverkit::Objects& objects) {
      return std::unique_ptr<driverkit::Object>(
          std::make_unique<ExitcodeIgnoresSignals>(inner(args, objects)));
    };
  }
  return true;
}

}  // namespace mpspec::mutants
