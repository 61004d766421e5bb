// InterProcessLock and InterProcessReaderWriterLock in the reference backend: mp::FileLock and
// mp::FileRWLock behind the protocol's methods (spec/protocol.md §6, spec/filelock/). The
// objects are created in the driver before the actors fork, but a libmp file lock opens its
// file only at the first acquire, so every actor process gets a handle of its own, as the
// protocol requires.
#include <mp/errors.hpp>
#include <mp/file_lock.hpp>

#include "types.hpp"

namespace mpspec::reference_backend {
namespace {

using driverkit::Json;

std::string path_arg(const Json& args) {
  if (!args.is_object() || !args.contains("path") || !args["path"].is_string())
    throw driverkit::KindError("TypeError", "a file lock needs a 'path' string argument");
  return args["path"].get<std::string>();
}

class FileLockObject : public driverkit::Object {
 public:
  explicit FileLockObject(std::string path) : lock_(std::move(path)) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire")
      return lock_.acquire(driverkit::bool_arg(args, "block", true), driverkit::timeout_arg(args));
    if (method == "release") {
      lock_.release();
      return nullptr;
    }
    if (method == "__enter__") {
      lock_.lock();
      return true;
    }
    if (method == "__exit__") {
      lock_.unlock();
      return nullptr;
    }
    throw driverkit::KindError("Other", "InterProcessLock has no method " + method);
  }

 private:
  mp::FileLock lock_;
};

class FileRWLockObject : public driverkit::Object {
 public:
  explicit FileRWLockObject(std::string path) : lock_(std::move(path)) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire_read_lock")
      return lock_.acquire_read(driverkit::bool_arg(args, "block", true),
                                driverkit::timeout_arg(args));
    if (method == "acquire_write_lock")
      return lock_.acquire_write(driverkit::bool_arg(args, "block", true),
                                 driverkit::timeout_arg(args));
    if (method == "release_read_lock") {
      lock_.release_read();
      return nullptr;
    }
    if (method == "release_write_lock") {
      lock_.release_write();
      return nullptr;
    }
    throw driverkit::KindError("Other", "InterProcessReaderWriterLock has no method " + method);
  }

 private:
  mp::FileRWLock lock_;
};

}  // namespace

void register_file_locks(driverkit::Backend& b) {
  b.types["InterProcessLock"] = {{"acquire", "release", "__enter__", "__exit__"},
                                 [](const Json& args, const driverkit::Objects&) {
                                   return std::make_unique<FileLockObject>(path_arg(args));
                                 }};
  b.types["InterProcessReaderWriterLock"] = {
      {"acquire_read_lock", "acquire_write_lock", "release_read_lock", "release_write_lock"},
      [](const Json& args, const driverkit::Objects&) {
        return std::make_unique<FileRWLockObject>(path_arg(args));
      }};
}

}  // namespace mpspec::reference_backend
