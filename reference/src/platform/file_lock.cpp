#include "mp/platform/file_lock.hpp"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>

#include "mp/errors.hpp"

// glibc < 2.37 does not name the thread-id member of struct sigevent.
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#ifndef MP_FILE_LOCK_SIGRTMIN_OFFSET
#define MP_FILE_LOCK_SIGRTMIN_OFFSET 7
#endif

namespace mp::platform {

// One open lock file. In a child after fork(), the fork handler closes it
// (fd -1, nothing held) while its LockFile handle still points at it.
struct LockFileNode {
  int fd = -1;
  std::optional<FileLockMode> held;
  // Links in the registry of open nodes (see below).
  LockFileNode* prev = nullptr;
  LockFileNode* next = nullptr;
  bool linked = false;
};

namespace {

// --- The fork registry --------------------------------------------------------
//
// Every open LockFileNode is linked here. In a child created by fork(), the
// atfork handler closes all their descriptors, so that the child never keeps a
// reference to its parent's open file descriptions (and with it, possibly, a
// lock its parent holds). The mutex is held across open()+link and
// unlink+close(), and by the prepare handler across fork(): a descriptor is
// therefore never inherited without its node being linked.

struct Registry {
  std::mutex mutex;
  LockFileNode* head = nullptr;
};

Registry& registry() noexcept {
  // Never destroyed: lock files with static storage duration may be closed
  // after the function-local statics are gone.
  static Registry* const r = new Registry;
  return *r;
}

void link(Registry& r, LockFileNode* node) noexcept {
  node->prev = nullptr;
  node->next = r.head;
  if (r.head != nullptr) r.head->prev = node;
  r.head = node;
  node->linked = true;
}

void unlink(Registry& r, LockFileNode* node) noexcept {
  if (!node->linked) return;
  if (node->prev != nullptr) {
    node->prev->next = node->next;
  } else {
    r.head = node->next;
  }
  if (node->next != nullptr) node->next->prev = node->prev;
  node->prev = node->next = nullptr;
  node->linked = false;
}

void before_fork() noexcept { registry().mutex.lock(); }
void after_fork_in_parent() noexcept { registry().mutex.unlock(); }

// In the child, single-threaded: close every inherited lock descriptor and
// leave its node closed, holding nothing, unlinked.
void after_fork_in_child() noexcept {
  Registry& r = registry();
  LockFileNode* node = r.head;
  while (node != nullptr) {
    LockFileNode* next = node->next;
    if (node->fd >= 0) ::close(node->fd);
    node->fd = -1;
    node->held.reset();
    node->prev = node->next = nullptr;
    node->linked = false;
    node = next;
  }
  r.head = nullptr;
  r.mutex.unlock();
}

void register_fork_handlers() {
  static const bool registered = [] {
    const int rc = ::pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_atfork");
    return true;
  }();
  (void)registered;
}

// --- Opening ----------------------------------------------------------------

constexpr int kOpenFlags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY;
constexpr mode_t kFileMode = 0666;
constexpr mode_t kDirectoryMode = 0777;

int open_retrying(const std::string& path) noexcept {
  int fd;
  do {
    fd = ::open(path.c_str(), kOpenFlags, kFileMode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

// Creates the missing directories of `path`'s parent ("mkdir -p dirname").
// A component that exists already is fine (also when another process creates
// it first; if it is not a directory, the open() that follows reports
// ENOTDIR). Returns 0, or the errno of the mkdir() that failed.
int create_parent_directories(const std::string& path) {
  const std::string::size_type last_slash = path.find_last_of('/');
  if (last_slash == std::string::npos || last_slash == 0) return 0;
  // Each prefix that ends before a '/', up to and including the parent.
  std::string::size_type end = 0;
  do {
    end = path.find('/', end + 1);
    const std::string prefix = path.substr(0, end);
    if (prefix.back() != '/' && ::mkdir(prefix.c_str(), kDirectoryMode) != 0 && errno != EEXIST) {
      return errno;
    }
  } while (end < last_slash);
  return 0;
}

// --- Locking ----------------------------------------------------------------

short lock_type(FileLockMode mode) noexcept {
  return static_cast<short>(mode == FileLockMode::kShared ? F_RDLCK : F_WRLCK);
}

int whole_file_lock(int fd, int command, short type) noexcept {
  struct flock request {};
  request.l_type = type;
  request.l_whence = SEEK_SET;
  request.l_start = 0;
  request.l_len = 0;  // to the end of the file, however large it grows
  request.l_pid = 0;  // required by F_OFD_*
  return ::fcntl(fd, command, &request);
}

[[noreturn]] void throw_errno(int err, const char* what) {
  throw std::system_error(err, std::generic_category(), what);
}

// --- The timeout signal -----------------------------------------------------

std::atomic<int> configured_signal{0};  // 0: the default

extern "C" void on_timeout_signal(int) {}  // only there to interrupt fcntl

bool is_ours(const struct sigaction& action) noexcept {
  return (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == &on_timeout_signal;
}

bool is_default(const struct sigaction& action) noexcept {
  return (action.sa_flags & SA_SIGINFO) == 0 && action.sa_handler == SIG_DFL;
}

// Installs the empty handler for `signo` if its disposition is SIG_DFL;
// throws std::system_error(EBUSY) if the application has a disposition of its
// own. Checked on every timed wait (one sigaction call), so that a
// disposition changed later is reported instead of turning into a hang.
void ensure_handler(int signo) {
  struct sigaction current {};
  if (::sigaction(signo, nullptr, &current) != 0) throw_errno(errno, "sigaction");
  if (is_ours(current)) return;
  static std::mutex install_mutex;
  std::lock_guard<std::mutex> guard(install_mutex);
  if (::sigaction(signo, nullptr, &current) != 0) throw_errno(errno, "sigaction");
  if (is_ours(current)) return;
  if (!is_default(current)) {
    throw std::system_error(EBUSY, std::generic_category(),
                            "libmp: the timeout signal of file locks (" + std::to_string(signo) +
                                ") has a disposition of the application; select another with "
                                "mp::set_file_lock_timeout_signal()");
  }
  struct sigaction action {};
  action.sa_handler = &on_timeout_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the signal must end the fcntl with EINTR
  if (::sigaction(signo, &action, nullptr) != 0) throw_errno(errno, "sigaction");
}

timespec to_timespec(std::int64_t ns) noexcept {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return ts;
}

// After the deadline, the timer repeats with this period (see lock()).
constexpr std::int64_t kRepeatNs = 1'000'000;

// For the duration of one timed wait: the signal unblocked in the calling
// thread, and a timer that sends it to this thread at the deadline. The
// destructor deletes the timer first, while the signal is still unblocked (a
// pending instance is delivered on the way out of timer_delete), then
// restores the mask.
class TimeoutScope {
 public:
  TimeoutScope(int signo, const Deadline& deadline) {
    sigset_t just_this;
    sigemptyset(&just_this);
    sigaddset(&just_this, signo);
    const int rc = ::pthread_sigmask(SIG_UNBLOCK, &just_this, &saved_mask_);
    if (rc != 0) throw_errno(rc, "pthread_sigmask");
    restore_mask_ = sigismember(&saved_mask_, signo) == 1;

    struct sigevent event {};
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = signo;
    event.sigev_notify_thread_id = ::gettid();
    if (::timer_create(CLOCK_MONOTONIC, &event, &timer_) != 0) {
      const int err = errno;
      restore_mask();
      throw_errno(err, "timer_create(CLOCK_MONOTONIC, SIGEV_THREAD_ID)");
    }
    itimerspec when{};
    when.it_value = to_timespec(deadline.monotonic_ns());
    when.it_interval = to_timespec(kRepeatNs);
    if (::timer_settime(timer_, TIMER_ABSTIME, &when, nullptr) != 0) {
      const int err = errno;
      ::timer_delete(timer_);
      restore_mask();
      throw_errno(err, "timer_settime");
    }
  }

  ~TimeoutScope() {
    ::timer_delete(timer_);  // cannot fail for a timer we created
    restore_mask();
  }

  TimeoutScope(const TimeoutScope&) = delete;
  TimeoutScope& operator=(const TimeoutScope&) = delete;

 private:
  void restore_mask() noexcept {
    if (restore_mask_) ::pthread_sigmask(SIG_SETMASK, &saved_mask_, nullptr);
  }

  sigset_t saved_mask_;
  bool restore_mask_ = false;
  timer_t timer_{};
};

}  // namespace

// --- LockFile ---------------------------------------------------------------

LockFile LockFile::open(const std::string& path) {
  register_fork_handlers();
  auto node = std::make_unique<LockFileNode>();
  // Opens and links under the registry's mutex: a fork() in between would
  // otherwise hand the child a descriptor its fork handler does not know.
  auto open_and_link = [&]() -> int {
    Registry& r = registry();
    std::lock_guard<std::mutex> guard(r.mutex);
    const int fd = open_retrying(path);
    if (fd < 0) return errno;
    node->fd = fd;
    link(r, node.get());
    return 0;
  };
  int err = open_and_link();
  if (err == ENOENT) {
    err = create_parent_directories(path);
    if (err == 0) err = open_and_link();
  }
  if (err != 0) {
    throw std::system_error(err, std::generic_category(), "open lock file '" + path + "'");
  }
  return LockFile(node.release());
}

LockFile::LockFile(LockFile&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}

LockFile& LockFile::operator=(LockFile&& other) noexcept {
  if (this != &other) {
    close();
    node_ = std::exchange(other.node_, nullptr);
  }
  return *this;
}

LockFile::~LockFile() { close(); }

bool LockFile::is_open() const noexcept { return node_ != nullptr && node_->fd >= 0; }

int LockFile::fd() const noexcept { return node_ != nullptr ? node_->fd : -1; }

std::optional<FileLockMode> LockFile::held() const noexcept {
  return node_ != nullptr ? node_->held : std::nullopt;
}

bool LockFile::try_lock(FileLockMode mode) {
  if (whole_file_lock(node_->fd, F_OFD_SETLK, lock_type(mode)) == 0) {
    node_->held = mode;
    return true;
  }
  // A conflicting lock: EAGAIN on Linux, EACCES allowed by POSIX.
  if (errno == EAGAIN || errno == EACCES) return false;
  throw_errno(errno, "fcntl(F_OFD_SETLK)");
}

bool LockFile::lock(FileLockMode mode, const Deadline& deadline) {
  const short type = lock_type(mode);
  if (deadline.is_never()) {
    while (whole_file_lock(node_->fd, F_OFD_SETLKW, type) != 0) {
      if (errno != EINTR) throw_errno(errno, "fcntl(F_OFD_SETLKW)");
    }
    node_->held = mode;
    return true;
  }
  if (try_lock(mode)) return true;
  if (deadline.has_passed()) return false;

  const int signo = timeout_signal();
  ensure_handler(signo);
  TimeoutScope scope(signo, deadline);
  for (;;) {
    if (whole_file_lock(node_->fd, F_OFD_SETLKW, type) == 0) {
      node_->held = mode;
      return true;
    }
    if (errno != EINTR) throw_errno(errno, "fcntl(F_OFD_SETLKW)");
    // Our timer's signal, or anyone else's: only the clock decides.
    if (deadline.has_passed()) return false;
  }
}

void LockFile::unlock() noexcept {
  if (node_ == nullptr || !node_->held) return;
  if (node_->fd >= 0 && whole_file_lock(node_->fd, F_OFD_SETLK, F_UNLCK) != 0) {
    close();  // dropping the description's descriptor drops its lock as well
    return;
  }
  node_->held.reset();
}

void LockFile::close() noexcept {
  if (node_ == nullptr) return;
  LockFileNode* node = std::exchange(node_, nullptr);
  if (node->fd >= 0) {
    // Explicitly, in case another reference to the description exists (e.g.
    // a posix_spawn child between its clone and its exec).
    if (node->held) whole_file_lock(node->fd, F_OFD_SETLK, F_UNLCK);
    Registry& r = registry();
    std::lock_guard<std::mutex> guard(r.mutex);
    unlink(r, node);
    ::close(node->fd);
  }
  delete node;
}

// --- The timeout signal -----------------------------------------------------

int timeout_signal() noexcept {
  const int signo = configured_signal.load(std::memory_order_relaxed);
  return signo != 0 ? signo : SIGRTMIN + MP_FILE_LOCK_SIGRTMIN_OFFSET;
}

void set_timeout_signal(int signo) {
  if (signo < SIGRTMIN || signo > SIGRTMAX) {
    throw ValueError("the timeout signal must be a real-time signal (SIGRTMIN..SIGRTMAX)");
  }
  configured_signal.store(signo, std::memory_order_relaxed);
}

}  // namespace mp::platform
