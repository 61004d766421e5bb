// RWLock and SharedLock on interprocess_sharable_mutex; InterProcessLock and
// InterProcessReaderWriterLock on file_lock (exclusive and sharable modes).
#include <fcntl.h>
#include <unistd.h>

#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/sync/file_lock.hpp>
#include <boost/interprocess/sync/interprocess_sharable_mutex.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common.hpp"

namespace mpspec::boost_backend {
namespace {

// RWLock: holds are counts without owners, so each method is the sharable mutex's own.
class RWLockObject : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    bip::interprocess_sharable_mutex& m = *mutex_;
    if (method == "acquire_read")
      return acquire(
          args, [&] { return m.try_lock_sharable(); },
          [&](auto until) { return m.timed_lock_sharable(until); }, [&] { m.lock_sharable(); });
    if (method == "acquire_write")
      return acquire(
          args, [&] { return m.try_lock(); }, [&](auto until) { return m.timed_lock(until); },
          [&] { m.lock(); });
    if (method == "release_read") m.unlock_sharable();
    if (method == "release_write") m.unlock();
    return nullptr;
  }

 private:
  Shared<bip::interprocess_sharable_mutex> mutex_;
};

// SharedLock: release() takes no mode, so the adapter remembers, per process and thread, the
// modes it took, as a Boost user's scoped_lock / sharable_lock guards on that thread's stack
// would. A release with no guard throws what a guard that owns nothing throws on unlock():
// lock_exception.
class SharedLockObject : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    const auto me = std::make_pair(::getpid(), std::this_thread::get_id());
    if (method == "acquire") {
      const bool exclusive = driverkit::bool_arg(args, "exclusive", false);
      exclusive ? mutex_->lock() : mutex_->lock_sharable();
      std::lock_guard<std::mutex> g(mu_);
      guards_[me].push_back(exclusive);
      return nullptr;
    }
    bool exclusive;
    {
      std::lock_guard<std::mutex> g(mu_);
      auto& mine = guards_[me];
      if (mine.empty()) throw bip::lock_exception();
      exclusive = mine.back();
      mine.pop_back();
    }
    exclusive ? mutex_->unlock() : mutex_->unlock_sharable();
    return nullptr;
  }

 private:
  Shared<bip::interprocess_sharable_mutex> mutex_;
  std::mutex mu_;
  std::map<std::pair<pid_t, std::thread::id>, std::vector<bool>> guards_;
};

// The file locks: a file_lock per process, opened at that process's first call. file_lock needs
// an existing file, so the adapter creates it first (not its parent directories), as Boost's
// documentation tells its users to.
class FileLockObject : public driverkit::Object {
 public:
  explicit FileLockObject(std::string path) : path_(std::move(path)) {}
  Json call(const std::string& method, const Json& args) override {
    bip::file_lock& f = handle();
    if (method == "acquire" || method == "acquire_write_lock")
      return acquire(
          args, [&] { return f.try_lock(); }, [&](auto until) { return f.timed_lock(until); },
          [&] { f.lock(); });
    if (method == "acquire_read_lock")
      return acquire(
          args, [&] { return f.try_lock_sharable(); },
          [&](auto until) { return f.timed_lock_sharable(until); }, [&] { f.lock_sharable(); });
    if (method == "__enter__") {
      f.lock();
      return true;
    }
    if (method == "release_read_lock")
      f.unlock_sharable();
    else
      f.unlock();  // release, release_write_lock, __exit__
    return nullptr;
  }

 private:
  bip::file_lock& handle() {
    std::lock_guard<std::mutex> g(mu_);
    if (!lock_) {
      const int fd = ::open(path_.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
      if (fd >= 0) ::close(fd);
      lock_ = std::make_unique<bip::file_lock>(path_.c_str());
    }
    return *lock_;
  }
  std::string path_;
  std::mutex mu_;
  std::unique_ptr<bip::file_lock> lock_;
};

driverkit::Type file_lock(std::vector<std::string> methods) {
  return {std::move(methods), [](const Json& args, const driverkit::Objects&) {
            if (!args.contains("path") || !args["path"].is_string())
              throw driverkit::KindError("TypeError", "a file lock needs a 'path' string");
            return std::make_unique<FileLockObject>(args["path"].get<std::string>());
          }};
}

}  // namespace

void register_locks(driverkit::Backend& b) {
  b.types["RWLock"] =
      plain<RWLockObject>({"acquire_read", "acquire_write", "release_read", "release_write"});
  b.types["SharedLock"] = plain<SharedLockObject>({"acquire", "release"});
  b.types["InterProcessLock"] = file_lock({"acquire", "release", "__enter__", "__exit__"});
  b.types["InterProcessReaderWriterLock"] = file_lock(
      {"acquire_read_lock", "acquire_write_lock", "release_read_lock", "release_write_lock"});
}

}  // namespace mpspec::boost_backend
