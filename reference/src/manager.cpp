// mp::Manager and mp::Proxy: the client side of the manager protocol (per-thread connections,
// fork detection, reference counting) and the manager's life cycle (start, connect,
// serve_forever, shutdown).
#include "mp/manager.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "manager_internal.hpp"
#include "mp/barrier.hpp"
#include "mp/errors.hpp"
#include "mp/process.hpp"

namespace mp {

namespace manager_detail {
namespace {

// ---- The process id, cached (getpid() is a system call) and refreshed after fork ----

std::atomic<pid_t> g_pid{0};

pid_t my_pid() {
  pid_t p = g_pid.load(std::memory_order_relaxed);
  if (p == 0) {
    p = ::getpid();
    g_pid.store(p, std::memory_order_relaxed);
  }
  return p;
}

// ---- Errors with kinds libmp has no class for ----

const char* intern_kind(std::string_view kind) {
  static std::mutex mu;
  static auto* kinds = new std::set<std::string, std::less<>>;  // never freed: kind() pointers
  std::lock_guard<std::mutex> g(mu);
  auto it = kinds->find(kind);
  if (it == kinds->end()) it = kinds->emplace(kind).first;
  return it->c_str();
}

class KindedError final : public Error {
 public:
  KindedError(const char* kind, const std::string& message) : Error(message), kind_(kind) {}
  const char* kind() const noexcept override { return kind_; }

 private:
  const char* kind_;
};

// ---- Connections: one per (server endpoint, thread, process) ----

struct Channel {
  pid_t pid;
  Connection conn;
};

struct ThreadChannels {
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<Channel>> by_key;
};

struct Channels {
  std::mutex mu;
  std::set<ThreadChannels*> threads;
  std::unordered_set<std::string> dead;  // endpoints whose server this process shut down
};

Channels& channels() {
  static Channels* c = new Channels;  // never destroyed: proxies may outlive statics
  return *c;
}

thread_local ThreadChannels* tl_channels = nullptr;

struct ThreadGuard {
  ~ThreadGuard() {
    if (tl_channels == nullptr) return;
    {
      std::lock_guard<std::mutex> g(channels().mu);
      channels().threads.erase(tl_channels);
    }
    delete tl_channels;  // closes this thread's connections
    tl_channels = nullptr;
  }
};
thread_local ThreadGuard tl_guard;

// Around fork, every channel table is locked (Channels::mu, then each ThreadChannels::mu, the
// order purge_endpoint uses), so that the child sees consistent tables.
void atfork_prepare() {
  Channels& c = channels();
  c.mu.lock();
  for (ThreadChannels* t : c.threads) t->mu.lock();
}
void atfork_parent() {
  Channels& c = channels();
  for (ThreadChannels* t : c.threads) t->mu.unlock();
  c.mu.unlock();
}
void atfork_child() {
  g_pid.store(::getpid(), std::memory_order_relaxed);
  Channels& c = channels();
  // Every connection here is a copy of the parent's, never used in this process: close them
  // all now. A copy left open would keep the parent's connection open in the server after the
  // parent (or its thread) has gone, hiding its death from robust referents (an "mp." RLock
  // would not report OwnerDied, a dead Condition waiter would look alive).
  for (ThreadChannels* t : c.threads) {
    for (auto& [key, ch] : t->by_key) ch->conn.close();
    t->by_key.clear();
    t->mu.unlock();
  }
  // Only the forking thread exists here: forget the others' (emptied) tables.
  c.threads.clear();
  if (tl_channels != nullptr) c.threads.insert(tl_channels);
  c.mu.unlock();
}

// Registered when the program starts (before any fork that matters): the cached pid must be
// refreshed in every child.
const bool kAtforkRegistered = [] {
  ::pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  return true;
}();

ThreadChannels& this_thread_channels() {
  if (tl_channels == nullptr) {
    (void)kAtforkRegistered;
    (void)&tl_guard;  // constructs the guard for this thread
    auto* t = new ThreadChannels;
    {
      std::lock_guard<std::mutex> g(channels().mu);
      channels().threads.insert(t);
    }
    tl_channels = t;
  }
  return *tl_channels;
}

std::string endpoint_key(const Address& address, const std::string& authkey) {
  std::string k = address.family() == Address::Family::kInet ? "i" : "u";
  k += std::to_string(address.port());
  k += '\x01';
  k += address.path();
  k += '\x01';
  k += authkey;
  return k;
}

std::shared_ptr<Channel> get_channel(const std::string& key, const Address& address,
                                     const std::string& authkey) {
  ThreadChannels& tc = this_thread_channels();
  const pid_t me = my_pid();
  {
    std::lock_guard<std::mutex> g(tc.mu);
    auto it = tc.by_key.find(key);
    if (it != tc.by_key.end()) {
      if (it->second->pid == me) return it->second;
      it->second->conn.close();  // the parent's connection, copied by fork: never used here
      tc.by_key.erase(it);
    }
  }
  Connection conn = Client(address, authkey);
  if (address.family() == Address::Family::kUnix) {  // one read per message from now on
    conn.send(Value(List{Value(), Value(std::string(kUpgrade)), Value(List{}), Value(Dict{})}));
    conn = Connection(recv_fd(conn.fileno()));
  }
  auto ch = std::make_shared<Channel>(Channel{me, std::move(conn)});
  std::lock_guard<std::mutex> g(tc.mu);
  tc.by_key[key] = ch;
  return ch;
}

void drop_channel(const std::string& key, const std::shared_ptr<Channel>& ch) {
  ThreadChannels& tc = this_thread_channels();
  std::lock_guard<std::mutex> g(tc.mu);
  auto it = tc.by_key.find(key);
  if (it != tc.by_key.end() && it->second == ch) tc.by_key.erase(it);
}

// Closes every thread's connection to `key` in this process.
void purge_endpoint(const std::string& key, bool dead) {
  Channels& c = channels();
  std::lock_guard<std::mutex> g(c.mu);
  if (dead)
    c.dead.insert(key);
  else
    c.dead.erase(key);
  for (ThreadChannels* t : c.threads) {
    std::lock_guard<std::mutex> tg(t->mu);
    t->by_key.erase(key);
  }
}

bool endpoint_dead(const std::string& key) {
  Channels& c = channels();
  std::lock_guard<std::mutex> g(c.mu);
  return c.dead.count(key) != 0;
}

// How long a client checks for the reply before it sleeps.
constexpr int kClientSpinUs = 50;

// One request / reply on the calling thread's connection. `timeout`: bound on the wait for
// the reply (TimeoutError after it). A failure drops the connection (the next call reconnects).
Value roundtrip(const std::string& key, const Address& address, const std::string& authkey,
                const Value& request, std::optional<double> timeout = std::nullopt) {
  std::shared_ptr<Channel> ch = get_channel(key, address, authkey);
  try {
    ch->conn.send(request);
    spin_readable(ch->conn.fileno(), kClientSpinUs);
    if (timeout && !ch->conn.poll(*timeout))
      throw TimeoutError("no answer from the manager server");
    return ch->conn.recv();
  } catch (...) {
    drop_channel(key, ch);
    throw;
  }
}

Value control_request(std::string_view method, List args) {
  return Value(List{Value(), Value(std::string(method)), Value(std::move(args)), Value(Dict{})});
}

const std::string& reply_kind(const Value& reply) {
  if (!reply.is_list() || reply.as_list().size() != 2 || !reply.as_list()[0].is_string())
    throw RemoteError("malformed reply from the manager server");
  return reply.as_list()[0].as_string();
}

// The payload of a #RETURN reply; throws for #ERROR / #TRACEBACK; nullopt for #PROXY.
std::optional<Value> unwrap(Value reply) {
  const std::string& kind = reply_kind(reply);
  Value& payload = reply.as_list()[1];
  if (kind == kReturn) return std::move(payload);
  if (kind == kProxy) return std::nullopt;
  if (kind == kError) {
    if (payload.is_list() && payload.as_list().size() == 2 && payload.as_list()[0].is_string() &&
        payload.as_list()[1].is_string())
      throw_kind(payload.as_list()[0].as_string(), payload.as_list()[1].as_string());
    throw RemoteError("malformed error reply: " + payload.repr());
  }
  if (kind == kTraceback)
    throw RemoteError(payload.is_string() ? payload.as_string() : payload.repr());
  throw ValueError("Unrecognized message type " + Value(kind).repr());
}

}  // namespace

void throw_kind(std::string_view kind, const std::string& message) {
  if (kind == "RemoteError") throw RemoteError(message);
  if (kind == "StopIteration") throw StopIteration(message);
  if (kind == "BrokenBarrierError") throw BrokenBarrierError(message);
  static const std::unordered_set<std::string_view> known = {
      "ValueError",     "AssertionError",
      "TimeoutError",   "OwnerDied",
      "Full",           "Empty",
      "RuntimeError",   "AttributeError",
      "OSError",        "EOFError",
      "BufferTooShort", "AuthenticationError",
      "ProcessError",   "NotImplementedError",
      "TypeError",      "OverflowError",
      "IndexError",     "KeyError",
      "WorkerLost"};
  if (known.count(kind) != 0) throw_error(kind, message);
  throw KindedError(intern_kind(kind), message);
}

// ---- Proxy state ----

struct ProxyState {
  ProxyState(Token t, std::string key_, std::string endpoint, List exposed_list, pid_t holder)
      : token(std::move(t)), authkey(std::move(key_)), key(std::move(endpoint)), ref_pid(holder) {
    for (auto& e : exposed_list)
      if (e.is_string()) exposed.push_back(e.as_string());
  }

  // Drops this process's reference (bounded; errors ignored).
  ~ProxyState() {
    if (ref_pid.load() != my_pid() || endpoint_dead(key)) return;
    try {
      roundtrip(key, token.address, authkey,
                control_request("decref", {static_cast<std::int64_t>(token.id)}), 2.0);
    } catch (...) {
    }
  }

  // Takes a reference for this process if it has none yet (a forked child's first use).
  void ensure_ref() {
    const pid_t me = my_pid();
    pid_t holder = ref_pid.load(std::memory_order_relaxed);
    if (holder == me || !ref_pid.compare_exchange_strong(holder, me)) return;
    try {
      unwrap(roundtrip(key, token.address, authkey,
                       control_request("incref", {static_cast<std::int64_t>(token.id)})));
    } catch (...) {
      ref_pid.store(0);  // no reference here: nothing to drop
      throw;
    }
  }

  Value request(std::string_view method, List args, Dict kwds) {
    ensure_ref();
    return roundtrip(
        key, token.address, authkey,
        Value(List{Value(static_cast<std::int64_t>(token.id)), Value(std::string(method)),
                   Value(std::move(args)), Value(std::move(kwds))}));
  }

  Token token;
  std::string authkey;
  std::string key;  // endpoint_key(token.address, authkey)
  std::vector<std::string> exposed;
  std::atomic<pid_t> ref_pid;  // the process that holds this state's reference (0: none)
};

std::shared_ptr<ProxyState> proxy_from_reply(const ProxyState& parent, const Value& payload) {
  const List& p = payload.as_list();
  Token t{p.at(0).as_string(), parent.token.address, static_cast<std::uint64_t>(p.at(1).as_int())};
  return std::make_shared<ProxyState>(std::move(t), parent.authkey, parent.key, p.at(2).as_list(),
                                      my_pid());
}

// ---- Manager state ----

enum class State { kInitial, kStarted, kShutdown };

struct ManagerState {
  std::mutex mu;
  State state = State::kInitial;
  Address address;
  std::string authkey;
  ManagerOptions options;
  std::optional<Process> process;  // the server, when start() ran it
  pid_t owner_pid = 0;             // the process that started / connected / serves
  bool serving = false;            // serve_forever() runs in owner_pid

  ManagerState(Address a, std::string k, ManagerOptions o)
      : address(std::move(a)), authkey(std::move(k)), options(o) {}

  [[noreturn]] void bad_state() const {
    if (state == State::kShutdown) throw ProcessError("Manager has shut down");
    throw ProcessError("Already started server");
  }
};

}  // namespace manager_detail

using manager_detail::ManagerState;
using manager_detail::ProxyState;
using manager_detail::State;

struct ProxyAccess {
  static Proxy make(std::shared_ptr<ProxyState> s) { return Proxy(std::move(s)); }
};

// ---- Registry (public) ----

void register_typeid(std::string name, TypeidSpec spec) {
  if (name.empty()) throw ValueError("a typeid needs a name");
  manager_detail::add_typeid(std::move(name), std::move(spec));
}

std::optional<TypeidSpec> typeid_spec(std::string_view name) {
  return manager_detail::find_typeid(name);
}

std::shared_ptr<Referent> make_referent(std::string_view name, const List& args, const Dict& kwds) {
  std::optional<TypeidSpec> spec = manager_detail::find_typeid(name);
  if (!spec) throw ValueError("typeid '" + std::string(name) + "' is not registered");
  if (!spec->factory) throw ValueError("typeid '" + std::string(name) + "' has no factory");
  return spec->factory(args, kwds);
}

// ---- Proxy ----

Proxy::Proxy(const Token& token, std::string authkey) {
  auto s = std::make_shared<ProxyState>(
      token, authkey, manager_detail::endpoint_key(token.address, authkey), List{}, 0);
  s->ensure_ref();
  Value methods = *manager_detail::unwrap(manager_detail::roundtrip(
      s->key, s->token.address, s->authkey,
      manager_detail::control_request("get_methods", {static_cast<std::int64_t>(token.id)})));
  if (methods.is_list())
    for (auto& m : methods.as_list())
      if (m.is_string()) s->exposed.push_back(m.as_string());
  state_ = std::move(s);
}

Value Proxy::call(std::string_view method, List args, Dict kwds) const {
  Value reply = state_->request(method, std::move(args), std::move(kwds));
  std::optional<Value> v = manager_detail::unwrap(reply);
  if (v) return std::move(*v);
  // A proxy-returning method: release the new referent (by dropping its proxy).
  manager_detail::proxy_from_reply(*state_, reply.as_list()[1]);
  throw TypeError("method '" + std::string(method) + "' returns a proxy: use call_proxy()");
}

Proxy Proxy::call_proxy(std::string_view method, List args, Dict kwds) const {
  Value reply = state_->request(method, std::move(args), std::move(kwds));
  if (manager_detail::unwrap(reply))
    throw TypeError("method '" + std::string(method) + "' did not return a proxy");
  return Proxy(manager_detail::proxy_from_reply(*state_, reply.as_list()[1]));
}

Value Proxy::getvalue() const {
  Value reply = state_->request(manager_detail::kGetValue, {}, {});
  std::optional<Value> v = manager_detail::unwrap(std::move(reply));
  if (!v) throw TypeError("getvalue returned a proxy");
  return std::move(*v);
}

const Token& Proxy::token() const noexcept { return state_->token; }
const std::vector<std::string>& Proxy::exposed() const noexcept { return state_->exposed; }

// ---- Manager ----

Manager::Manager(std::optional<Address> address, std::optional<std::string> authkey,
                 ManagerOptions options)
    : state_(std::make_shared<ManagerState>(address ? *address : Address::unix_socket(""),
                                            authkey ? *authkey : current_process().authkey(),
                                            options)) {}

Manager::~Manager() {
  try {
    bool mine;
    {
      std::lock_guard<std::mutex> g(state_->mu);
      mine = state_->state == State::kStarted && state_->process &&
             state_->owner_pid == manager_detail::my_pid();
    }
    if (mine) shutdown();
  } catch (...) {
  }
}

void Manager::start() {
  ManagerState& s = *state_;
  std::lock_guard<std::mutex> g(s.mu);
  if (s.state != State::kInitial) s.bad_state();
  auto [reader, writer] = Pipe(false);
  ProcessOptions o;
  o.daemon = true;  // ends with its parent (libmp's exit handler terminates it: a clean stop)
  o.start_method = s.options.start_method;
  o.pass_fds = {writer.fileno()};
  Process p(manager_detail::server_task_name(),
            {manager_detail::encode_address_arg(s.address), std::to_string(writer.fileno())}, o);
  std::string name = p.name();
  if (name.rfind("Process-", 0) == 0) p.set_name("SyncManager-" + name.substr(8));
  p.set_authkey(s.authkey);
  p.start();
  writer.close();
  Value report;
  try {
    if (!reader.poll(30.0)) throw ProcessError("the manager server did not start within 30 s");
    report = reader.recv();
  } catch (const EOFError&) {
    p.join(5.0);
    throw ProcessError("the manager server ended before it listened");
  } catch (...) {
    p.kill();
    p.join(5.0);
    throw;
  }
  const List& r = report.as_list();
  if (r.at(0).as_string() == "error") {
    p.join(5.0);
    manager_detail::throw_kind(r.at(1).as_string(), r.at(2).as_string());
  }
  s.address = manager_detail::address_from_value(r.at(1));
  s.process = p;
  s.owner_pid = manager_detail::my_pid();
  s.state = State::kStarted;
  manager_detail::purge_endpoint(manager_detail::endpoint_key(s.address, s.authkey), false);
}

void Manager::connect() {
  ManagerState& s = *state_;
  std::lock_guard<std::mutex> g(s.mu);
  if (s.state != State::kInitial) s.bad_state();
  const std::string key = manager_detail::endpoint_key(s.address, s.authkey);
  manager_detail::purge_endpoint(key, false);
  manager_detail::unwrap(manager_detail::roundtrip(key, s.address, s.authkey,
                                                   manager_detail::control_request("dummy", {})));
  s.owner_pid = manager_detail::my_pid();
  s.state = State::kStarted;
}

void Manager::serve_forever() {
  ManagerState& s = *state_;
  Address address = Address::unix_socket("");
  std::string authkey;
  {
    std::lock_guard<std::mutex> g(s.mu);
    if (s.state != State::kInitial) s.bad_state();
    s.state = State::kStarted;
    s.serving = true;
    s.owner_pid = manager_detail::my_pid();
    address = s.address;
    authkey = s.authkey;
  }
  bool listening = false;
  try {
    manager_detail::ServeHooks hooks;
    hooks.on_listening = [&](const Address& bound) {
      std::lock_guard<std::mutex> g(s.mu);
      s.address = bound;
      listening = true;
      manager_detail::purge_endpoint(manager_detail::endpoint_key(bound, authkey), false);
    };
    manager_detail::serve(address, authkey, hooks);
  } catch (...) {
    std::lock_guard<std::mutex> g(s.mu);
    s.serving = false;
    s.state = listening ? State::kShutdown : State::kInitial;
    throw;
  }
  std::lock_guard<std::mutex> g(s.mu);
  s.serving = false;
  s.state = State::kShutdown;
  manager_detail::purge_endpoint(manager_detail::endpoint_key(s.address, s.authkey), true);
}

void Manager::shutdown() {
  ManagerState& s = *state_;
  std::unique_lock<std::mutex> lk(s.mu);
  if (s.state != State::kStarted) {
    if (s.state == State::kInitial) s.state = State::kShutdown;
    return;
  }
  const std::string key = manager_detail::endpoint_key(s.address, s.authkey);
  const double t = s.options.shutdown_timeout > 0 ? s.options.shutdown_timeout : 1.0;
  if (s.process && s.owner_pid == manager_detail::my_pid()) {
    Process& p = *s.process;
    try {
      request_shutdown(s.address, s.authkey, t);
    } catch (...) {  // gone already, or not answering: the signals below
    }
    try {
      p.join(t);
      if (p.is_alive()) {
        p.terminate();  // the server stops cleanly on SIGTERM
        p.join(t);
      }
      if (p.is_alive()) {
        p.kill();
        p.join();
      }
    } catch (...) {
    }
  } else if (s.process || s.serving) {
    // A forked child's copy of a started manager, or a server this process runs in another
    // thread: ask it to stop.
    try {
      request_shutdown(s.address, s.authkey, t);
    } catch (...) {
    }
  }
  // A connect-only manager leaves the server running (CPython's has no shutdown at all).
  s.state = State::kShutdown;
  manager_detail::purge_endpoint(key, s.process || s.serving);
}

Proxy Manager::create(std::string_view typeid_name, List args, Dict kwds) {
  Address address = Address::unix_socket("");
  std::string authkey;
  {
    std::lock_guard<std::mutex> g(state_->mu);
    if (state_->state != State::kStarted) throw AssertionError("server not yet started");
    address = state_->address;
    authkey = state_->authkey;
  }
  const std::string key = manager_detail::endpoint_key(address, authkey);
  Value reply = manager_detail::roundtrip(
      key, address, authkey,
      manager_detail::control_request(
          "create", {std::string(typeid_name), Value(std::move(args)), Value(std::move(kwds))}));
  Value created = *manager_detail::unwrap(std::move(reply));
  const List& c = created.as_list();
  Token t{std::string(typeid_name), address, static_cast<std::uint64_t>(c.at(0).as_int())};
  return ProxyAccess::make(std::make_shared<ProxyState>(
      std::move(t), authkey, key, c.at(1).as_list(), manager_detail::my_pid()));
}

Address Manager::address() const {
  std::lock_guard<std::mutex> g(state_->mu);
  return state_->address;
}

std::string Manager::authkey() const {
  std::lock_guard<std::mutex> g(state_->mu);
  return state_->authkey;
}

std::optional<pid_t> Manager::pid() const {
  std::lock_guard<std::mutex> g(state_->mu);
  if (!state_->process) return std::nullopt;
  return state_->process->pid();
}

bool Manager::started() const {
  std::lock_guard<std::mutex> g(state_->mu);
  return state_->state == State::kStarted;
}

void request_shutdown(const Address& address, const std::string& authkey, double timeout) {
  Connection c = Client(address, authkey);
  c.send(manager_detail::control_request("shutdown", {}));
  if (c.poll(timeout)) {
    try {
      c.recv();
    } catch (const EOFError&) {  // it stopped before answering: fine
    }
  }
}

}  // namespace mp
