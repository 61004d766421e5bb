// Pipe, Connection, Listener and the connection half of Module in the reference backend:
// mp::Pipe / mp::Connection / mp::Listener / mp::Client / mp::wait behind the protocol's
// methods (spec/protocol.md §6, spec/connection/).
//
// A Pipe is made in the driver and its ends are inherited by the actors (Connection entries
// with `pipe` and `end`); an end with an `owner` is closed in every other process
// (release_copy). A Connection entry without args is a slot that Listener.accept(as=...) or
// Module.client(as=...) fills in the calling actor. A Listener is process-local: each actor
// binds its own at its first call.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mp/connection.hpp>
#include <mp/errors.hpp>
#include <mp/value.hpp>
#include <mp/wait.hpp>
#include <mutex>

#include "bytes_json.hpp"
#include "types.hpp"

namespace mpspec::reference_backend {

using driverkit::Json;
using driverkit::KindError;

// {"$uncarriable": null} (spec/protocol.md §4, [protocol.values.uncarriable]): an object libmp
// cannot carry. An mp::Value can hold nothing outside the value domain, so the adapter stands
// for it with what libmp's codec refuses: a string that is not valid UTF-8, which
// mp::pickle_dumps (and so Connection::send) rejects with mp::ValueError before writing
// anything.
bool is_uncarriable(const Json& j) {
  return j.is_object() && j.size() == 1 && j.contains("$uncarriable");
}

mp::Value to_value(const Json& j) {
  if (is_uncarriable(j)) return mp::Value(std::string("\xff\xfe not UTF-8"));
  switch (j.type()) {
    case Json::value_t::null:
      return mp::Value();
    case Json::value_t::boolean:
      return mp::Value(j.get<bool>());
    case Json::value_t::number_integer:
      return mp::Value(j.get<std::int64_t>());
    case Json::value_t::number_unsigned:
      if (j.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
        throw KindError("OverflowError", "integer outside the value domain (int64)");
      return mp::Value(static_cast<std::int64_t>(j.get<std::uint64_t>()));
    case Json::value_t::number_float:
      return mp::Value(j.get<double>());
    case Json::value_t::string:
      return mp::Value(j.get<std::string>());
    case Json::value_t::array: {
      mp::Value::List list;
      for (const auto& item : j) list.push_back(to_value(item));
      return mp::Value(std::move(list));
    }
    case Json::value_t::object: {
      if (is_bytes_json(j)) {
        auto octets = json_bytes(j);
        if (!octets) throw KindError("TypeError", "bad base64 in a $bytes value");
        return mp::Value::bytes(*octets);
      }
      mp::Dict dict;
      for (const auto& [key, item] : j.items()) dict.insert_or_assign(key, to_value(item));
      return mp::Value(std::move(dict));
    }
    default:
      throw KindError("TypeError", "value outside the value domain: " + j.dump());
  }
}

Json from_value(const mp::Value& v) {
  switch (v.type()) {
    case mp::Value::Type::kNone:
      return nullptr;
    case mp::Value::Type::kBool:
      return v.as_bool();
    case mp::Value::Type::kInt:
      return v.as_int();
    case mp::Value::Type::kFloat:
      return v.as_float();
    case mp::Value::Type::kString:
      return v.as_string();
    case mp::Value::Type::kBytes: {
      const auto& b = v.as_bytes();
      return bytes_json(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
    }
    case mp::Value::Type::kList: {
      Json out = Json::array();
      for (const auto& item : v.as_list()) out.push_back(from_value(item));
      return out;
    }
    case mp::Value::Type::kDict: {
      Json out = Json::object();
      for (const auto& [key, item] : v.as_dict()) out[key] = from_value(item);
      return out;
    }
  }
  return nullptr;
}

namespace {

std::string bytes_arg(const Json& args, const char* key) {
  if (!args.contains(key)) throw KindError("TypeError", std::string("missing argument ") + key);
  auto octets = json_bytes(args[key]);
  if (!octets)
    throw KindError("TypeError", std::string(key) + " must be bytes ({\"$bytes\": ...})");
  return *octets;
}

std::optional<std::int64_t> int_arg(const Json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return std::nullopt;
  if (!args[key].is_number_integer())
    throw KindError("TypeError", std::string(key) + " must be an int or null");
  return args[key].get<std::int64_t>();
}

class PipeObject : public driverkit::Object {
 public:
  explicit PipeObject(bool duplex) : ends_(mp::Pipe(duplex)) {}
  Json call(const std::string& method, const Json&) override {
    throw KindError("Other", "Pipe has no method " + method + "; call its Connection ends");
  }
  // Hands one end to its Connection object, once.
  mp::Connection take(int end) {
    if (end != 0 && end != 1) throw KindError("ValueError", "end must be 0 or 1");
    if (taken_[end]) throw KindError("ValueError", "this end of the Pipe is already named");
    taken_[end] = true;
    return std::move(end == 0 ? ends_.first : ends_.second);
  }

 private:
  std::pair<mp::Connection, mp::Connection> ends_;
  bool taken_[2] = {false, false};
};

}  // namespace

void ConnectionObject::bind(mp::Connection connection) {
  auto fresh = std::make_shared<mp::Connection>(std::move(connection));
  std::shared_ptr<mp::Connection> old;
  {
    std::lock_guard<std::mutex> g(mu_);
    old = std::exchange(conn_, std::move(fresh));
  }
  if (old) old->close();
}

std::shared_ptr<mp::Connection> ConnectionObject::get() const {
  std::lock_guard<std::mutex> g(mu_);
  if (!conn_) throw KindError("Other", "this Connection slot holds no connection in this actor");
  return conn_;
}

void ConnectionObject::release_copy() {
  std::lock_guard<std::mutex> g(mu_);
  if (conn_) conn_->close();
}

int ConnectionObject::fileno() const { return get()->fileno(); }

Json ConnectionObject::call(const std::string& method, const Json& args) {
  std::shared_ptr<mp::Connection> c = get();
  if (method == "send") {
    if (!args.contains("obj")) throw KindError("TypeError", "send() needs 'obj'");
    const Json& obj = args["obj"];
    if (obj.is_object() && obj.size() == 1 && obj.contains("$ref") && objects_ != nullptr) {
      // Feature `refs`: libmp's shared values live in memory that processes inherit and have no
      // encoding for a Connection (mp::Connection::send takes an mp::Value; there is no
      // conversion from a shared value), so the attempt is refused before anything is written,
      // as [sharedctypes.process.inherit_only] asks.
      if (is_shared_value(objects_->ref(obj))) {
        throw KindError("RuntimeError",
                        "shared values are shared between processes only through inheritance");
      }
      throw KindError("TypeError", "this object cannot be sent on a Connection");
    }
    c->send(to_value(obj));
    return nullptr;
  }
  if (method == "recv") return from_value(c->recv());
  if (method == "send_bytes") {
    const std::string buf = bytes_arg(args, "buf");
    c->send_bytes(std::string_view(buf), int_arg(args, "offset").value_or(0),
                  int_arg(args, "size"));
    return nullptr;
  }
  if (method == "recv_bytes") return bytes_json(c->recv_bytes(int_arg(args, "maxlength")));
  if (method == "recv_bytes_into") {
    std::string buf = bytes_arg(args, "buffer");
    try {
      const std::size_t n = c->recv_bytes_into(std::span<char>(buf.data(), buf.size()),
                                               int_arg(args, "offset").value_or(0));
      return Json{{"n", n}, {"buffer", bytes_json(buf)}};
    } catch (const mp::BufferTooShort& e) {
      throw KindError(e.kind(), "message longer than the buffer", bytes_json(e.message()));
    }
  }
  if (method == "poll") {
    // The protocol's default is 0 (Python's poll()); null waits without limit.
    if (!args.contains("timeout")) return c->poll(0.0);
    return c->poll(driverkit::timeout_arg(args));
  }
  if (method == "close" || method == "__exit__") {
    c->close();
    return nullptr;
  }
  if (method == "__enter__") return nullptr;  // the scope is the C++ object's lifetime
  if (method == "closed") return c->closed();
  if (method == "readable") return c->readable();
  if (method == "writable") return c->writable();
  if (method == "fileno") return c->fileno();
  throw KindError("Other", "Connection has no method " + method);
}

namespace {

// A Listener's address argument as libmp's typed Address (the checks CPython's address_type
// makes at run time are the C++ type system's; the adapter reports them with CPython's kinds).
mp::Address to_address(const Json& a, const std::string& family) {
  if (a.is_string()) {
    const std::string s = a.get<std::string>();
    if (s.rfind("\\\\", 0) == 0) throw KindError("ValueError", "Family AF_PIPE is not recognized.");
    if (!s.empty() && s[0] == '\0')
      return mp::Address::abstract_socket(std::string_view(s).substr(1));
    return mp::Address::unix_socket(s);
  }
  if (auto b = json_bytes(a)) {
    if (!b->empty() && (*b)[0] == '\0')
      return mp::Address::abstract_socket(std::string_view(*b).substr(1));
    throw KindError("ValueError", "address type of b'" + *b + "' unrecognized");
  }
  if (a.is_array() && a.size() == 2 && a[0].is_string() && a[1].is_number_integer()) {
    const auto port = a[1].get<std::int64_t>();
    if (port < 0 || port > 65535) throw KindError("OverflowError", "port must be 0-65535.");
    return mp::Address::inet(a[0].get<std::string>(), static_cast<std::uint16_t>(port));
  }
  (void)family;
  throw KindError("TypeError", "address type of " + a.dump() + " unrecognized");
}

Json address_json(const mp::Address& a) {
  if (a.family() == mp::Address::Family::kInet) return Json::array({a.host(), a.port()});
  if (a.is_abstract()) return bytes_json(a.path());
  return a.path();
}

std::optional<std::string> authkey_arg(const Json& args) {
  if (!args.contains("authkey") || args["authkey"].is_null()) return std::nullopt;
  auto key = json_bytes(args["authkey"]);
  if (!key) throw KindError("TypeError", "authkey should be a byte string");
  return *key;
}

void check_family(const Json& args) {
  if (!args.contains("family") || args["family"].is_null()) return;
  if (!args["family"].is_string()) throw KindError("TypeError", "family must be a string");
  const std::string f = args["family"].get<std::string>();
  if (f != "AF_INET" && f != "AF_UNIX")
    throw KindError("ValueError", "Family " + f + " is not recognized.");
}

ConnectionObject& slot_arg(const Json& args, const driverkit::Objects& objects) {
  if (!args.contains("as") || !args["as"].is_string())
    throw KindError("TypeError", "needs 'as', the name of a Connection slot");
  auto* slot = dynamic_cast<ConnectionObject*>(&objects.get(args["as"].get<std::string>()));
  if (slot == nullptr) throw KindError("TypeError", "'as' must name a Connection");
  return *slot;
}

// ---- Sockets of Listeners made without an address ----
//
// libmp names such a socket in $TMPDIR and unlinks it when the Listener closes; an actor killed
// at teardown never closes it. So the adapter puts them in one directory of the driver's
// (created at start-up, named to independent actors by an environment variable), empties it
// when the setup's last Listener object goes (its actors are gone by then), and removes it at
// exit and from the kit's terminate hook ([protocol.robust.no_stray]).

constexpr const char* kListenerDirEnv = "MPSPEC_REFERENCE_LISTENER_DIR";
char g_listener_dir[512];        // the driver's directory ("": none, use libmp's default)
pid_t g_listener_dir_owner = 0;  // the driver process, which removes it
int g_live_listeners = 0;        // ListenerObjects alive in this process

// Unlinks every entry of g_listener_dir and, when `remove_dir`, the directory itself.
// Async-signal-safe (open, getdents64, unlinkat, rmdir, close).
void empty_listener_dir(bool remove_dir) {
  if (g_listener_dir[0] == '\0' || g_listener_dir_owner != ::getpid()) return;
  const int saved_errno = errno;
  const int fd = ::open(g_listener_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    alignas(8) char buf[4096];
    for (;;) {
      const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
        unsigned short reclen;
        std::memcpy(&reclen, buf + off + 16, sizeof reclen);
        const char* name = buf + off + 19;
        if (!(name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))))
          ::unlinkat(fd, name, 0);
        off += reclen;
      }
    }
    ::close(fd);
  }
  if (remove_dir) ::rmdir(g_listener_dir);
  errno = saved_errno;
}

void remove_listener_dir_on_signal() { empty_listener_dir(true); }

void make_listener_dir() {
  if (const char* inherited = std::getenv(kListenerDirEnv); inherited != nullptr) {
    // An independent actor: the driver's directory (the driver removes it).
    if (std::strlen(inherited) < sizeof g_listener_dir) std::strcpy(g_listener_dir, inherited);
    return;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                      "/mpspec-reference-listeners-XXXXXX";
  if (templ.size() >= sizeof g_listener_dir || ::mkdtemp(templ.data()) == nullptr) return;
  std::strcpy(g_listener_dir, templ.c_str());
  g_listener_dir_owner = ::getpid();
  ::setenv(kListenerDirEnv, g_listener_dir, 1);  // at start-up: no other thread yet
  driverkit::add_terminate_hook(remove_listener_dir_on_signal);
  std::atexit([] { empty_listener_dir(true); });
}

// A fresh AF_UNIX address for a Listener made without one.
mp::Address arbitrary_unix_address() {
  if (g_listener_dir[0] == '\0') return mp::Address::arbitrary(mp::Address::Family::kUnix);
  const mp::Address libmp_choice = mp::Address::arbitrary(mp::Address::Family::kUnix);
  const std::string& p = libmp_choice.path();
  return mp::Address::unix_socket(std::string(g_listener_dir) + p.substr(p.rfind('/')));
}

// Process-local: constructed in each actor at its first call (spec/protocol.md §6).
class ListenerObject : public driverkit::Object {
 public:
  ListenerObject(Json args, const driverkit::Objects& objects)
      : args_(std::move(args)), objects_(objects) {
    ++g_live_listeners;
  }
  ~ListenerObject() override {
    listener_.reset();
    // The setup's last Listener in the driver: its actors are gone; remove what they left.
    if (--g_live_listeners == 0) empty_listener_dir(false);
  }

  Json call(const std::string& method, const Json& args) override {
    std::lock_guard<std::mutex> g(mu_);
    if (owner_pid_ != ::getpid()) {
      listener_.reset();
      listener_.emplace(make());
      owner_pid_ = ::getpid();
    }
    mp::Listener& l = *listener_;
    if (method == "accept") {
      ConnectionObject& slot = slot_arg(args, objects_);
      slot.bind(l.accept());
      return nullptr;
    }
    if (method == "address") return address_json(l.address());
    if (method == "last_accepted") {
      if (!l.last_accepted()) return nullptr;
      return address_json(*l.last_accepted());
    }
    if (method == "close" || method == "__exit__") {
      l.close();
      return nullptr;
    }
    if (method == "__enter__") return nullptr;
    throw KindError("Other", "Listener has no method " + method);
  }

 private:
  mp::Listener make() const {
    check_family(args_);
    const auto key = authkey_arg(args_);
    const std::int64_t backlog = int_arg(args_, "backlog").value_or(1);
    if (!args_.contains("address") || args_["address"].is_null()) {
      // No address: a free one of the family (AF_UNIX by default, as CPython on POSIX).
      const std::string family = args_.value("family", Json()).is_string()
                                     ? args_["family"].get<std::string>()
                                     : std::string("AF_UNIX");
      if (family == "AF_INET")
        return mp::Listener(mp::Address::arbitrary(mp::Address::Family::kInet),
                            static_cast<int>(backlog), key);
      return mp::Listener(arbitrary_unix_address(), static_cast<int>(backlog), key);
    }
    return mp::Listener(to_address(args_["address"], ""), static_cast<int>(backlog), key);
  }

  Json args_;
  const driverkit::Objects& objects_;
  std::mutex mu_;
  pid_t owner_pid_ = 0;
  std::optional<mp::Listener> listener_;
};

}  // namespace

mp::Address listener_socket_address() { return arbitrary_unix_address(); }

Json connection_module_call(const std::string& method, const Json& args,
                            const driverkit::Objects& objects) {
  if (method == "client") {
    ConnectionObject& slot = slot_arg(args, objects);
    check_family(args);
    if (!args.contains("address")) throw KindError("TypeError", "client() needs 'address'");
    slot.bind(mp::Client(to_address(args["address"], ""), authkey_arg(args)));
    return nullptr;
  }
  if (method == "wait") {
    if (!args.contains("object_list") || !args["object_list"].is_array())
      throw KindError("TypeError", "wait() needs 'object_list', a list of {\"$ref\": name}");
    std::vector<int> fds;
    std::vector<std::string> names;
    for (const auto& ref : args["object_list"]) {
      driverkit::Object& o = objects.ref(ref);
      const std::string name = ref["$ref"].get<std::string>();
      if (auto* c = dynamic_cast<ConnectionObject*>(&o)) {
        fds.push_back(c->fileno());
      } else if (auto* p = dynamic_cast<Waitable*>(&o)) {
        fds.push_back(p->wait_fd());
      } else {
        throw KindError("TypeError", "'" + name + "' cannot be waited for");
      }
      names.push_back(name);
    }
    const std::vector<int> ready =
        mp::wait(std::span<const int>(fds), driverkit::timeout_arg(args));
    Json out = Json::array();
    for (std::size_t i = 0; i < fds.size(); ++i)
      if (std::find(ready.begin(), ready.end(), fds[i]) != ready.end()) out.push_back(names[i]);
    return out;
  }
  throw KindError("Other", "Module has no method " + method);
}

void register_connection(driverkit::Backend& b) {
  make_listener_dir();
  // The marker {"$uncarriable": null} is understood by Connection.send (to_value above).
  b.features.push_back("uncarriable");
  b.types["Pipe"] = {
      {}, [](const Json& args, const driverkit::Objects&) {
        return std::make_unique<PipeObject>(driverkit::bool_arg(args, "duplex", true));
      }};
  b.types["Connection"] = {
      {"send", "recv", "send_bytes", "recv_bytes", "recv_bytes_into", "poll", "close", "closed",
       "readable", "writable", "fileno", "__enter__", "__exit__"},
      [](const Json& args, const driverkit::Objects& objects) {
        auto c = std::make_unique<ConnectionObject>();
        c->set_objects(&objects);
        if (args.is_object() && args.contains("pipe")) {
          auto* pipe = dynamic_cast<PipeObject*>(&objects.ref(args["pipe"]));
          if (pipe == nullptr) throw KindError("TypeError", "'pipe' must name a Pipe");
          if (!args.contains("end") || !args["end"].is_number_integer())
            throw KindError("TypeError", "a Pipe end needs 'end', 0 or 1");
          c->bind(pipe->take(args["end"].get<int>()));
        }
        return c;
      }};
  b.types["Listener"] = {{"accept", "address", "last_accepted", "close", "__enter__", "__exit__"},
                         [](const Json& args, const driverkit::Objects& objects) {
                           return std::make_unique<ListenerObject>(args, objects);
                         }};
}

}  // namespace mpspec::reference_backend
