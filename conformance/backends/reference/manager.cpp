// Manager, Proxy and Module.manager_create in the reference backend: mp::Manager / mp::Proxy
// (spec/manager/manager.md, proxy.md; spec/protocol.md §6 "Managers").
//
// A Manager is process-local (spec/protocol.md §6): each actor constructs its own mp::Manager
// at its first call, so a server it starts is the actor's child, in the actor's process group,
// and dies with the actor at teardown (the kit kills the group). An `inherited` Manager is
// built by the driver at setup instead: a prelude `start` makes the driver the server's
// parent (registered with driverkit::register_parent_child, so a SIGTERM of the driver kills
// it too), and the object's destructor at teardown shuts the server down (bounded: ask, wait,
// terminate, kill) and reaps it. Proxy entries are slots bound by `Manager.create`,
// `Module.manager_create` or `Proxy.call` with `as`, in the calling process; a slot the
// prelude bound is inherited by every actor, whose first call opens its own connection.
//
// The catalogue typeid `shared_dict` (every create returns a proxy to one server-global dict)
// is registered in the driver at start-up, so that every server (forked from the driver or an
// actor) and every client know it. The default address is a fresh abstract AF_UNIX name
// (nothing on the filesystem to leak when a server is killed), reported as a string starting
// with NUL; the driver offers only fork, so servers start with fork.
#include <unistd.h>

#include <mp/errors.hpp>
#include <mp/manager.hpp>
#include <mutex>
#include <optional>

#include "bytes_json.hpp"
#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;
using driverkit::KindError;

std::optional<mp::Address> address_arg(const Json& args) {
  if (!args.is_object() || !args.contains("address") || args["address"].is_null())
    return std::nullopt;
  const Json& a = args["address"];
  if (a.is_string()) return mp::Address::unix_socket(a.get<std::string>());
  if (auto b = json_bytes(a)) return mp::Address::unix_socket(*b);
  if (a.is_array() && a.size() == 2 && a[0].is_string() && a[1].is_number_integer()) {
    const auto port = a[1].get<std::int64_t>();
    if (port < 0 || port > 65535) throw KindError("OverflowError", "port must be 0-65535.");
    return mp::Address::inet(a[0].get<std::string>(), static_cast<std::uint16_t>(port));
  }
  throw KindError("TypeError", "address type of " + a.dump() + " unrecognized");
}

Json address_json(const mp::Address& a) {
  if (a.family() == mp::Address::Family::kInet) return Json::array({a.host(), a.port()});
  return a.path();
}

std::optional<std::string> authkey_arg(const Json& args) {
  if (!args.is_object() || !args.contains("authkey") || args["authkey"].is_null())
    return std::nullopt;
  auto key = json_bytes(args["authkey"]);
  if (!key) throw KindError("TypeError", "authkey should be a byte string");
  return key;
}

mp::List list_arg(const Json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return {};
  if (!args[key].is_array()) throw KindError("TypeError", std::string(key) + " must be a list");
  return to_value(args[key]).as_list();
}

mp::Dict dict_arg(const Json& args, const char* key) {
  if (!args.contains(key) || args[key].is_null()) return {};
  if (!args[key].is_object() || is_bytes_json(args[key]))
    throw KindError("TypeError", std::string(key) + " must be a map");
  return to_value(args[key]).as_dict();
}

std::string string_arg(const Json& args, const char* key) {
  if (!args.contains(key) || !args[key].is_string())
    throw KindError("TypeError", std::string("needs '") + key + "', a string");
  return args[key].get<std::string>();
}

class ProxyObject : public driverkit::Object {
 public:
  ProxyObject(const driverkit::Objects& objects) : objects_(objects) {}

  void bind(mp::Proxy proxy) {
    std::lock_guard<std::mutex> g(mu_);
    proxy_ = std::move(proxy);
  }

  Json call(const std::string& method, const Json& args) override;

 private:
  std::optional<mp::Proxy> held() {
    std::lock_guard<std::mutex> g(mu_);
    return proxy_;
  }

  const driverkit::Objects& objects_;
  std::mutex mu_;
  std::optional<mp::Proxy> proxy_;
};

ProxyObject& proxy_slot(const Json& args, const driverkit::Objects& objects) {
  if (!args.contains("as") || !args["as"].is_string())
    throw KindError("TypeError", "needs 'as', the name of a Proxy slot");
  driverkit::Object* named = &objects.get(args["as"].get<std::string>());
  if (auto* f = dynamic_cast<Forwarder*>(named)) named = &f->target();
  auto* slot = dynamic_cast<ProxyObject*>(named);
  if (slot == nullptr) throw KindError("TypeError", "'as' must name a Proxy slot");
  return *slot;
}

Json ProxyObject::call(const std::string& method, const Json& args) {
  std::optional<mp::Proxy> p = held();
  if (!p) throw KindError("Other", "this Proxy slot holds no proxy in this process");
  if (method == "call") {
    const std::string name = string_arg(args, "method");
    if (args.contains("as") && !args["as"].is_null()) {
      ProxyObject& slot = proxy_slot(args, objects_);
      slot.bind(p->call_proxy(name, list_arg(args, "args"), dict_arg(args, "kwds")));
      return nullptr;
    }
    return from_value(p->call(name, list_arg(args, "args"), dict_arg(args, "kwds")));
  }
  if (method == "getvalue") return from_value(p->getvalue());
  throw KindError("Other", "Proxy has no method " + method);
}

void create_into(mp::Manager& m, const Json& args, const driverkit::Objects& objects) {
  ProxyObject& slot = proxy_slot(args, objects);  // a bad `as` fails before anything is made
  slot.bind(m.create(string_arg(args, "typeid"), list_arg(args, "args"), dict_arg(args, "kwds")));
}

class ManagerObject : public driverkit::Object {
 public:
  ManagerObject(Json args, const driverkit::Objects& objects)
      : args_(std::move(args)), objects_(objects) {
    if (args_.contains("inherited")) {
      if (!args_["inherited"].is_boolean())
        throw KindError("TypeError", "inherited must be a bool");
      inherited_ = args_["inherited"].get<bool>();
    }
    if (inherited_) manager();  // a constructor error is a SetupError
  }

  // In the driver, for an inherited Manager: shut its server down (bounded) and reap it. (An
  // actor never destroys its objects: it exits.)
  ~ManagerObject() override {
    if (!inherited_ || !manager_ || owner_pid_ != ::getpid()) return;
    const std::optional<pid_t> pid = manager_->pid();
    manager_.reset();  // ~Manager: shutdown() if it started the server
    if (pid) driverkit::forget_parent_child(*pid);
  }

  Json call(const std::string& method, const Json& args) override {
    mp::Manager& m = manager();
    if (method == "start" || method == "__enter__") {
      if (method == "__enter__" && m.started()) return nullptr;
      try {
        m.start();
      } catch (const mp::ProcessError&) {
        if (method == "__enter__") throw mp::ProcessError("Unable to start server");
        throw;
      }
      if (inherited_ && owner_pid_ == ::getpid())
        if (auto pid = m.pid()) driverkit::register_parent_child(*pid);
      return nullptr;
    }
    if (method == "connect") {
      m.connect();
      return nullptr;
    }
    if (method == "shutdown" || method == "__exit__") {
      m.shutdown();
      return nullptr;
    }
    if (method == "address") return address_json(m.address());
    if (method == "create") {
      create_into(m, args, objects_);
      return nullptr;
    }
    if (method == "serve_forever") {
      m.serve_forever();
      return nullptr;
    }
    throw KindError("Other", "Manager has no method " + method);
  }

 private:
  // The calling process's manager: constructed at its first call (process-local), or here in
  // the driver at setup for an inherited one (whose copies the actors use).
  mp::Manager& manager() {
    std::lock_guard<std::mutex> g(mu_);
    if (!manager_ || (owner_pid_ != ::getpid() && !inherited_)) {
      if (manager_) (void)manager_.release();  // another process's object: never destroyed here
      mp::ManagerOptions options;
      options.start_method = mp::StartMethod::kFork;  // the driver's only start method
      manager_ = std::make_unique<mp::Manager>(address_arg(args_), authkey_arg(args_), options);
      owner_pid_ = ::getpid();
    }
    return *manager_;
  }

  Json args_;
  const driverkit::Objects& objects_;
  bool inherited_ = false;
  std::mutex mu_;
  pid_t owner_pid_ = 0;
  std::unique_ptr<mp::Manager> manager_;
};

// Module with `manager_create` added: wraps the Module object registered before.
class ModuleWithManager : public driverkit::Object {
 public:
  ModuleWithManager(std::unique_ptr<driverkit::Object> inner, const driverkit::Objects& objects)
      : inner_(std::move(inner)), objects_(objects) {}

  Json call(const std::string& method, const Json& args) override {
    if (method != "manager_create") {
      if (!inner_) throw KindError("Other", "Module has no method " + method);
      return inner_->call(method, args);
    }
    proxy_slot(args, objects_);
    mp::ManagerOptions options;
    options.start_method = mp::StartMethod::kFork;
    mp::Manager client(address_arg(args), authkey_arg(args), options);
    client.connect();
    create_into(client, args, objects_);
    return nullptr;
  }

  void release_copy() override {
    if (inner_) inner_->release_copy();
  }

 private:
  std::unique_ptr<driverkit::Object> inner_;
  const driverkit::Objects& objects_;
};

}  // namespace

void register_manager(driverkit::Backend& b) {
  static std::once_flag once;
  std::call_once(once, [] {
    mp::TypeidSpec spec = *mp::typeid_spec("dict");
    spec.factory = [](const mp::List&, const mp::Dict&) {
      static const std::shared_ptr<mp::Referent> shared = mp::make_referent("dict");
      return shared;
    };
    mp::register_typeid("shared_dict", std::move(spec));
  });
  b.types["Manager"] = {{"start", "connect", "shutdown", "address", "create", "serve_forever",
                         "__enter__", "__exit__"},
                        [](const Json& args, const driverkit::Objects& objects) {
                          if (!args.is_null() && !args.is_object())
                            throw KindError("TypeError", "Manager args must be a map");
                          return std::make_unique<ManagerObject>(
                              args.is_null() ? Json::object() : args, objects);
                        }};
  b.types["Proxy"] = {{"call", "getvalue"}, [](const Json&, const driverkit::Objects& objects) {
                        return std::make_unique<ProxyObject>(objects);
                      }};
  driverkit::Type module;
  if (auto it = b.types.find("Module"); it != b.types.end()) module = it->second;
  module.methods.push_back("manager_create");
  auto inner = module.create;
  module.create = [inner](const Json& args, const driverkit::Objects& objects) {
    return std::make_unique<ModuleWithManager>(inner ? inner(args, objects) : nullptr, objects);
  };
  b.types["Module"] = std::move(module);
}

}  // namespace mpspec::reference_backend
