// Process and Module in the reference backend: mp::Process running the protocol's task
// catalogue (spec/process/process.md §1), mp::active_children / current_process /
// parent_process / cpu_count / set_start_method / get_context, and the connection functions of
// Module (connection.cpp).
//
// Start methods: libmp has fork and spawn, but this driver declares only fork, because the
// driver kit forks every actor (a setup's start method applies to actors too) and the
// catalogue's `conn` arguments are found in the child through the objects it inherited. Every
// Process here is therefore started with mp::StartMethod::kFork explicitly.
//
// A Process is process-local (spec/protocol.md §6): each actor constructs its own mp::Process
// at its first call, so the actor is the child's parent. An `inherited` Process is built by
// the driver at setup instead ([protocol.setup.inherited]): the actors hold the copies their
// fork gave them, and a prelude `start` makes the driver the child's parent; the object's
// destructor (teardown) then kills and reaps that child. The catalogue's tasks are libmp tasks
// registered by name; a task's arguments travel as one JSON text (libmp's task arguments are
// strings), and a Connection argument `{"$ref": name}` is found again in the child, which is a
// fork of the actor and so holds the same objects.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

#include <mp/errors.hpp>
#include <mp/process.hpp>

#include "bytes_json.hpp"
#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;
using driverkit::KindError;

// The objects of the setup, for tasks that resolve a `conn` argument in the child.
const driverkit::Objects* g_objects = nullptr;

// The task's `conn` argument, or nullptr.
driverkit::Object* conn_of(const Json& args) {
  if (!args.contains("conn") || args["conn"].is_null()) return nullptr;
  if (g_objects == nullptr) throw KindError("RuntimeError", "no objects in this process");
  return &g_objects->ref(args["conn"]);
}

void send_to(driverkit::Object* conn, const Json& value) {
  if (conn != nullptr) conn->call("send", Json{{"obj", value}});
}

Json parse_task_args(const mp::TaskArgs& args) {
  Json j = args.empty() ? Json::object() : Json::parse(args[0], nullptr, false);
  if (!j.is_object()) throw KindError("TypeError", "task arguments must be a map");
  return j;
}

double number_arg(const Json& args, const char* key, double fallback) {
  if (!args.contains(key) || args[key].is_null()) return fallback;
  if (!args[key].is_number()) throw KindError("TypeError", std::string(key) + " must be a number");
  return args[key].get<double>();
}

// An error of a given kind thrown by the `raise` task (libmp reports `<kind>: <message>` on the
// child's standard error and exits with status 1).
class TaskError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

int task_identity(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  send_to(conn_of(args), args.value("value", Json()));
  return 0;
}

int task_exit(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  if (!args.contains("code") || args["code"].is_null()) return 0;
  if (!args["code"].is_number_integer()) throw KindError("TypeError", "code must be an int or null");
  // libmp's exit status is the task's return value, truncated to 8 bits as by _exit.
  return static_cast<int>(args["code"].get<std::int64_t>() & 0xFF);
}

int task_raise(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  throw TaskError(args.value("kind", std::string("ValueError")) + ": " +
                  args.value("message", std::string()));
}

int task_sleep(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  driverkit::Object* conn = conn_of(args);
  const double seconds = number_arg(args, "seconds", 0.0);
  send_to(conn, "sleeping");
  // "done" is sent by clean-up code: a destructor, which runs however the body is left
  // (return or exception) but not when a signal ends the process.
  struct Done {
    driverkit::Object* conn;
    ~Done() {
      try {
        send_to(conn, "done");
      } catch (...) {
      }
    }
  } done{conn};
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return 0;
}

int task_crash(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  const int sig = static_cast<int>(number_arg(args, "signal", SIGKILL));
  ::signal(sig, SIG_DFL);
  ::kill(::getpid(), sig);
  for (;;) ::pause();  // the signal ends the process
}

// Module.current_process's map (spec/protocol.md §6): name, pid, daemon, alive, authkey.
Json current_process_map() {
  mp::Process me = mp::current_process();
  return Json{{"name", me.name()},
              {"pid", static_cast<std::int64_t>(::getpid())},
              {"daemon", me.daemon()},
              {"alive", me.is_alive()},
              {"authkey", bytes_json(me.authkey())}};
}

// Module.parent_process's value: null, or the parent's name, pid and `alive`.
Json parent_process_map() {
  const auto parent = mp::parent_process();
  if (!parent) return nullptr;
  return Json{{"name", parent->name()},
              {"pid", static_cast<std::int64_t>(parent->pid())},
              {"alive", parent->is_alive()}};
}

// The describe task's map ([process.task.describe]): name, pid, daemon, authkey, parent.
Json describe_current() {
  mp::Process me = mp::current_process();
  Json parent = nullptr;
  if (const auto pp = mp::parent_process())
    parent = Json{{"name", pp->name()}, {"pid", static_cast<std::int64_t>(pp->pid())}};
  return Json{{"name", me.name()},
              {"pid", static_cast<std::int64_t>(::getpid())},
              {"daemon", me.daemon()},
              {"authkey", bytes_json(me.authkey())},
              {"parent", parent}};
}

int task_pid(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  driverkit::Object* conn = conn_of(args);
  if (conn == nullptr) throw KindError("TypeError", "pid() needs 'conn'");
  send_to(conn, static_cast<std::int64_t>(::getpid()));
  return 0;
}

int task_describe(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  driverkit::Object* conn = conn_of(args);
  if (conn == nullptr) throw KindError("TypeError", "describe() needs 'conn'");
  send_to(conn, describe_current());
  return 0;
}

int task_start_child(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  driverkit::Object* conn = conn_of(args);
  mp::ProcessOptions options;
  options.start_method = mp::StartMethod::kFork;
  if (args.contains("daemon") && args["daemon"].is_boolean()) options.daemon = args["daemon"].get<bool>();
  mp::Process child(args.value("task", std::string()),
                    {args.value("args", Json::object()).dump()}, options);
  child.start();  // an error here is not caught: exit status 1, nothing sent
  send_to(conn, Json{{"name", child.name()}, {"pid", static_cast<std::int64_t>(*child.pid())}});
  if (args.value("join", true)) child.join();
  return 0;
}

int task_watch_parent(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  driverkit::Object* conn = conn_of(args);
  std::optional<double> timeout;
  if (args.contains("timeout") && !args["timeout"].is_null()) {
    if (!args["timeout"].is_number()) throw KindError("TypeError", "timeout must be a number");
    timeout = args["timeout"].get<double>();
  }
  const auto parent = mp::parent_process();
  if (!parent) throw KindError("AttributeError", "'NoneType' object has no attribute 'is_alive'");
  send_to(conn, parent->is_alive());
  parent->join(timeout);
  send_to(conn, parent->is_alive());
  return 0;
}

// [process.task.queue_put]: puts `values` on the queue `queue` (a $ref), sending empty() after
// each put when given `conn`, then ends as `exit` says. libmp's queues have no feeder thread,
// so "cancel" has nothing to cancel; "hard" is _exit(0).
int task_queue_put(const mp::TaskArgs& a) {
  const Json args = parse_task_args(a);
  driverkit::Object* conn = conn_of(args);
  if (!args.contains("queue") || g_objects == nullptr)
    throw KindError("TypeError", "queue_put() needs 'queue'");
  driverkit::Object& queue = g_objects->ref(args["queue"]);
  const Json values = args.value("values", Json::array());
  if (!values.is_array()) throw KindError("TypeError", "values must be a list");
  const std::string exit = args.value("exit", std::string("return"));
  if (exit != "return" && exit != "hard" && exit != "cancel")
    throw KindError("ValueError", "exit must be 'return', 'hard' or 'cancel'");
  for (const Json& v : values) {
    queue.call("put", Json{{"obj", v}});
    if (conn != nullptr) send_to(conn, queue.call("empty", Json::object()));
  }
  if (exit == "hard") ::_exit(0);
  if (exit == "cancel") {
    try {
      queue.call("cancel_join_thread", Json::object());
    } catch (const KindError&) {  // a SimpleQueue has none
    }
  }
  return 0;
}

void register_tasks() {
  static std::once_flag once;
  std::call_once(once, [] {
    mp::register_task("identity", task_identity);
    mp::register_task("exit", task_exit);
    mp::register_task("raise", task_raise);
    mp::register_task("sleep", task_sleep);
    mp::register_task("crash", task_crash);
    mp::register_task("pid", task_pid);
    mp::register_task("describe", task_describe);
    mp::register_task("start_child", task_start_child);
    mp::register_task("watch_parent", task_watch_parent);
    mp::register_task("queue_put", task_queue_put);
  });
}

Json value_arg(const Json& args) {
  if (!args.contains("value")) throw KindError("TypeError", "needs 'value'");
  return args["value"];
}

// Process-local: each actor constructs its own mp::Process at its first call on it; an
// inherited one is constructed here, in the driver, and copied into the actors by their fork.
class ProcessObject : public driverkit::Object, public Waitable {
 public:
  explicit ProcessObject(Json args) : args_(std::move(args)) {
    if (args_.is_object() && args_.contains("inherited")) {
      if (!args_["inherited"].is_boolean())
        throw KindError("TypeError", "inherited must be a bool");
      inherited_ = args_["inherited"].get<bool>();
    }
    if (inherited_) process();  // a constructor error is a SetupError
  }

  // In the driver, for an inherited Process a prelude started: kill and reap its child, so that
  // teardown leaves nothing behind. (An actor never destroys its objects: it exits.)
  ~ProcessObject() override {
    if (!inherited_ || !process_ || owner_pid_ != ::getpid()) return;
    try {
      if (auto pid = process_->pid(); pid && !process_->exitcode()) {
        process_->kill();
        process_->join();
      }
      if (auto pid = process_->pid()) driverkit::forget_parent_child(*pid);
    } catch (...) {  // closed: nothing left to stop
    }
  }

  Json call(const std::string& method, const Json& args) override {
    mp::Process p = process();
    if (method == "start") {
      p.start();
      if (inherited_ && owner_pid_ == ::getpid() && p.pid())
        driverkit::register_parent_child(*p.pid());  // stopped on the driver's SIGTERM too
      return nullptr;
    }
    if (method == "join") {
      p.join(driverkit::timeout_arg(args));
      return nullptr;
    }
    if (method == "is_alive") return p.is_alive();
    if (method == "exitcode") {
      auto code = p.exitcode();
      return code ? Json(*code) : Json(nullptr);
    }
    if (method == "pid") {
      auto pid = p.pid();
      return pid ? Json(static_cast<std::int64_t>(*pid)) : Json(nullptr);
    }
    if (method == "sentinel") return p.sentinel();
    if (method == "name") return p.name();
    if (method == "daemon") return p.daemon();
    if (method == "set_name") {
      const Json v = value_arg(args);
      if (!v.is_string()) throw mp::AssertionError("name must be a string");
      p.set_name(v.get<std::string>());
      return nullptr;
    }
    if (method == "set_daemon") {
      const Json v = value_arg(args);
      if (!v.is_boolean()) throw KindError("TypeError", "daemon must be a bool");
      p.set_daemon(v.get<bool>());
      return nullptr;
    }
    if (method == "terminate") {
      p.terminate();
      return nullptr;
    }
    if (method == "kill") {
      p.kill();
      return nullptr;
    }
    if (method == "close") {
      p.close();
      return nullptr;
    }
    throw KindError("Other", "Process has no method " + method);
  }

  int wait_fd() override { return process().sentinel(); }

 private:
  mp::Process process() {
    std::lock_guard<std::mutex> g(mu_);
    if (owner_pid_ != ::getpid() && !(inherited_ && process_)) {
      process_.reset();
      if (!args_.contains("task") || !args_["task"].is_string())
        throw KindError("TypeError", "a Process needs 'task', a task name of the catalogue");
      const std::string task = args_["task"].get<std::string>();
      if (!mp::is_task_registered(task))
        throw KindError("Unsupported", "no task '" + task + "' in this driver's catalogue");
      const Json task_args = args_.value("args", Json::object());
      if (!task_args.is_object()) throw KindError("TypeError", "a Process's args must be a map");
      mp::ProcessOptions options;
      // This driver offers only fork (its actors are forks), whatever an actor's
      // set_start_method chose as libmp's default.
      options.start_method = mp::StartMethod::kFork;
      if (args_.contains("name") && !args_["name"].is_null()) {
        if (!args_["name"].is_string()) throw mp::AssertionError("name must be a string");
        options.name = args_["name"].get<std::string>();
      }
      if (args_.contains("daemon") && !args_["daemon"].is_null()) {
        if (!args_["daemon"].is_boolean()) throw KindError("TypeError", "daemon must be a bool");
        options.daemon = args_["daemon"].get<bool>();
      }
      process_.emplace(task, mp::TaskArgs{task_args.dump()}, options);
      owner_pid_ = ::getpid();
    }
    return *process_;
  }

  Json args_;
  bool inherited_ = false;
  std::mutex mu_;
  pid_t owner_pid_ = 0;
  std::optional<mp::Process> process_;
};

class ModuleObject : public driverkit::Object {
 public:
  explicit ModuleObject(const driverkit::Objects& objects) : objects_(objects) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "current_process") return current_process_map();
    if (method == "parent_process") return parent_process_map();
    if (method == "set_start_method") {
      if (!args.contains("method") || !args["method"].is_string())
        throw KindError("TypeError", "set_start_method() needs 'method', a string");
      const std::string m = args["method"].get<std::string>();
      // Only the start methods this driver offers (its hello's start_methods).
      if (m != "fork") throw mp::ValueError("cannot find context for '" + m + "'");
      mp::set_start_method(m, driverkit::bool_arg(args, "force", false));
      return nullptr;
    }
    if (method == "get_context") {
      if (!args.contains("method") || args["method"].is_null())
        return mp::start_method_name(mp::get_context());
      if (!args["method"].is_string()) throw KindError("TypeError", "method must be a string");
      const std::string m = args["method"].get<std::string>();
      if (m != "fork") throw mp::ValueError("cannot find context for '" + m + "'");
      return mp::start_method_name(mp::get_context(m));
    }
    if (method == "active_children") {
      Json names = Json::array();
      for (auto& p : mp::active_children()) names.push_back(p.name());
      return names;
    }
    if (method == "cpu_count") return mp::cpu_count();
    return connection_module_call(method, args, objects_);
  }

 private:
  const driverkit::Objects& objects_;
};

}  // namespace

void register_process(driverkit::Backend& b) {
  register_tasks();
  b.types["Process"] = {{"start", "join", "is_alive", "exitcode", "pid", "sentinel", "name",
                         "daemon", "set_name", "set_daemon", "terminate", "kill", "close"},
                        [](const Json& args, const driverkit::Objects& objects) {
                          g_objects = &objects;
                          // A task outside the catalogue is refused by setup.
                          if (args.is_object() && args.contains("task") &&
                              args["task"].is_string() &&
                              !mp::is_task_registered(args["task"].get<std::string>()))
                            throw KindError("Unsupported", "no task '" +
                                                               args["task"].get<std::string>() +
                                                               "' in this driver's catalogue");
                          return std::make_unique<ProcessObject>(args);
                        }};
  b.types["Module"] = {{"current_process", "parent_process", "active_children", "cpu_count",
                        "wait", "client", "set_start_method", "get_context"},
                       [](const Json&, const driverkit::Objects& objects) {
                         g_objects = &objects;
                         return std::make_unique<ModuleObject>(objects);
                       }};
}

}  // namespace mpspec::reference_backend
