// SharedMemory and Module.shared_memory in the reference backend: mp::SharedMemory behind the
// protocol's methods (spec/sharedctypes/shared_memory.md, "Protocol surface (proposed)").
//
// A SharedMemory entry with args is created (or attached) in the driver at setup; the actors
// inherit the handle at fork. An entry without args is a *slot*, which Module.shared_memory
// (as=...) fills in the calling actor only; a failed creation leaves the slot as it was.
//
// Teardown ([protocol.teardown], [protocol.robust.no_stray]): every segment that a setup entry
// or a slot *created* is recorded, by name, in a small registry file of the driver process
// (appended to by the driver and by every actor, forked or independent). When the driver
// destroys the setup's last SharedMemory object it unlinks every recorded segment that is
// still there and removes the file. A driver stopped by SIGTERM (or SIGINT) does the same from
// the driver kit's terminate hook (driverkit::add_terminate_hook), once its actors are gone.
#include <fcntl.h>
#include <limits.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <mp/errors.hpp>
#include <mp/shared_memory.hpp>
#include <mutex>
#include <optional>
#include <string>

#include "bytes_json.hpp"
#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;
using driverkit::KindError;

// ---------------------------------------------------------------- the registry of segments

// Whether this process is an independent actor (a fresh execution of the driver program).
bool in_independent_actor() {
  static const bool independent = [] {
    std::ifstream in("/proc/self/cmdline", std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return all.find(std::string("--mpspec-independent-actor\0", 27)) != std::string::npos;
  }();
  return independent;
}

// The pid of the driver process: this process, or, in an independent actor, its parent. A
// forked actor asks the objects it inherited, which computed it in the driver.
pid_t driver_pid() { return in_independent_actor() ? ::getppid() : ::getpid(); }

std::string registry_path(pid_t driver) {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/mpspec-reference-shm-" +
         std::to_string(driver) + ".names";
}

void record_created(pid_t driver, const std::string& name) {
  const std::string path = registry_path(driver);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const std::string line = name + "\n";
  (void)!::write(fd, line.data(), line.size());  // one small O_APPEND write: atomic
  ::close(fd);
}

// Live SharedMemory objects in the driver process; the last one's destruction cleans up.
int g_live_objects = 0;
std::mutex g_live_mu;

void unlink_recorded() {
  const std::string path = registry_path(::getpid());
  std::ifstream in(path);
  std::string name;
  while (std::getline(in, name))
    if (!name.empty()) ::shm_unlink(("/" + name).c_str());  // ENOENT: already unlinked
  ::unlink(path.c_str());
}

// The driver's registry path, for the terminate hook (fixed by register_shared_memory in the
// driver process; empty: no hook).
char g_registry_path_on_signal[1024];

// unlink_recorded() for a signal handler: async-signal-safe (open, read, shm_unlink, unlink,
// close; glibc's shm_unlink builds the path on the stack and calls unlink). A line longer than
// a name can be is skipped.
void unlink_recorded_on_signal() {
  if (g_registry_path_on_signal[0] == '\0') return;
  const int saved_errno = errno;
  const int fd = ::open(g_registry_path_on_signal, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[4096];
    char name[NAME_MAX + 2] = "/";
    std::size_t len = 1;
    bool too_long = false;
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] == '\n') {
          if (len > 1 && !too_long) {
            name[len] = '\0';
            ::shm_unlink(name);  // ENOENT: already unlinked
          }
          len = 1;
          too_long = false;
        } else if (len + 1 < sizeof name) {
          name[len++] = buf[i];
        } else {
          too_long = true;
        }
      }
    }
    ::close(fd);
    ::unlink(g_registry_path_on_signal);
  }
  errno = saved_errno;
}

// ---------------------------------------------------------------- errors and arguments

std::string errno_name(int err) {
  switch (err) {
    case EEXIST:
      return "EEXIST";
    case ENOENT:
      return "ENOENT";
    case EINVAL:
      return "EINVAL";
    case EACCES:
      return "EACCES";
    case ENAMETOOLONG:
      return "ENAMETOOLONG";
    case ENOMEM:
      return "ENOMEM";
    case EFBIG:
      return "EFBIG";
    case ENOSPC:
      return "ENOSPC";
    case EMFILE:
      return "EMFILE";
    default:
      return "";
  }
}

// Runs `f`, turning mp::OSError into a KindError with the symbolic errno (protocol §5).
template <class F>
auto with_errno(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const mp::OSError& e) {
    throw KindError("OSError", e.what()).with_errno(errno_name(e.errnum()));
  }
}

struct OpenArgs {
  std::optional<std::string> name;
  bool create = false;
  std::int64_t size = 0;
};

OpenArgs open_args(const Json& args) {
  OpenArgs a;
  if (args.contains("name") && !args["name"].is_null()) {
    if (!args["name"].is_string()) throw KindError("TypeError", "name must be a string or null");
    a.name = args["name"].get<std::string>();
  }
  a.create = driverkit::bool_arg(args, "create", false);
  if (args.contains("size") && !args["size"].is_null()) {
    if (!args["size"].is_number_integer())
      throw KindError("TypeError",
                      "'size' must be an integer");  // [shared_memory.create.size.type]
    a.size = args["size"].get<std::int64_t>();
  }
  return a;
}

std::shared_ptr<mp::SharedMemory> open_handle(const OpenArgs& a, pid_t driver) {
  auto h = with_errno([&] { return std::make_shared<mp::SharedMemory>(a.name, a.create, a.size); });
  if (a.create) record_created(driver, h->name());
  return h;
}

std::int64_t offset_arg(const Json& args) {
  if (!args.contains("offset") || args["offset"].is_null()) return 0;
  if (!args["offset"].is_number_integer()) throw KindError("TypeError", "offset must be an int");
  return args["offset"].get<std::int64_t>();
}

// ---------------------------------------------------------------- the objects

class SharedMemoryObject : public driverkit::Object {
 public:
  SharedMemoryObject() {
    std::lock_guard<std::mutex> g(g_live_mu);
    ++g_live_objects;
  }
  ~SharedMemoryObject() override {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (handle_) handle_->close();
      handle_.reset();
    }
    std::lock_guard<std::mutex> g(g_live_mu);
    if (--g_live_objects == 0 && !in_independent_actor()) unlink_recorded();
  }

  // The driver process of the setup (see driver_pid()), fixed when the object is made.
  pid_t driver() const { return driver_; }

  void bind(std::shared_ptr<mp::SharedMemory> h) {
    std::shared_ptr<mp::SharedMemory> old;
    {
      std::lock_guard<std::mutex> g(mu_);
      old = std::exchange(handle_, std::move(h));
    }
    if (old) old->close();
  }

  Json call(const std::string& method, const Json& args) override {
    std::shared_ptr<mp::SharedMemory> h;
    {
      std::lock_guard<std::mutex> g(mu_);
      h = handle_;
    }
    if (!h) throw KindError("Other", "this SharedMemory slot holds no handle in this actor");
    if (method == "name") return h->name();
    if (method == "size") return h->size();
    if (method == "read") {
      const std::int64_t offset = offset_arg(args);
      std::optional<std::int64_t> count;
      if (args.contains("size") && !args["size"].is_null()) {
        if (!args["size"].is_number_integer()) throw KindError("TypeError", "size must be an int");
        count = args["size"].get<std::int64_t>();
      }
      const auto total = static_cast<std::int64_t>(h->size());
      if (offset < 0 || offset > total || (count && (*count < 0 || *count > total - offset)))
        throw KindError("ValueError", "read outside the segment");
      return bytes_json(h->read(
          static_cast<std::size_t>(offset),
          count ? std::optional<std::size_t>(static_cast<std::size_t>(*count)) : std::nullopt));
    }
    if (method == "write") {
      const std::int64_t offset = offset_arg(args);
      if (!args.contains("data")) throw KindError("TypeError", "write() needs 'data'");
      auto data = json_bytes(args["data"]);
      if (!data) throw KindError("TypeError", "data must be bytes ({\"$bytes\": ...})");
      const auto total = static_cast<std::int64_t>(h->size());
      if (offset < 0 || offset > total || static_cast<std::int64_t>(data->size()) > total - offset)
        throw KindError("ValueError", "write outside the segment");
      h->write(static_cast<std::size_t>(offset), *data);
      return nullptr;
    }
    if (method == "close") {
      h->close();
      return nullptr;
    }
    if (method == "unlink") {
      with_errno([&] { h->unlink(); });
      return nullptr;
    }
    throw KindError("Other", "SharedMemory has no method " + method);
  }

 private:
  const pid_t driver_ = driver_pid();
  std::mutex mu_;
  std::shared_ptr<mp::SharedMemory> handle_;
};

// Module with `shared_memory` added: wraps the Module object of register_process.
class ModuleWithSharedMemory : public driverkit::Object {
 public:
  ModuleWithSharedMemory(std::unique_ptr<driverkit::Object> inner,
                         const driverkit::Objects& objects)
      : inner_(std::move(inner)), objects_(objects) {}

  Json call(const std::string& method, const Json& args) override {
    if (method != "shared_memory") {
      if (!inner_) throw KindError("Other", "Module has no method " + method);
      return inner_->call(method, args);
    }
    if (!args.contains("as") || !args["as"].is_string())
      throw KindError("TypeError", "needs 'as', the name of a SharedMemory slot");
    auto* slot = dynamic_cast<SharedMemoryObject*>(&objects_.get(args["as"].get<std::string>()));
    if (slot == nullptr) throw KindError("TypeError", "'as' must name a SharedMemory slot");
    auto h = open_handle(open_args(args), slot->driver());  // a failure leaves the slot as is
    std::string name = h->name();
    slot->bind(std::move(h));
    return name;
  }

  void release_copy() override {
    if (inner_) inner_->release_copy();
  }

 private:
  std::unique_ptr<driverkit::Object> inner_;
  const driverkit::Objects& objects_;
};

}  // namespace

void register_shared_memory(driverkit::Backend& b) {
  if (!in_independent_actor()) {  // the driver process: its registry, for a stopping signal
    const std::string path = registry_path(::getpid());
    if (path.size() < sizeof g_registry_path_on_signal) {
      std::memcpy(g_registry_path_on_signal, path.c_str(), path.size() + 1);
      driverkit::add_terminate_hook(unlink_recorded_on_signal);
    }
  }
  b.types["SharedMemory"] = {{"name", "size", "read", "write", "close", "unlink"},
                             [](const Json& args, const driverkit::Objects&) {
                               auto o = std::make_unique<SharedMemoryObject>();
                               if (!args.is_object() || args.empty()) return o;  // a slot
                               OpenArgs a = open_args(args);
                               if (!in_independent_actor()) {
                                 o->bind(open_handle(a, o->driver()));
                                 return o;
                               }
                               // An independent actor reaches the parent's segment by its
                               // name only: it attaches, and keeps an empty handle when it
                               // cannot (a generated name, a segment already unlinked).
                               if (a.name) {
                                 try {
                                   o->bind(std::make_shared<mp::SharedMemory>(a.name));
                                 } catch (const mp::Error&) {
                                 }
                               }
                               return o;
                             }};
  driverkit::Type module;
  if (auto it = b.types.find("Module"); it != b.types.end()) module = it->second;
  module.methods.push_back("shared_memory");
  auto inner = module.create;
  module.create = [inner](const Json& args, const driverkit::Objects& objects) {
    return std::make_unique<ModuleWithSharedMemory>(inner ? inner(args, objects) : nullptr,
                                                    objects);
  };
  b.types["Module"] = std::move(module);
}

}  // namespace mpspec::reference_backend
