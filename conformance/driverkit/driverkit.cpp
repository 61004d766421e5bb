#include "driverkit.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace mpspec::driverkit {
namespace {

constexpr int kProtocolVersion = 1;

std::int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void log(const std::string& msg) {
  std::string line = "[driverkit " + std::to_string(getpid()) + "] " + msg + "\n";
  ssize_t r = ::write(2, line.data(), line.size());
  (void)r;
}

// Writes all of `data` to `fd`; returns false on error (e.g. EPIPE).
bool write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// Splits a byte stream into lines.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}
  // Reads what is available (one read call). Returns false at end of file or error.
  bool fill() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(buf, static_cast<size_t>(n));
      return true;
    }
  }
  std::optional<std::string> next() {
    auto pos = buf_.find('\n');
    if (pos == std::string::npos) return std::nullopt;
    std::string line = buf_.substr(0, pos);
    buf_.erase(0, pos + 1);
    return line;
  }
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string buf_;
};

std::pair<std::string, std::string> describe_exception(const Backend& backend,
                                                       const std::exception& e) {
  if (auto* k = dynamic_cast<const KindError*>(&e)) return {k->kind(), k->what()};
  if (backend.map_error) return backend.map_error(e);
  return {"Other", e.what()};
}

// ---------------------------------------------------------------- actor process side

struct ObjectSlot {
  std::string type;
  std::unique_ptr<Object> object;
  std::string owner;  // "" or the only actor that keeps its copy ([protocol.setup.owner])
};

class Actor {
 public:
  Actor(const Backend& backend, std::map<std::string, ObjectSlot>& objects, int cmd_fd, int res_fd,
        int threads, std::string name = "")
      : backend_(backend),
        objects_(objects),
        cmd_(cmd_fd),
        res_fd_(res_fd),
        name_(std::move(name)) {
    workers_.resize(static_cast<size_t>(threads));
  }

  [[noreturn]] void run() {
    for (auto& [object_name, slot] : objects_)
      if (!slot.owner.empty() && slot.owner != name_) slot.object->release_copy();
    for (size_t i = 0; i < workers_.size(); ++i) {
      workers_[i] = std::make_unique<Worker>();
      workers_[i]->thread = std::thread([this, i] { work(*workers_[i]); });
    }
    emit(Json{{"ready", true}});
    for (;;) {
      while (auto line = cmd_.next()) dispatch(*line);
      if (!cmd_.fill()) _exit(0);  // the driver went away or tore us down
    }
  }

 private:
  struct Worker {
    std::thread thread;
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Json> queue;
  };

  void dispatch(const std::string& line) {
    Json cmd = Json::parse(line, nullptr, false);
    if (cmd.is_discarded()) return;
    auto t = cmd.value("thread", 0);
    if (t < 0 || static_cast<size_t>(t) >= workers_.size()) return;
    Worker& w = *workers_[static_cast<size_t>(t)];
    {
      std::lock_guard<std::mutex> g(w.mu);
      w.queue.push_back(std::move(cmd));
    }
    w.cv.notify_one();
  }

  void work(Worker& w) {
    for (;;) {
      Json cmd;
      {
        std::unique_lock<std::mutex> g(w.mu);
        w.cv.wait(g, [&] { return !w.queue.empty(); });
        cmd = std::move(w.queue.front());
        w.queue.pop_front();
      }
      Json out{{"tag", cmd["tag"]}};
      auto it = objects_.find(cmd.value("object", ""));
      const std::string method = cmd.value("method", "");
      const Json args = cmd.value("args", Json::object());
      std::int64_t invoke = 0, ret = 0;
      if (it == objects_.end()) {
        invoke = ret = monotonic_ns();
        out["status"] = "error";
        out["error"] = {{"kind", "Other"}, {"message", "no such object in actor"}};
      } else {
        try {
          invoke = monotonic_ns();
          Json value = it->second.object->call(method, args);
          ret = monotonic_ns();
          out["status"] = "ok";
          out["value"] = std::move(value);
        } catch (const std::exception& e) {
          ret = monotonic_ns();
          auto [kind, message] = describe_exception(backend_, e);
          out["status"] = "error";
          out["error"] = {{"kind", kind}, {"message", message}};
          if (auto* k = dynamic_cast<const KindError*>(&e); k != nullptr) {
            if (!k->value().is_null()) out["error"]["value"] = k->value();
            if (!k->errno_name().empty()) out["error"]["errno"] = k->errno_name();
          }
        } catch (...) {
          ret = monotonic_ns();
          out["status"] = "error";
          out["error"] = {{"kind", "Other"}, {"message", "unknown C++ exception"}};
        }
      }
      out["invoke_ns"] = invoke;
      out["return_ns"] = ret;
      emit(out);
    }
  }

  void emit(const Json& j) {
    std::lock_guard<std::mutex> g(write_mu_);
    if (!write_all(res_fd_, j.dump() + "\n")) _exit(0);
  }

  const Backend& backend_;
  std::map<std::string, ObjectSlot>& objects_;
  LineReader cmd_;
  int res_fd_;
  std::string name_;
  std::mutex write_mu_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

// ---------------------------------------------------------------- driver process side

// Pids of live actors, for the SIGTERM handler (async-signal-safe access only).
constexpr int kMaxActors = 256;
std::atomic<pid_t> g_actor_pids[kMaxActors];

// Pids of the processes the driver process started itself (register_parent_child).
std::atomic<pid_t> g_parent_children[kMaxActors];

// Cleanups of the backend for a signal that stops the driver process (add_terminate_hook).
constexpr int kMaxTerminateHooks = 16;
std::atomic<TerminateHook> g_terminate_hooks[kMaxTerminateHooks];

// The driver process (set by run() before the handler is installed). A process the driver
// forks without exec (the child of an inherited Process started by a prelude call) inherits
// the handler: there a signal must neither stop the driver's actors nor run the driver's
// cleanups (which would unlink segments still in use), so it takes its default action.
std::atomic<pid_t> g_driver_pid{0};

void on_terminate(int sig) {
  if (::getpid() != g_driver_pid.load()) {
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    _exit(128 + sig);  // not reached unless the signal is blocked
  }
  for (auto& p : g_parent_children) {
    pid_t pid = p.load();
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  for (auto& p : g_actor_pids) {
    pid_t pid = p.load();
    if (pid > 0) {
      ::kill(-pid, SIGKILL);  // the actor's group: the actor and the processes it started
      ::kill(pid, SIGKILL);
    }
  }
  for (auto& p : g_actor_pids) {
    pid_t pid = p.load();
    if (pid > 0) ::waitpid(pid, nullptr, 0);
  }
  // Every process that could still create something is gone: the backend's cleanups
  // ([protocol.robust.no_stray]: e.g. the reference backend unlinks its shared memory segments).
  for (auto& h : g_terminate_hooks) {
    TerminateHook hook = h.load();
    if (hook != nullptr) hook();
  }
  _exit(0);
}

struct ActorProc {
  std::string name;
  pid_t pid = -1;
  int slot = -1;
  int cmd_fd = -1;
  std::unique_ptr<LineReader> res;
  std::vector<std::string> busy;  // tag running on each thread, "" when idle
  bool alive = false;
  bool reaped = false;
  int exitcode = 0;
};

// Whether the actor has ended. Does not reap it: an actor stays a zombie until teardown, so
// that its pid, which is also the id of its process group, cannot be reused before teardown
// stops the processes the actor started (a child of an actor inherits the actor's result
// pipe, so the end of that pipe does not tell that the actor died).
bool has_exited(const ActorProc& a) {
  siginfo_t si{};
  si.si_pid = 0;
  return ::waitid(P_PID, static_cast<id_t>(a.pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         si.si_pid == a.pid;
}

class RequestError : public std::runtime_error {
 public:
  RequestError(std::string kind, const std::string& msg)
      : std::runtime_error(msg), kind(std::move(kind)) {}
  std::string kind;
};

// The objects of the current setup, by name. Lives as long as the driver, so an object may
// keep a reference to it and resolve `{"$call": ...}` arguments of later calls (in an actor,
// the inherited copy at the same address).
class ObjectTable : public Objects {
 public:
  explicit ObjectTable(std::map<std::string, ObjectSlot>& all) : all_(all) {}
  Object& get(const std::string& name) const override {
    auto it = all_.find(name);
    if (it == all_.end())
      throw KindError("ValueError", "no object named '" + name + "' (yet) in this setup");
    return *it->second.object;
  }

 private:
  std::map<std::string, ObjectSlot>& all_;
};

// The command line of this driver, for re-executing it as an independent actor.
std::vector<std::string> g_argv;

// An independent actor's descriptors after exec: commands in, results out.
constexpr int kExecCmdFd = 3;
constexpr int kExecResFd = 4;
constexpr const char* kActorFlag = "--mpspec-independent-actor";

class Driver {
 public:
  explicit Driver(const Backend& b) : backend_(b), in_(0), lookup_(objects_) {}

  int loop() {
    for (;;) {
      std::vector<pollfd> fds;
      fds.push_back({0, POLLIN, 0});
      std::vector<ActorProc*> owners;
      for (auto& a : actors_) {
        if (a.alive) {
          fds.push_back({a.res->fd(), POLLIN, 0});
          owners.push_back(&a);
        }
      }
      // Actors are also checked every 100 ms: a process an actor started may hold the actor's
      // result pipe open after the actor died.
      int n = ::poll(fds.data(), fds.size(), owners.empty() ? -1 : 100);
      if (n < 0) {
        if (errno == EINTR) continue;
        log(std::string("poll: ") + std::strerror(errno));
        teardown();
        return 1;
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents) pump_actor(*owners[i - 1]);
      }
      for (auto* a : owners)
        if (a->alive && has_exited(*a)) actor_gone(*a, "crashed");
      if (fds[0].revents) {
        if (!in_.fill()) {
          teardown();
          return 0;
        }
        while (auto line = in_.next()) {
          if (handle_line(*line)) return 0;
        }
      }
    }
  }

 private:
  void send(const Json& j) {
    if (!write_all(1, j.dump() + "\n")) {
      teardown();
      _exit(0);  // nobody listens any more
    }
  }

  void reply_ok(const Json& id, Json result = Json::object()) {
    send(Json{{"id", id}, {"ok", true}, {"result", std::move(result)}});
  }
  void reply_error(const Json& id, const std::string& kind, const std::string& msg) {
    send(Json{{"id", id}, {"ok", false}, {"error", {{"kind", kind}, {"message", msg}}}});
  }

  // Returns true when the driver should exit.
  bool handle_line(const std::string& line) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return false;
    Json req = Json::parse(line, nullptr, false);
    if (req.is_discarded() || !req.is_object()) {
      reply_error(nullptr, "ProtocolError", "request is not a JSON object");
      return false;
    }
    Json id = req.contains("id") ? req["id"] : Json(nullptr);
    if (!id.is_number_integer() || !req.contains("op") || !req["op"].is_string()) {
      reply_error(id.is_number_integer() ? id : Json(nullptr), "ProtocolError",
                  "request needs an integer 'id' and a string 'op'");
      return false;
    }
    const std::string op = req["op"];
    try {
      if (op == "hello") {
        do_hello(id, req);
      } else if (!said_hello_) {
        throw RequestError("ProtocolError", "the first request must be 'hello'");
      } else if (op == "setup") {
        do_setup(id, req);
      } else if (op == "call") {
        do_call(id, req);
      } else if (op == "kill") {
        do_kill(id, req);
      } else if (op == "teardown") {
        teardown();
        reply_ok(id);
      } else if (op == "bye") {
        teardown();
        reply_ok(id);
        return true;
      } else {
        throw RequestError("ProtocolError", "unknown op '" + op + "'");
      }
    } catch (const RequestError& e) {
      reply_error(id, e.kind, e.what());
    } catch (const Json::exception& e) {
      reply_error(id, "ProtocolError", std::string("bad request field: ") + e.what());
    }
    return false;
  }

  void do_hello(const Json& id, const Json& req) {
    if (req.contains("protocol") && req["protocol"] != kProtocolVersion)
      throw RequestError("ProtocolError", "this driver speaks protocol 1 only");
    said_hello_ = true;
    Json types = Json::object();
    for (const auto& [name, t] : backend_.types) types[name] = t.methods;
    Json contexts = Json::array();
    for (const auto& [name, make] : backend_.contexts) contexts.push_back(name);
    reply_ok(id, Json{{"protocol", kProtocolVersion},
                      {"name", backend_.name},
                      {"version", backend_.version},
                      {"types", types},
                      {"features", features()},
                      {"start_methods", backend_.start_methods},
                      {"contexts", contexts}});
  }

  // The backend's features plus those the kit implements for every backend.
  Json features() const {
    Json f = backend_.features;
    if (std::find(backend_.features.begin(), backend_.features.end(), "independent") ==
        backend_.features.end())
      f.push_back("independent");
    return f;
  }

  const Type& type_of(const std::string& name) {
    auto it = backend_.types.find(name);
    if (it == backend_.types.end())
      throw RequestError("Unsupported", "type '" + name + "' is not offered by " + backend_.name);
    return it->second;
  }

  void do_setup(const Json& id, const Json& req) {
    if (active_) throw RequestError("ProtocolError", "setup is already active; teardown first");
    const std::string method = req.value("start_method", "fork");
    if (method != "fork") throw RequestError("Unsupported", "start method '" + method + "'");
    const Json objects = req.value("objects", Json::array());
    const Json prelude = req.value("prelude", Json::array());
    const Json actors = req.value("actors", Json::array());
    if (!objects.is_array() || !prelude.is_array() || !actors.is_array())
      throw RequestError("ProtocolError", "objects, prelude and actors must be arrays");
    // Validate everything before creating anything.
    std::set<std::string> names;
    for (const auto& o : objects) {
      const std::string name = o.at("name"), type = o.at("type");
      if (!names.insert(name).second)
        throw RequestError("ProtocolError", "duplicate object name '" + name + "'");
      type_of(type);
    }
    std::set<std::string> actor_names;
    for (const auto& a : actors) {
      const std::string name = a.at("name");
      int threads = a.value("threads", 1);
      if (a.contains("independent") && !a["independent"].is_boolean())
        throw RequestError("ProtocolError", "actor '" + name + "': independent must be a bool");
      if (!actor_names.insert(name).second)
        throw RequestError("ProtocolError", "duplicate actor name '" + name + "'");
      if (threads < 1 || threads > 64)
        throw RequestError("ProtocolError", "actor '" + name + "': threads must be 1..64");
    }
    if (actors.size() > kMaxActors) throw RequestError("ProtocolError", "too many actors");
    std::string context;
    if (req.contains("context") && !req["context"].is_null()) {
      if (!req["context"].is_string())
        throw RequestError("ProtocolError", "context must be a string or null");
      context = req["context"].get<std::string>();
      if (!backend_.contexts.count(context))
        throw RequestError("Unsupported", "setup context '" + context + "'");
      for (const auto& a : actors)
        if (a.value("independent", false))
          throw RequestError("Unsupported",
                             "independent actors in setup context '" + context + "'");
    }
    for (const auto& o : objects) {
      if (!o.contains("owner")) continue;
      if (!o["owner"].is_string() || !actor_names.count(o["owner"].get<std::string>()))
        throw RequestError("ProtocolError", "object '" + o.at("name").get<std::string>() +
                                                "': owner must name an actor of this setup");
    }

    objects_.clear();
    context_.reset();
    try {
      if (!context.empty()) context_ = backend_.contexts.at(context)();
    } catch (const std::exception& e) {
      auto [kind, message] = describe_exception(backend_, e);
      throw RequestError(kind == "Unsupported" ? "Unsupported" : "SetupError",
                         "setup context '" + context + "': " + kind + ": " + message);
    }

    for (const auto& o : objects) {
      const std::string name = o.at("name"), type = o.at("type");
      try {
        const Json args = o.value("args", Json::object());
        std::unique_ptr<Object> made;
        if (context_) made = context_->create(type, args, lookup_);
        if (!made) made = type_of(type).create(args, lookup_);
        objects_[name] = ObjectSlot{type, std::move(made), o.value("owner", std::string())};
      } catch (const std::exception& e) {
        objects_.clear();
        context_.reset();
        auto [kind, message] = describe_exception(backend_, e);
        // A factory may refuse what the backend does not offer (e.g. a task outside its
        // catalogue): the test is then UNSUPPORTED, not failed.
        throw RequestError(kind == "Unsupported" ? "Unsupported" : "SetupError",
                           "creating " + type + " '" + name + "': " + kind + ": " + message);
      }
    }
    // One value per prelude call ([protocol.setup.prelude.results]).
    Json prelude_results = Json::array();
    for (const auto& p : prelude) {
      const std::string obj = p.at("object"), m = p.at("method");
      auto it = objects_.find(obj);
      if (it == objects_.end()) {
        objects_.clear();
        context_.reset();
        throw RequestError("ProtocolError", "prelude names unknown object '" + obj + "'");
      }
      try {
        prelude_results.push_back(it->second.object->call(m, p.value("args", Json::object())));
      } catch (const std::exception& e) {
        objects_.clear();
        context_.reset();
        auto [kind, message] = describe_exception(backend_, e);
        throw RequestError("SetupError",
                           "prelude " + obj + "." + m + " raised " + kind + ": " + message);
      }
    }
    active_ = true;
    Json pids = Json::object();
    for (const auto& a : actors) {
      std::string err = start_actor(a.at("name"), a.value("threads", 1),
                                    a.value("independent", false) ? &objects : nullptr);
      if (!err.empty()) {
        teardown();
        throw RequestError("SetupError", err);
      }
      pids[actors_.back().name] = {{"pid", actors_.back().pid}};
    }
    // Wait until every actor says it is ready.
    for (auto& a : actors_) {
      std::string err = await_ready(a);
      if (!err.empty()) {
        teardown();
        throw RequestError("SetupError", "actor '" + a.name + "': " + err);
      }
    }
    // Every actor has its copies now: the parent gives up those of owned objects.
    for (auto& [name, slot] : objects_)
      if (!slot.owner.empty()) slot.object->release_copy();
    reply_ok(id, Json{{"actors", pids}, {"prelude", std::move(prelude_results)}});
  }

  // Starts an actor: a forked copy of the driver that inherits the objects, or, when
  // `independent_objects` is given, a fresh execution of the driver's program that builds its
  // own objects from those setup entries and shares nothing else with the driver
  // (spec/protocol.md, setup.actors.independent).
  std::string start_actor(const std::string& name, int threads,
                          const Json* independent_objects = nullptr) {
    int cmd[2], res[2];
    if (::pipe2(cmd, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
    if (::pipe2(res, O_CLOEXEC) != 0) {
      ::close(cmd[0]);
      ::close(cmd[1]);
      return std::string("pipe: ") + std::strerror(errno);
    }
    pid_t parent = getpid();
    pid_t pid = ::fork();
    if (pid < 0) return std::string("fork: ") + std::strerror(errno);
    if (pid == 0) {
      // Actor. Never returns into the driver loop.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      // A process group of its own: the processes an actor starts (a Process's child and its
      // descendants) stay in it, so teardown can stop them with the actor.
      ::setpgid(0, 0);
      ::signal(SIGTERM, SIG_DFL);
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::close(devnull);
      }
      ::dup2(2, 1);  // stray output must not corrupt the protocol stream
      for (auto& a : actors_) {
        if (a.cmd_fd >= 0) ::close(a.cmd_fd);
        if (a.res) ::close(a.res->fd());
      }
      ::close(cmd[1]);
      ::close(res[0]);
      if (independent_objects != nullptr)
        exec_independent(cmd[0], res[1], threads, *independent_objects);
      Actor actor(backend_, objects_, cmd[0], res[1], threads, name);
      actor.run();
    }
    ::setpgid(pid, pid);  // as the child does: whichever runs first
    ::close(cmd[0]);
    ::close(res[1]);
    ActorProc a;
    a.name = name;
    a.pid = pid;
    a.cmd_fd = cmd[1];
    a.res = std::make_unique<LineReader>(res[0]);
    a.busy.assign(static_cast<size_t>(threads), "");
    a.alive = true;
    for (int i = 0; i < kMaxActors; ++i) {
      pid_t expected = 0;
      if (g_actor_pids[i].compare_exchange_strong(expected, pid)) {
        a.slot = i;
        break;
      }
    }
    actors_.push_back(std::move(a));
    return "";
  }

  // In the forked child: re-executes the driver's program as an independent actor, with the
  // command and result pipes on descriptors 3 and 4. Exits if the exec fails (the driver then
  // reports that the actor exited before it was ready).
  [[noreturn]] static void exec_independent(int cmd_fd, int res_fd, int threads,
                                            const Json& objects) {
    // Move the pipes out of the way of 3 and 4 first, then into place (dup2 clears CLOEXEC).
    const int c = ::fcntl(cmd_fd, F_DUPFD_CLOEXEC, 10), r = ::fcntl(res_fd, F_DUPFD_CLOEXEC, 10);
    if (c < 0 || r < 0 || ::dup2(c, kExecCmdFd) < 0 || ::dup2(r, kExecResFd) < 0) _exit(127);
    std::vector<std::string> args = g_argv;
    args.push_back(kActorFlag);
    args.push_back(Json{{"threads", threads}, {"objects", objects}}.dump());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "driverkit: exec of an independent actor failed: %s\n",
                 std::strerror(errno));
    _exit(127);
  }

  std::string await_ready(ActorProc& a) {
    const std::int64_t deadline = monotonic_ns() + 30'000'000'000;
    for (;;) {
      if (auto line = a.res->next()) {
        Json j = Json::parse(*line, nullptr, false);
        if (j.is_object() && j.value("ready", false)) return "";
        return "unexpected first message: " + *line;
      }
      std::int64_t left_ms = (deadline - monotonic_ns()) / 1'000'000;
      if (left_ms <= 0) return "not ready within 30 s";
      pollfd p{a.res->fd(), POLLIN, 0};
      int n = ::poll(&p, 1, static_cast<int>(left_ms));
      if (n < 0 && errno == EINTR) continue;
      if (n > 0 && !a.res->fill()) return "exited before it was ready";
    }
  }

  ActorProc& actor(const std::string& name) {
    for (auto& a : actors_)
      if (a.name == name) return a;
    throw RequestError("ProtocolError", "unknown actor '" + name + "'");
  }

  void do_call(const Json& id, const Json& req) {
    if (!active_) throw RequestError("ProtocolError", "call before setup");
    const std::string tag = req.at("tag"), obj = req.at("object"), method = req.at("method");
    const int thread = req.value("thread", 0);
    ActorProc& a = actor(req.at("actor"));
    if (!a.alive) throw RequestError("ProtocolError", "actor '" + a.name + "' is dead");
    if (thread < 0 || static_cast<size_t>(thread) >= a.busy.size())
      throw RequestError("ProtocolError",
                         "actor '" + a.name + "' has no thread " + std::to_string(thread));
    if (!a.busy[static_cast<size_t>(thread)].empty())
      throw RequestError("ProtocolError",
                         "thread " + std::to_string(thread) + " of actor '" + a.name + "' is busy");
    auto it = objects_.find(obj);
    if (it == objects_.end()) throw RequestError("ProtocolError", "unknown object '" + obj + "'");
    const auto& methods = type_of(it->second.type).methods;
    if (std::find(methods.begin(), methods.end(), method) == methods.end())
      throw RequestError("Unsupported", it->second.type + " has no method '" + method + "'");
    Json args = req.value("args", Json::object());
    if (!args.is_object()) throw RequestError("ProtocolError", "args must be an object");
    Json cmd{{"tag", tag}, {"thread", thread}, {"object", obj}, {"method", method}, {"args", args}};
    a.busy[static_cast<size_t>(thread)] = tag;
    reply_ok(id);
    if (!write_all(a.cmd_fd, cmd.dump() + "\n")) {
      // The actor died; its EOF will be noticed by the loop and the call becomes info.
      log("actor " + a.name + " did not take call " + tag);
    }
  }

  // Forwards every complete line the actor sent; on EOF the actor is gone.
  void pump_actor(ActorProc& a) {
    bool open = a.res->fill();
    forward_lines(a);
    if (!open) actor_gone(a, "crashed");
  }

  void forward_lines(ActorProc& a) {
    while (auto line = a.res->next()) {
      Json j = Json::parse(*line, nullptr, false);
      if (!j.is_object() || !j.contains("tag")) continue;
      const std::string tag = j["tag"];
      for (auto& b : a.busy)
        if (b == tag) b.clear();
      j["event"] = "return";
      send(j);
    }
  }

  // Reaps a dead actor and reports its running calls as `info`.
  void actor_gone(ActorProc& a, const char* reason) {
    if (!a.alive) return;
    a.alive = false;
    siginfo_t si{};
    while (::waitid(P_PID, static_cast<id_t>(a.pid), &si, WEXITED | WNOWAIT) < 0 &&
           errno == EINTR) {
    }
    a.exitcode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
    // What the actor wrote before it died is still in the pipe: deliver it first.
    for (;;) {
      pollfd p{a.res->fd(), POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      const bool open = a.res->fill();
      forward_lines(a);
      if (!open) break;
    }
    ::close(a.cmd_fd);
    a.cmd_fd = -1;
    ::close(a.res->fd());
    for (auto& tag : a.busy) {
      if (tag.empty()) continue;
      send(Json{{"event", "return"}, {"tag", tag}, {"status", "info"}, {"reason", reason}});
      tag.clear();
    }
  }

  // Signals an actor, forwards what it reported before dying, reaps it.
  void kill_actor(ActorProc& a, int sig, const char* reason) {
    ::kill(a.pid, sig);
    const std::int64_t deadline = monotonic_ns() + 10'000'000'000;
    bool escalated = sig == SIGKILL;
    for (;;) {
      pollfd p{a.res->fd(), POLLIN, 0};
      std::int64_t left_ms = (deadline - monotonic_ns()) / 1'000'000;
      if (left_ms <= 0 && !escalated) {
        log("actor " + a.name + " survived signal " + std::to_string(sig) + "; sending SIGKILL");
        ::kill(a.pid, SIGKILL);
        escalated = true;
      }
      int n = ::poll(&p, 1, 50);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) {
        bool open = a.res->fill();
        forward_lines(a);
        if (!open) break;
      }
      if (has_exited(a)) break;
    }
    actor_gone(a, reason);
  }

  void do_kill(const Json& id, const Json& req) {
    if (!active_) throw RequestError("ProtocolError", "kill before setup");
    ActorProc& a = actor(req.at("actor"));
    if (!a.alive) throw RequestError("ProtocolError", "actor '" + a.name + "' is dead");
    int sig = req.value("signal", SIGKILL);
    if (sig <= 0 || sig >= NSIG) throw RequestError("ProtocolError", "bad signal number");
    kill_actor(a, sig, "killed");
    reply_ok(id, Json{{"exitcode", a.exitcode}});
  }

  void teardown() {
    // The actors' groups first: the processes the actors started (their Processes' children).
    for (auto& a : actors_)
      if (!a.reaped) ::kill(-a.pid, SIGKILL);
    for (auto& a : actors_)
      if (a.alive) kill_actor(a, SIGKILL, "teardown");
    for (auto& a : actors_) {
      if (a.reaped) continue;
      while (::waitpid(a.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      a.reaped = true;
      if (a.slot >= 0) g_actor_pids[a.slot].store(0);
    }
    actors_.clear();
    objects_.clear();
    context_.reset();  // after its objects: e.g. a manager's proxies before its server
    active_ = false;
  }

  const Backend& backend_;
  LineReader in_;
  bool said_hello_ = false;
  bool active_ = false;
  std::map<std::string, ObjectSlot> objects_;
  std::unique_ptr<Context> context_;  // the setup's context, if it asked for one
  ObjectTable lookup_;
  std::vector<ActorProc> actors_;
};

}  // namespace

void register_parent_child(pid_t pid) {
  for (auto& slot : g_parent_children) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pid)) return;
  }
}

void add_terminate_hook(TerminateHook hook) {
  for (auto& slot : g_terminate_hooks) {
    TerminateHook expected = nullptr;
    if (slot.load() == hook) return;
    if (slot.compare_exchange_strong(expected, hook)) return;
  }
}

void forget_parent_child(pid_t pid) {
  for (auto& slot : g_parent_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

Object& Objects::ref(const Json& ref) const {
  if (!ref.is_object() || !ref.contains("$ref") || !ref["$ref"].is_string())
    throw KindError("TypeError",
                    "expected an object reference {\"$ref\": name}, got " + ref.dump());
  return get(ref["$ref"].get<std::string>());
}

BoundCall::BoundCall(const Json& spec, const Objects& objects) {
  if (!spec.is_object() || !spec.contains("$call") || !spec["$call"].is_array() ||
      spec["$call"].size() != 2 || !spec["$call"][0].is_string() || !spec["$call"][1].is_string())
    throw KindError("TypeError",
                    "expected a callable {\"$call\": [object, method]}, got " + spec.dump());
  name_ = spec["$call"][0].get<std::string>();
  method_ = spec["$call"][1].get<std::string>();
  object_ = &objects.get(name_);
}

std::string BoundCall::describe() const { return name_ + "." + method_ + "()"; }

std::optional<double> timeout_arg(const Json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return std::nullopt;
  if (!args[key].is_number())
    throw KindError("TypeError", std::string(key) + " must be a number or null");
  return args[key].get<double>();
}

bool bool_arg(const Json& args, const char* key, bool fallback) {
  if (!args.contains(key) || args[key].is_null()) return fallback;
  if (!args[key].is_boolean()) throw KindError("TypeError", std::string(key) + " must be a bool");
  return args[key].get<bool>();
}

// The body of an independent actor (after exec): builds its own objects from the setup entries
// it was given, in order, then serves calls like a forked actor.
[[noreturn]] void run_independent_actor(const Backend& backend, const std::string& spec_text) {
  ::signal(SIGPIPE, SIG_IGN);
  const Json spec = Json::parse(spec_text, nullptr, false);
  if (spec.is_discarded() || !spec.is_object()) {
    std::fprintf(stderr, "driverkit: bad independent actor spec\n");
    _exit(2);
  }
  static std::map<std::string, ObjectSlot> objects;
  static ObjectTable lookup(objects);
  for (const auto& o : spec.value("objects", Json::array())) {
    const std::string name = o.at("name"), type = o.at("type");
    auto it = backend.types.find(type);
    if (it == backend.types.end()) _exit(2);
    try {
      objects[name] =
          ObjectSlot{type, it->second.create(o.value("args", Json::object()), lookup), ""};
    } catch (const std::exception& e) {
      std::fprintf(stderr, "driverkit: independent actor cannot create %s '%s': %s\n", type.c_str(),
                   name.c_str(), e.what());
      _exit(2);
    }
  }
  Actor actor(backend, objects, kExecCmdFd, kExecResFd, spec.value("threads", 1));
  actor.run();
}

int run(const Backend& backend, int argc, char** argv) {
  g_argv.assign(argv, argv + argc);
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], kActorFlag) == 0) run_independent_actor(backend, argv[i + 1]);
  }
  ::signal(SIGPIPE, SIG_IGN);
  g_driver_pid.store(::getpid());
  struct sigaction sa {};
  sa.sa_handler = on_terminate;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  Driver d(backend);
  return d.loop();
}

}  // namespace mpspec::driverkit
