// RWLock and file-lock mutants:
//   rwlock-writer-with-readers  acquire_write reports success while only readers hold the lock
//                               (and its release then succeeds silently);
//   rwlock-reader-preferred     a correct reader-writer lock that prefers readers (glibc's default
//                               process-shared pthread_rwlock_t): a stream of readers starves a
//                               waiting writer;
//   filelock-pidfile            an InterProcessLock made of a pid file (created with O_EXCL,
//                               removed on release): it survives its holder's death;
//   filerwlock-write-shared     an InterProcessReaderWriterLock whose write lock is a shared
//                               (read) lock: a writer does not exclude readers;
//   local-per-process           a `local` with one value per process, not per thread (and
//                               copied into a forked child with the rest of memory).
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <mp/errors.hpp>
#include <mp/file_lock.hpp>
#include <mp/platform/shm.hpp>
#include <mp/rwlock.hpp>
#include <mutex>
#include <new>
#include <string>
#include <thread>

#include "mutants.hpp"

namespace mpspec::mutants {
namespace {

using driverkit::Json;

class WriterWithReaders : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    const bool block = driverkit::bool_arg(args, "block", true);
    if (method == "acquire_read") return lock_.acquire_read(block, driverkit::timeout_arg(args));
    if (method == "acquire_write") {
      if (lock_.acquire_write(false)) return true;
      // Only readers hold it? Then pretend the writer got in.
      if (lock_.acquire_read(false)) {
        lock_.release_read();
        return true;
      }
      return lock_.acquire_write(block, driverkit::timeout_arg(args));
    }
    if (method == "release_read") {
      lock_.release_read();
      return nullptr;
    }
    if (method == "release_write") {
      try {
        lock_.release_write();
      } catch (const mp::ValueError&) {
        // the pretend writer's release
      }
      return nullptr;
    }
    throw driverkit::KindError("Other", "RWLock has no method " + method);
  }

 private:
  mp::RWLock lock_;
};

// glibc's default rwlock kind prefers readers. Counts in shared memory turn a release of a
// mode nobody holds into ValueError instead of undefined behaviour.
struct PthreadRW {
  pthread_rwlock_t rw;
  std::atomic<int> readers{0};
  std::atomic<int> writer{0};
};

class ReaderPreferred : public driverkit::Object {
 public:
  ReaderPreferred()
      : mapping_(mp::platform::SharedMapping::anonymous(sizeof(PthreadRW))),
        s_(::new (mapping_.data()) PthreadRW) {
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_rwlock_init(&s_->rw, &a);
    pthread_rwlockattr_destroy(&a);
  }

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire_read" || method == "acquire_write") {
      const bool read = method == "acquire_read";
      const bool block = driverkit::bool_arg(args, "block", true);
      const auto timeout = driverkit::timeout_arg(args);
      int rc;
      if (!block || (timeout && *timeout <= 0)) {
        rc = read ? pthread_rwlock_tryrdlock(&s_->rw) : pthread_rwlock_trywrlock(&s_->rw);
      } else if (!timeout || std::isinf(*timeout)) {
        rc = read ? pthread_rwlock_rdlock(&s_->rw) : pthread_rwlock_wrlock(&s_->rw);
      } else {
        timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        const double end =
            static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9 + *timeout;
        ts.tv_sec = static_cast<time_t>(end);
        ts.tv_nsec = static_cast<long>((end - std::floor(end)) * 1e9);
        rc = read ? pthread_rwlock_clockrdlock(&s_->rw, CLOCK_MONOTONIC, &ts)
                  : pthread_rwlock_clockwrlock(&s_->rw, CLOCK_MONOTONIC, &ts);
      }
      if (rc != 0) return false;
      (read ? s_->readers : s_->writer).fetch_add(1);
      return true;
    }
    if (method == "release_read" || method == "release_write") {
      std::atomic<int>& count = method == "release_read" ? s_->readers : s_->writer;
      int c = count.load();
      do {
        if (c == 0) throw mp::ValueError(method + ": not held in that mode");
      } while (!count.compare_exchange_weak(c, c - 1));
      pthread_rwlock_unlock(&s_->rw);
      return nullptr;
    }
    throw driverkit::KindError("Other", "RWLock has no method " + method);
  }

 private:
  mp::platform::SharedMapping mapping_;
  PthreadRW* s_;
};

class PidFileLock : public driverkit::Object {
 public:
  explicit PidFileLock(std::string path) : path_(std::move(path) + ".pid") {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire" || method == "__enter__") {
      const bool block = method == "__enter__" || driverkit::bool_arg(args, "block", true);
      const auto timeout = method == "__enter__" ? std::nullopt : driverkit::timeout_arg(args);
      const auto start = std::chrono::steady_clock::now();
      for (;;) {
        if (try_create()) return true;
        if (!block) return false;
        if (timeout &&
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >=
                *timeout)
          return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    if (method == "release" || method == "__exit__") {
      if (!held_) throw mp::RuntimeError("release of an unacquired lock");
      ::unlink(path_.c_str());
      held_ = false;
      return nullptr;
    }
    throw driverkit::KindError("Other", "InterProcessLock has no method " + method);
  }

 private:
  bool try_create() {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    const std::string pid = std::to_string(::getpid()) + "\n";
    (void)!::write(fd, pid.data(), pid.size());
    ::close(fd);
    held_ = true;
    return true;
  }

  std::string path_;
  bool held_ = false;
};

class WriteSharedFileRWLock : public driverkit::Object {
 public:
  explicit WriteSharedFileRWLock(std::string path) : lock_(std::move(path)) {}

  Json call(const std::string& method, const Json& args) override {
    if (method == "acquire_read_lock" || method == "acquire_write_lock")
      return lock_.acquire_read(driverkit::bool_arg(args, "block", true),
                                driverkit::timeout_arg(args));
    if (method == "release_read_lock" || method == "release_write_lock") {
      lock_.release_read();
      return nullptr;
    }
    throw driverkit::KindError("Other", "InterProcessReaderWriterLock has no method " + method);
  }

 private:
  mp::FileRWLock lock_;
};

class PerProcessLocal : public driverkit::Object {
 public:
  Json call(const std::string& method, const Json& args) override {
    std::lock_guard<std::mutex> guard(mu_);
    if (method == "set") {
      value_ = args.value("value", Json());
      set_ = true;
      return nullptr;
    }
    if (method == "get") {
      if (!set_) throw mp::AttributeError("no value");
      return value_;
    }
    if (method == "clear") {
      set_ = false;
      return nullptr;
    }
    throw driverkit::KindError("Other", "local has no method " + method);
  }

 private:
  std::mutex mu_;
  bool set_ = false;
  Json value_;
};

std::string path_of(const Json& args) {
  if (!args.is_object() || !args.contains("path") || !args["path"].is_string())
    throw driverkit::KindError("TypeError", "a file lock needs a 'path' string argument");
  return args["path"].get<std::string>();
}

}  // namespace

bool install_rwlock_mutant(const std::string& which, driverkit::Backend& b) {
  const std::vector<std::string> methods = {"acquire_read", "acquire_write", "release_read",
                                            "release_write"};
  if (which == "rwlock-writer-with-readers") {
    b.types["RWLock"] = {methods, [](const Json&, const driverkit::Objects&) {
                           return std::make_unique<WriterWithReaders>();
                         }};
    return true;
  }
  if (which == "rwlock-reader-preferred") {
    b.types["RWLock"] = {methods, [](const Json&, const driverkit::Objects&) {
                           return std::make_unique<ReaderPreferred>();
                         }};
    return true;
  }
  if (which == "filelock-pidfile") {
    b.types["InterProcessLock"] = {
        {"acquire", "release", "__enter__", "__exit__"},
        [](const Json& args, const driverkit::Objects&) -> std::unique_ptr<driverkit::Object> {
          return std::make_unique<PidFileLock>(path_of(args));
        }};
    return true;
  }
  if (which == "filerwlock-write-shared") {
    b.types["InterProcessReaderWriterLock"] = {
        {"acquire_read_lock", "acquire_write_lock", "release_read_lock", "release_write_lock"},
        [](const Json& args, const driverkit::Objects&) -> std::unique_ptr<driverkit::Object> {
          return std::make_unique<WriteSharedFileRWLock>(path_of(args));
        }};
    return true;
  }
  if (which == "local-per-process") {
    b.types["local"] = {{"set", "get", "clear"}, [](const Json&, const driverkit::Objects&) {
                          return std::make_unique<PerProcessLocal>();
                        }};
    return true;
  }
  return false;
}

}  // namespace mpspec::mutants
