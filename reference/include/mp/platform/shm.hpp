// -----------------------------------------------------------------------------
// File: platform/shm.hpp
// -----------------------------------------------------------------------------
//
// INTERNAL: part of libmp's platform layer. Users of libmp do not include this
// header; its contents may change without notice.
//
// Shared memory segments. For now only anonymous ones: a MAP_SHARED |
// MAP_ANONYMOUS mapping, zero-filled, that every process forked after its
// creation shares (the child inherits the mapping at the same address). Each
// process unmaps its own view when its SharedMapping is destroyed; the memory
// goes away when the last process unmaps it or exits.

#ifndef MP_PLATFORM_SHM_HPP_
#define MP_PLATFORM_SHM_HPP_

#include <cstddef>

namespace mp::platform {

// Size of a page; segment sizes are rounded up to a multiple of it.
std::size_t page_size() noexcept;

// mp::platform::SharedMapping
//
// Owns one mapping of a shared segment in this process. Move-only; a
// moved-from or default-constructed SharedMapping owns nothing.
class SharedMapping {
 public:
  // SharedMapping::anonymous()
  //
  // Maps a new zero-filled anonymous shared segment of at least `size` bytes,
  // page aligned. Throws mp::ValueError if `size` is 0 and std::system_error
  // if the kernel refuses the mapping.
  static SharedMapping anonymous(std::size_t size);

  SharedMapping() noexcept = default;
  SharedMapping(SharedMapping&& other) noexcept;
  SharedMapping& operator=(SharedMapping&& other) noexcept;
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;
  ~SharedMapping();

  // The first byte of the mapping (page aligned), or nullptr if empty.
  void* data() const noexcept { return data_; }
  // The mapped size in bytes (a multiple of page_size()), or 0 if empty.
  std::size_t size() const noexcept { return size_; }
  explicit operator bool() const noexcept { return data_ != nullptr; }

 private:
  SharedMapping(void* data, std::size_t size) noexcept : data_(data), size_(size) {}
  void reset() noexcept;

  void* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace mp::platform

#endif  // MP_PLATFORM_SHM_HPP_
