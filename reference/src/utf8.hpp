// Internal to libmp: the strict UTF-8 decoder shared by the codec (pickle strings) and
// mp::Value's repr(). Not installed.
#ifndef MP_SRC_UTF8_HPP_
#define MP_SRC_UTF8_HPP_

#include <cstddef>
#include <string_view>

namespace mp::detail {

// Decodes one strict UTF-8 sequence (no overlongs, no surrogates, at most
// U+10FFFF) at s[i]. Returns its length, or 0 if the bytes there are invalid.
inline std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t len;
  char32_t min;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2, cp = b0 & 0x1fu, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3, cp = b0 & 0x0fu, min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4, cp = b0 & 0x07u, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3fu);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

}  // namespace mp::detail

#endif  // MP_SRC_UTF8_HPP_
