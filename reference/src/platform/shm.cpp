#include "mp/platform/shm.hpp"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <system_error>
#include <utility>

#include "mp/errors.hpp"

namespace mp::platform {

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

SharedMapping SharedMapping::anonymous(std::size_t size) {
  if (size == 0) throw ValueError("shared mapping size must be positive");
  const std::size_t page = page_size();
  if (size > SIZE_MAX - (page - 1)) {
    throw std::system_error(ENOMEM, std::generic_category(), "mmap(MAP_SHARED|MAP_ANONYMOUS)");
  }
  const std::size_t rounded = (size + page - 1) / page * page;
  void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(), "mmap(MAP_SHARED|MAP_ANONYMOUS)");
  }
  return SharedMapping(p, rounded);
}

SharedMapping::SharedMapping(SharedMapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

SharedMapping& SharedMapping::operator=(SharedMapping&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SharedMapping::~SharedMapping() { reset(); }

void SharedMapping::reset() noexcept {
  if (data_ != nullptr) {
    // munmap of a mapping we own cannot fail; nothing useful to do if it did.
    munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }
}

}  // namespace mp::platform
