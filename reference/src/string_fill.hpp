// Internal: growing a std::string by bytes that are written straight into it,
// without zero-filling them first.
//
// recv_bytes() returns a std::string; with C++20's resize() every received
// byte is first written as '\0' and then overwritten by the read, which costs
// about a fifth of the throughput of a 1 MiB message (the zero-fill is a full
// extra pass over memory). C++23's std::string::resize_and_overwrite() lets the
// reads write into the new storage directly. This is libmp's only C++23 use:
// string_fill.cpp is compiled as C++23 where the compiler offers it (see
// reference/CMakeLists.txt); elsewhere grow_and_fill() zero-fills as before.
#ifndef MP_SRC_STRING_FILL_HPP_
#define MP_SRC_STRING_FILL_HPP_

#include <cstddef>
#include <string>

namespace mp::detail {

// Writes at most `size` bytes at `data`, from the start; returns how many (or
// throws).
using FillFunction = std::size_t (*)(void* context, char* data, std::size_t size);

// grow_and_fill()
//
// Lets fill(context, s.data() + old_size, size - old_size) append to `s` (old
// bytes kept) up to `size` bytes in all; returns how many bytes fill wrote,
// which `s` grew by. If fill throws, `s` keeps its old contents and size and
// the exception propagates. Requires size >= s.size().
std::size_t grow_and_fill(std::string& s, std::size_t size, FillFunction fill, void* context);

// Whether grow_and_fill() writes without zero-filling first (C++23 available).
bool grow_and_fill_skips_zeroing() noexcept;

// The same with any callable `std::size_t f(char* data, std::size_t size)`.
template <class F>
std::size_t grow_and_fill(std::string& s, std::size_t size, F& f) {
  return grow_and_fill(
      s, size,
      [](void* context, char* data, std::size_t n) -> std::size_t {
        return (*static_cast<F*>(context))(data, n);
      },
      static_cast<void*>(&f));
}

}  // namespace mp::detail

#endif  // MP_SRC_STRING_FILL_HPP_
