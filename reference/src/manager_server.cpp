// The manager server: the typeid registry, the object table with reference counts, one thread
// per client connection, and the server task that mp::Manager::start() runs in its child.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "manager_internal.hpp"
#include "mp/errors.hpp"
#include "mp/manager.hpp"
#include "mp/process.hpp"

namespace mp {

const char* RemoteError::kind() const noexcept { return "RemoteError"; }
const char* StopIteration::kind() const noexcept { return "StopIteration"; }

void CallContext::check() const {
  if (stopping_ != nullptr && stopping_->load(std::memory_order_relaxed)) {
    abandoned_ = true;
    throw EOFError("manager server is shutting down");
  }
  if (fd_ >= 0) {
    pollfd p{fd_, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0) {
      abandoned_ = true;
      throw EOFError("the client went away");
    }
  }
}

namespace manager_detail {

// The open client connections of a server, by client id (for CallContext::client_alive).
class Clients {
 public:
  void set(std::uint64_t client, int fd) {
    std::lock_guard<std::mutex> g(mu_);
    fds_[client] = fd;
  }
  void erase(std::uint64_t client) {
    std::lock_guard<std::mutex> g(mu_);
    fds_.erase(client);
  }
  bool alive(std::uint64_t client) const {
    std::lock_guard<std::mutex> g(mu_);  // the fd stays open while it is in the table
    auto it = fds_.find(client);
    if (it == fds_.end()) return false;
    pollfd p{it->second, POLLRDHUP, 0};
    return !(::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0);
  }

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, int> fds_;
};

}  // namespace manager_detail

bool CallContext::client_alive(std::uint64_t client) const {
  if (client == client_) return true;
  return clients_ != nullptr && clients_->alive(client);
}

namespace manager_detail {

void register_builtins(const std::function<void(std::string, TypeidSpec)>& add);

namespace {

// ---- Registry ----

struct Registry {
  std::mutex mu;
  std::map<std::string, TypeidSpec, std::less<>> specs;
  bool builtins = false;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: usable from any static destructor
  return *r;
}

void ensure_builtins_locked(Registry& r) {
  if (r.builtins) return;
  r.builtins = true;
  register_builtins([&](std::string name, TypeidSpec spec) {
    for (const auto& [method, typeid_name] : spec.method_to_typeid)
      if (std::find(spec.exposed.begin(), spec.exposed.end(), method) == spec.exposed.end())
        spec.exposed.push_back(method);
    r.specs.emplace(std::move(name), std::move(spec));
  });
}

}  // namespace

void ensure_builtins() {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  ensure_builtins_locked(r);
}

void add_typeid(std::string name, TypeidSpec spec) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  ensure_builtins_locked(r);
  for (const auto& [method, typeid_name] : spec.method_to_typeid)
    if (std::find(spec.exposed.begin(), spec.exposed.end(), method) == spec.exposed.end())
      spec.exposed.push_back(method);
  if (!r.specs.emplace(name, std::move(spec)).second)
    throw ValueError("typeid '" + name + "' is already registered");
}

std::optional<TypeidSpec> find_typeid(std::string_view name) {
  Registry& r = registry();
  std::lock_guard<std::mutex> g(r.mu);
  ensure_builtins_locked(r);
  auto it = r.specs.find(name);
  if (it == r.specs.end()) return std::nullopt;
  return it->second;
}

// ---- Addresses ----

Value address_to_value(const Address& a) {
  if (a.family() == Address::Family::kInet)
    return Value::list({"inet", a.host(), static_cast<std::int64_t>(a.port())});
  return Value::list({"unix", Value::bytes(a.path()), 0});
}

Address address_from_value(const Value& v) {
  const List& l = v.as_list();
  if (l.at(0).as_string() == "inet")
    return Address::inet(l.at(1).as_string(), static_cast<std::uint16_t>(l.at(2).as_int()));
  const Bytes& b = l.at(1).as_bytes();
  return Address::unix_socket(std::string(reinterpret_cast<const char*>(b.data()), b.size()));
}

bool spin_readable(int fd, int spin_us) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us);
  pollfd p{fd, POLLIN, 0};
  do {
    if (::poll(&p, 1, 0) > 0) return true;
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

void send_fd(int socket, int fd) {
  char byte = 'U';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  for (;;) {
    if (::sendmsg(socket, &msg, MSG_NOSIGNAL) == 1) return;
    if (errno != EINTR) throw OSError(errno, std::strerror(errno));
  }
}

int recv_fd(int socket) {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n < 0) throw OSError(errno, std::strerror(errno));
  if (n == 0) throw EOFError();
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || byte != 'U')
    throw OSError("the manager server did not pass a connection");
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return fd;
}

namespace {

// ---- The server ----

struct TypeInfo {
  std::string name;
  std::unordered_set<std::string> exposed;
  List exposed_list;
  std::map<std::string, std::string, std::less<>> method_to_typeid;
};

struct Entry {
  std::shared_ptr<Referent> obj;
  std::shared_ptr<const TypeInfo> type;
  std::int64_t refs = 0;
};

Value reply(std::string_view kind, Value payload) {
  return Value(List{Value(std::string(kind)), std::move(payload)});
}

Value traceback(const std::string& message) { return reply(kTraceback, Value(message)); }

struct ServerState {
  explicit ServerState(std::string key) : authkey(std::move(key)) {}

  const std::string authkey;
  std::atomic<bool> stopping{false};
  int wake[2] = {-1, -1};

  // Connections being served (to shut them down at stop) and the threads serving them.
  std::mutex conns_mu;
  std::set<int> conn_fds;
  int threads = 0;
  std::condition_variable threads_cv;
  std::uint64_t next_client = 1;
  Clients clients;

  // Objects.
  std::mutex objects_mu;
  std::unordered_map<std::uint64_t, Entry> objects;
  std::unordered_map<const Referent*, std::uint64_t> ids;
  std::uint64_t next_id = 1;
  std::map<std::string, std::shared_ptr<const TypeInfo>, std::less<>> types;

  ~ServerState() {
    for (int fd : wake)
      if (fd >= 0) ::close(fd);
  }

  void request_stop() {
    stopping.store(true);
    const char byte = 's';
    [[maybe_unused]] ssize_t n = ::write(wake[1], &byte, 1);
  }

  // The TypeInfo of a typeid (cached); nullptr if unknown. With objects_mu held.
  std::shared_ptr<const TypeInfo> type_locked(std::string_view name) {
    if (auto it = types.find(name); it != types.end()) return it->second;
    std::optional<TypeidSpec> spec = find_typeid(name);
    if (!spec) return nullptr;
    auto info = std::make_shared<TypeInfo>();
    info->name = std::string(name);
    for (const auto& m : spec->exposed) {
      if (info->exposed.insert(m).second) info->exposed_list.emplace_back(m);
    }
    for (const auto& [m, t] : spec->method_to_typeid) {
      if (info->exposed.insert(m).second) info->exposed_list.emplace_back(m);
      info->method_to_typeid.emplace(m, t);
    }
    types.emplace(std::string(name), info);
    return info;
  }

  // Stores `obj` (or counts one more reference to it) and returns [id, exposed].
  std::pair<std::uint64_t, Value> add(std::shared_ptr<Referent> obj,
                                      std::shared_ptr<const TypeInfo> type) {
    std::lock_guard<std::mutex> g(objects_mu);
    auto [it, fresh] = ids.try_emplace(obj.get(), next_id);
    if (fresh) {
      ++next_id;
      objects.emplace(it->second, Entry{std::move(obj), type, 1});
    } else {
      ++objects.at(it->second).refs;
    }
    return {it->second, type->exposed_list};
  }

  std::optional<std::pair<std::shared_ptr<Referent>, std::shared_ptr<const TypeInfo>>> get(
      std::uint64_t id) {
    std::lock_guard<std::mutex> g(objects_mu);
    auto it = objects.find(id);
    if (it == objects.end()) return std::nullopt;
    return std::make_pair(it->second.obj, it->second.type);
  }

  Value control(CallContext& ctx, const std::string& method, const List& args, const Dict& kwds,
                bool& stop_after) {
    if (method == "create") {
      if (args.empty() || !args[0].is_string())
        return traceback("TypeError: create needs a typeid");
      const std::string& name = args[0].as_string();
      std::shared_ptr<const TypeInfo> type;
      {
        std::lock_guard<std::mutex> g(objects_mu);
        type = type_locked(name);
      }
      if (!type) return traceback("KeyError: typeid '" + name + "' is not registered");
      std::optional<TypeidSpec> spec = find_typeid(name);
      if (!spec || !spec->factory)
        return traceback("TypeError: typeid '" + name + "' cannot be created (no factory)");
      const List cargs = args.size() > 1 && args[1].is_list() ? args[1].as_list() : List{};
      const Dict ckwds = args.size() > 2 && args[2].is_dict() ? args[2].as_dict() : kwds;
      std::shared_ptr<Referent> obj;
      try {
        obj = spec->factory(cargs, ckwds);
      } catch (const Error& e) {
        return traceback(std::string(e.kind()) + ": " + e.what());
      } catch (const std::exception& e) {
        return traceback(std::string("RuntimeError: ") + e.what());
      }
      if (!obj) return traceback("TypeError: the factory of '" + name + "' returned nothing");
      auto [id, exposed] = add(std::move(obj), type);
      return reply(kReturn, Value::list({static_cast<std::int64_t>(id), std::move(exposed)}));
    }
    if (method == "incref" || method == "decref" || method == "get_methods") {
      if (args.empty() || !args[0].is_int()) return traceback("TypeError: needs an object id");
      const auto id = static_cast<std::uint64_t>(args[0].as_int());
      std::shared_ptr<Referent> released;  // destroyed outside the lock
      std::lock_guard<std::mutex> g(objects_mu);
      auto it = objects.find(id);
      if (it == objects.end())
        return traceback("KeyError: no object with id " + std::to_string(id));
      if (method == "get_methods") return reply(kReturn, it->second.type->exposed_list);
      if (method == "incref") {
        ++it->second.refs;
      } else if (--it->second.refs <= 0) {
        released = std::move(it->second.obj);
        ids.erase(released.get());
        objects.erase(it);
      }
      return reply(kReturn, Value());
    }
    if (method == "dummy") return reply(kReturn, Value());
    if (method == "number_of_objects") {
      std::lock_guard<std::mutex> g(objects_mu);
      return reply(kReturn, static_cast<std::int64_t>(objects.size()));
    }
    if (method == "shutdown") {
      stop_after = true;
      return reply(kReturn, Value());
    }
    (void)ctx;
    return traceback("AssertionError: '" + method + "' unrecognized");
  }

  Value dispatch(CallContext& ctx, const Value& request, bool& stop_after) {
    if (!request.is_list() || request.as_list().size() != 4)
      return traceback("TypeError: malformed request");
    const List& r = request.as_list();
    if (!r[1].is_string() || !r[2].is_list() || !r[3].is_dict())
      return traceback("TypeError: malformed request");
    const std::string& method = r[1].as_string();
    const List& args = r[2].as_list();
    const Dict& kwds = r[3].as_dict();
    if (r[0].is_none()) return control(ctx, method, args, kwds, stop_after);
    if (!r[0].is_int()) return traceback("TypeError: malformed object id");
    const auto id = static_cast<std::uint64_t>(r[0].as_int());
    auto found = get(id);
    if (!found) return traceback("KeyError: no object with id " + std::to_string(id));
    auto& [obj, type] = *found;
    try {
      if (method == kGetValue) return reply(kReturn, obj->value());
      if (type->exposed.count(method) == 0)
        return traceback("AttributeError: method '" + method + "' of '" + type->name +
                         "' object is not in exposed=" + Value(type->exposed_list).repr());
      if (auto m2t = type->method_to_typeid.find(method); m2t != type->method_to_typeid.end()) {
        std::shared_ptr<Referent> sub = obj->call_referent(ctx, method, args, kwds);
        std::shared_ptr<const TypeInfo> subtype;
        {
          std::lock_guard<std::mutex> g(objects_mu);
          subtype = type_locked(m2t->second);
        }
        if (!sub || !subtype)
          return traceback("TypeError: method '" + method + "' returned no referent of typeid '" +
                           m2t->second + "'");
        auto [sub_id, exposed] = add(std::move(sub), subtype);
        return reply(kProxy, Value::list({m2t->second, static_cast<std::int64_t>(sub_id),
                                          std::move(exposed)}));
      }
      return reply(kReturn, obj->call(ctx, method, args, kwds));
    } catch (const Error& e) {
      return reply(kError, Value::list({e.kind(), e.what()}));
    } catch (const std::exception& e) {
      return reply(kError, Value::list({"RuntimeError", e.what()}));
    }
  }
};

// How long a server thread checks for its client's next request before it sleeps.
constexpr int kServerSpinUs = 50;

// Serves one client connection until it closes (or the server stops).
void serve_client(std::shared_ptr<ServerState> st, Connection conn) {
  int fd = conn.fileno();
  std::uint64_t client = 0;
  try {
    deliver_challenge(conn, st->authkey);
    answer_challenge(conn, st->authkey);
    {
      std::lock_guard<std::mutex> g(st->conns_mu);
      client = st->next_client++;
    }
    st->clients.set(client, fd);
    CallContext ctx(client, fd, &st->stopping, &st->clients);
    for (;;) {
      Value request;
      try {
        spin_readable(fd, kServerSpinUs);
        request = conn.recv();
      } catch (const ValueError& e) {  // not a pickle of a value: the stream is still usable
        conn.send(traceback(std::string("ValueError: ") + e.what()));
        continue;
      }
      if (request.is_list() && request.as_list().size() == 4 && request.as_list()[0].is_none() &&
          request.as_list()[1].is_string() && request.as_list()[1].as_string() == kUpgrade) {
        auto [mine, theirs] = Pipe(true, PipeKind::kMessages);
        send_fd(conn.fileno(), theirs.fileno());
        theirs.close();
        std::lock_guard<std::mutex> g(st->conns_mu);
        if (st->stopping.load()) break;
        st->conn_fds.erase(fd);
        st->clients.set(client, mine.fileno());
        conn = std::move(mine);  // closes the stream
        fd = conn.fileno();
        st->conn_fds.insert(fd);
        ctx = CallContext(client, fd, &st->stopping, &st->clients);
        continue;
      }
      bool stop_after = false;
      Value answer = st->dispatch(ctx, request, stop_after);
      if (ctx.abandoned()) break;
      conn.send(answer);
      if (stop_after) st->request_stop();
    }
  } catch (...) {  // end of file, a failed handshake, a broken connection: this client is done
  }
  if (client != 0) {
    st->clients.erase(client);
    // Every referent learns that this client has gone (a robust lock it owned is now free).
    std::vector<std::shared_ptr<Referent>> referents;
    {
      std::lock_guard<std::mutex> g(st->objects_mu);
      referents.reserve(st->objects.size());
      for (const auto& [id, entry] : st->objects) referents.push_back(entry.obj);
    }
    for (const auto& r : referents) {
      try {
        r->client_gone(client);
      } catch (...) {
      }
    }
  }
  {
    std::lock_guard<std::mutex> g(st->conns_mu);
    st->conn_fds.erase(fd);
  }
  conn.close();
  std::lock_guard<std::mutex> g(st->conns_mu);
  if (--st->threads == 0) st->threads_cv.notify_all();
}

}  // namespace

void serve(const Address& address, const std::string& authkey, const ServeHooks& hooks) {
  ensure_builtins();
  auto st = std::make_shared<ServerState>(authkey);
  if (::pipe2(st->wake, O_CLOEXEC | O_NONBLOCK) != 0) throw OSError(errno, std::strerror(errno));
  Listener listener(address, 128);
  if (hooks.on_listening) hooks.on_listening(listener.address());
  for (;;) {
    pollfd fds[3] = {
        {listener.fileno(), POLLIN, 0}, {st->wake[0], POLLIN, 0}, {hooks.stop_fd, POLLIN, 0}};
    const int n = ::poll(fds, hooks.stop_fd >= 0 ? 3 : 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0 || (hooks.stop_fd >= 0 && fds[2].revents != 0) || st->stopping.load())
      break;
    if (fds[0].revents == 0) continue;
    try {
      Connection conn = listener.accept();  // no authkey: the client's thread authenticates
      std::lock_guard<std::mutex> g(st->conns_mu);
      st->conn_fds.insert(conn.fileno());
      ++st->threads;
      try {
        std::thread(serve_client, st, std::move(conn)).detach();
      } catch (...) {
        --st->threads;
        throw;
      }
    } catch (const std::exception&) {  // e.g. the client left at once, EMFILE: keep serving
    }
  }
  st->stopping.store(true);
  listener.close();  // removes a filesystem socket
  std::unique_lock<std::mutex> lk(st->conns_mu);
  for (int fd : st->conn_fds) ::shutdown(fd, SHUT_RDWR);
  // Threads notice the stop at once (end of file) or within ~100 ms (CallContext::wait);
  // one stuck in a referent that does not wait that way is left behind.
  st->threads_cv.wait_for(lk, std::chrono::seconds(3), [&] { return st->threads == 0; });
  lk.unlock();
  std::unordered_map<std::uint64_t, Entry> objects;
  {
    std::lock_guard<std::mutex> g(st->objects_mu);
    objects.swap(st->objects);
    st->ids.clear();
  }
  objects.clear();  // releases every referent
}

namespace {

// ---- The server task (Manager::start) ----

int g_term_pipe[2] = {-1, -1};

}  // namespace

Address decode_address_arg(const std::string& s);

namespace {

void on_sigterm(int) {
  const int saved = errno;
  const char byte = 't';
  [[maybe_unused]] ssize_t n = ::write(g_term_pipe[1], &byte, 1);
  errno = saved;
}

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string unhex(std::string_view s) {
  std::string out;
  auto v = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (std::size_t i = 0; i + 1 < s.size(); i += 2)
    out.push_back(static_cast<char>(v(s[i]) * 16 + v(s[i + 1])));
  return out;
}

int server_task(const TaskArgs& args) {
  ::signal(SIGINT, SIG_IGN);  // as CPython's server (bpo-36368)
  if (args.size() != 2) return 2;
  const Address address = decode_address_arg(args[0]);
  Connection report(std::stoi(args[1]), false, true);
  if (::pipe2(g_term_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
    struct sigaction sa {};
    sa.sa_handler = on_sigterm;
    ::sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
  }
  try {
    ServeHooks hooks;
    hooks.stop_fd = g_term_pipe[0];
    hooks.on_listening = [&](const Address& bound) {
      report.send(Value::list({"ok", address_to_value(bound)}));
      report.close();
    };
    serve(address, current_process().authkey(), hooks);
  } catch (const Error& e) {
    if (!report.closed()) report.send(Value::list({"error", e.kind(), e.what()}));
    return 1;
  } catch (const std::exception& e) {
    if (!report.closed()) report.send(Value::list({"error", "RuntimeError", e.what()}));
    return 1;
  }
  return 0;
}

}  // namespace

std::string encode_address_arg(const Address& a) {
  const bool inet = a.family() == Address::Family::kInet;
  return std::string(inet ? "i:" : "u:") + std::to_string(a.port()) + ":" + hex(a.path());
}

Address decode_address_arg(const std::string& s) {
  const std::size_t colon = s.find(':', 2);
  if (s.size() < 4 || s[1] != ':' || colon == std::string::npos)
    throw ValueError("bad manager address argument");
  const std::string text = unhex(std::string_view(s).substr(colon + 1));
  if (s[0] == 'i')
    return Address::inet(text, static_cast<std::uint16_t>(std::stoi(s.substr(2, colon - 2))));
  return Address::unix_socket(text);
}

const char* server_task_name() { return "mp.manager.server"; }

namespace {
const TaskRegistration kServerTask("mp.manager.server", &server_task);
}  // namespace

}  // namespace manager_detail
}  // namespace mp
