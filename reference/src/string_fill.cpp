// See string_fill.hpp. Compiled as C++23 when the compiler offers it.
#include "string_fill.hpp"

#include <exception>
#include <utility>

namespace mp::detail {

#if defined(__cpp_lib_string_resize_and_overwrite)

std::size_t grow_and_fill(std::string& s, std::size_t size, FillFunction fill, void* context) {
  const std::size_t old = s.size();
  if (size <= old) return 0;
  std::exception_ptr failure;
  std::size_t wrote = 0;
  // The operation must not throw (undefined behaviour), and the string ends where the bytes
  // written end (no indeterminate bytes in it): a failure keeps the old bytes and is rethrown.
  //
  // The operation writes up to `size`, not up to its second argument: libstdc++ 12.2 (Debian
  // 12) passes the string's new capacity there when it grows (_M_create() rounds its size
  // argument up in place), which may be more than was asked for.
  s.resize_and_overwrite(size, [&](char* data, std::size_t) noexcept {
    try {
      wrote = fill(context, data + old, size - old);
      return old + wrote;
    } catch (...) {
      failure = std::current_exception();
      return old;
    }
  });
  if (failure) std::rethrow_exception(failure);
  return wrote;
}

bool grow_and_fill_skips_zeroing() noexcept { return true; }

#else

std::size_t grow_and_fill(std::string& s, std::size_t size, FillFunction fill, void* context) {
  const std::size_t old = s.size();
  if (size <= old) return 0;
  s.resize(size);
  std::size_t wrote = 0;
  try {
    wrote = fill(context, s.data() + old, size - old);
  } catch (...) {
    s.resize(old);
    throw;
  }
  s.resize(old + wrote);
  return wrote;
}

bool grow_and_fill_skips_zeroing() noexcept { return false; }

#endif

}  // namespace mp::detail
