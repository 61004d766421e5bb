// mp::SharedMemory (spec/sharedctypes/shared_memory.md): POSIX shm_open +
// ftruncate + mmap, without any resource tracker. (These system calls live
// here rather than in src/platform/ for now; they are Linux/POSIX only.)
#include "mp/shared_memory.hpp"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <utility>

#include "mp/errors.hpp"

namespace mp {
namespace {

[[noreturn]] void throw_os(int err) { throw OSError(err, std::strerror(err)); }

int close_keeping_errno(int fd) {
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return 0;
}

// "mp_" and 8 hexadecimal digits: 11 characters, 12 with the leading '/',
// within the 14 of BSD ([shared_memory.create.generated.form] is free).
std::string generated_name() {
  std::uint32_t r = 0;
  if (::getrandom(&r, sizeof r, 0) != static_cast<ssize_t>(sizeof r)) {
    static thread_local std::mt19937 fallback{std::random_device{}()};
    r = static_cast<std::uint32_t>(fallback());
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "mp_%08x", r);
  return buf;
}

// Creates a segment of `size` bytes named `name` (system name "/" + name) and
// maps it. On any failure the segment is removed again before the throw
// ([shared_memory.create.failed.clean]). Returns nullptr with errno EEXIST,
// touching nothing, when the name exists.
std::byte* create_segment(const std::string& name, std::size_t size) {
  const std::string sys = "/" + name;
  const int fd = ::shm_open(sys.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return nullptr;  // [shared_memory.create.exists]: untouched
    throw_os(errno);
  }
  auto fail = [&](int err) {
    ::shm_unlink(sys.c_str());
    ::close(fd);
    throw_os(err);
  };
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) fail(errno);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) fail(errno);
  ::close(fd);
  return static_cast<std::byte*>(p);
}

}  // namespace

SharedMemory::SharedMemory(std::optional<std::string> name, bool create, std::int64_t size) {
  // The checks CPython makes, in its order ([shared_memory.size.negative],
  // [shared_memory.create.size.zero], [shared_memory.name.none]).
  if (size < 0) throw ValueError("'size' must be a positive integer");
  if (create && size == 0) throw ValueError("'size' must be a positive number different from zero");
  if (!name && !create) throw ValueError("'name' can only be None if create=True");
  if (name && name->find('\0') != std::string::npos) throw ValueError("embedded null character");

  if (create) {
    const auto n = static_cast<std::size_t>(size);
    if (name) {
      std::byte* p = create_segment(*name, n);
      if (p == nullptr) throw_os(EEXIST);
      name_ = std::move(*name);
      data_ = p;
    } else {
      // [shared_memory.create.generated]: retry on a collision.
      for (;;) {
        std::string candidate = generated_name();
        std::byte* p = create_segment(candidate, n);
        if (p != nullptr) {
          name_ = std::move(candidate);
          data_ = p;
          break;
        }
      }
    }
    size_ = n;
    return;
  }

  // Attach ([shared_memory.attach.name]); `size` is ignored
  // ([shared_memory.attach.size]).
  const std::string sys = "/" + *name;
  const int fd = ::shm_open(sys.c_str(), O_RDWR, 0600);
  if (fd < 0) throw_os(errno);  // ENOENT: [shared_memory.attach.missing]
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_os(err);
  }
  if (st.st_size <= 0) {
    close_keeping_errno(fd);
    throw ValueError("cannot mmap an empty file");
  }
  const auto n = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw_os(err);
  name_ = std::move(*name);
  size_ = n;
  data_ = static_cast<std::byte*>(p);
}

SharedMemory::SharedMemory(SharedMemory&& other) noexcept
    : name_(std::move(other.name_)),
      size_(other.size_),
      data_(std::exchange(other.data_, nullptr)) {}

SharedMemory& SharedMemory::operator=(SharedMemory&& other) noexcept {
  if (this != &other) {
    close();
    name_ = std::move(other.name_);
    size_ = other.size_;
    data_ = std::exchange(other.data_, nullptr);
  }
  return *this;
}

SharedMemory::~SharedMemory() { close(); }

void SharedMemory::close() noexcept {
  if (data_ != nullptr) {
    ::munmap(data_, size_);
    data_ = nullptr;
  }
}

std::span<std::byte> SharedMemory::buf() const {
  if (data_ == nullptr) throw ValueError("the shared memory handle is closed");
  return {data_, size_};
}

std::string SharedMemory::read(std::size_t offset, std::optional<std::size_t> count) const {
  const auto b = buf();
  if (offset > b.size()) throw ValueError("offset outside the segment");
  const std::size_t n = count.value_or(b.size() - offset);
  if (n > b.size() - offset) throw ValueError("range outside the segment");
  return std::string(reinterpret_cast<const char*>(b.data() + offset), n);
}

void SharedMemory::write(std::size_t offset, std::string_view data) {
  const auto b = buf();
  if (offset > b.size() || data.size() > b.size() - offset)
    throw ValueError("range outside the segment");
  if (!data.empty()) std::memcpy(b.data() + offset, data.data(), data.size());
}

void SharedMemory::unlink() const {
  const std::string sys = "/" + name_;
  if (::shm_unlink(sys.c_str()) != 0) throw_os(errno);  // ENOENT: [shared_memory.unlink.twice]
}

}  // namespace mp
