// Shared values: RawValue, RawArray and their synchronized wrappers
// (spec/sharedctypes/sharedctypes.md). Each object is one anonymous shared
// mapping (platform::SharedMapping), inherited by forked children.
#include "mp/sharedctypes.hpp"

#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "mp/errors.hpp"
#include "mp/platform/shm.hpp"
#include "utf8.hpp"

namespace mp {
namespace {

// The C type behind a type code ([sharedctypes.typecode.table]).
enum class Kind { kSigned, kUnsigned, kFloat, kChar, kWchar };

struct CodeInfo {
  char code;
  Kind kind;
  std::size_t size;
};

constexpr CodeInfo kCodes[] = {
    {'b', Kind::kSigned, 1},   {'B', Kind::kUnsigned, 1}, {'h', Kind::kSigned, 2},
    {'H', Kind::kUnsigned, 2}, {'i', Kind::kSigned, 4},   {'I', Kind::kUnsigned, 4},
    {'l', Kind::kSigned, 8},   {'L', Kind::kUnsigned, 8}, {'q', Kind::kSigned, 8},
    {'Q', Kind::kUnsigned, 8}, {'f', Kind::kFloat, 4},    {'d', Kind::kFloat, 8},
    {'c', Kind::kChar, 1},     {'u', Kind::kWchar, 4},
};
static_assert(sizeof(long) == 8 && sizeof(wchar_t) == 4 && sizeof(short) == 2 && sizeof(int) == 4,
              "the type code table assumes Linux x86-64 (LP64) sizes");

// [sharedctypes.typecode.unknown.kind]
const CodeInfo& info_of(std::string_view typecode) {
  if (typecode.size() == 1) {
    for (const auto& c : kCodes)
      if (c.code == typecode[0]) return c;
  }
  throw TypeError("this type has no size");
}

const CodeInfo& info_of(char code) { return info_of(std::string_view(&code, 1)); }

std::string type_error_text(const Value& v, const char* what) {
  return std::string("'") + v.type_name() + "' " + what;
}

// Converts `v` for `info` into `out` (info.size bytes). Throws mp::TypeError,
// writing nothing, for a value the code refuses ([sharedctypes.typecode.*]).
void encode(const CodeInfo& info, const Value& v, std::byte* out) {
  switch (info.kind) {
    case Kind::kSigned:
    case Kind::kUnsigned: {
      std::uint64_t bits;
      if (v.is_int()) {
        bits = static_cast<std::uint64_t>(v.as_int());
      } else if (v.is_bool()) {  // [sharedctypes.typecode.bool]
        bits = v.as_bool() ? 1 : 0;
      } else {
        throw TypeError(type_error_text(v, "object cannot be interpreted as an integer"));
      }
      // Modulo 2^bits, two's complement ([sharedctypes.typecode.range]): the
      // low bytes of the little-endian 64-bit pattern.
      std::memcpy(out, &bits, info.size);
      return;
    }
    case Kind::kFloat: {
      double d;
      if (v.is_float()) {
        d = v.as_float();
      } else if (v.is_int()) {  // [sharedctypes.typecode.int_to_float]
        d = static_cast<double>(v.as_int());
      } else if (v.is_bool()) {
        d = v.as_bool() ? 1.0 : 0.0;
      } else {
        throw TypeError(std::string("must be real number, not ") + v.type_name());
      }
      if (info.size == 4) {
        const float f = static_cast<float>(d);  // IEEE: nearest, or +-inf
        std::memcpy(out, &f, 4);
      } else {
        std::memcpy(out, &d, 8);
      }
      return;
    }
    case Kind::kChar: {  // [sharedctypes.typecode.char]
      unsigned char c;
      if (v.is_bytes() && v.as_bytes().size() == 1) {
        c = static_cast<unsigned char>(v.as_bytes()[0]);
      } else if (v.is_int() && v.as_int() >= 0 && v.as_int() <= 255) {
        c = static_cast<unsigned char>(v.as_int());
      } else if (v.is_bool()) {
        c = v.as_bool() ? 1 : 0;
      } else {
        throw TypeError("one character bytes, bytearray or integer expected");
      }
      std::memcpy(out, &c, 1);
      return;
    }
    case Kind::kWchar: {  // [sharedctypes.typecode.wchar]
      if (!v.is_string())
        throw TypeError(std::string("unicode string expected instead of ") + v.type_name() +
                        " instance");
      const std::string& s = v.as_string();
      char32_t cp = 0;
      const std::size_t n = s.empty() ? 0 : detail::decode_utf8(s, 0, cp);
      if (n == 0 || n != s.size()) throw TypeError("one character unicode string expected");
      const std::uint32_t w = static_cast<std::uint32_t>(cp);
      std::memcpy(out, &w, 4);
      return;
    }
  }
}

std::uint32_t load_wchar(const std::byte* in) {
  std::uint32_t w;
  std::memcpy(&w, in, 4);
  if (w > 0x10ffff || (w >= 0xd800 && w <= 0xdfff))
    throw ValueError("the stored wchar_t " + std::to_string(w) + " is not a character");
  return w;
}

Value decode(const CodeInfo& info, const std::byte* in) {
  switch (info.kind) {
    case Kind::kSigned: {
      switch (info.size) {
        case 1: {
          std::int8_t x;
          std::memcpy(&x, in, 1);
          return Value(static_cast<std::int64_t>(x));
        }
        case 2: {
          std::int16_t x;
          std::memcpy(&x, in, 2);
          return Value(static_cast<std::int64_t>(x));
        }
        case 4: {
          std::int32_t x;
          std::memcpy(&x, in, 4);
          return Value(static_cast<std::int64_t>(x));
        }
        default: {
          std::int64_t x;
          std::memcpy(&x, in, 8);
          return Value(x);
        }
      }
    }
    case Kind::kUnsigned: {
      std::uint64_t x = 0;
      std::memcpy(&x, in, info.size);
      if (x > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        throw OverflowError("the value " + std::to_string(x) +
                            " is outside the value domain (int64)");
      return Value(static_cast<std::int64_t>(x));
    }
    case Kind::kFloat: {
      if (info.size == 4) {
        float f;
        std::memcpy(&f, in, 4);
        return Value(static_cast<double>(f));
      }
      double d;
      std::memcpy(&d, in, 8);
      return Value(d);
    }
    case Kind::kChar:
      return Value::bytes(std::string_view(reinterpret_cast<const char*>(in), 1));
    case Kind::kWchar: {
      std::string s;
      detail::append_utf8(s, load_wchar(in));
      return Value(std::move(s));
    }
  }
  return Value();
}

// Splits a sequence (an initializer or the values of a slice assignment) into
// element values: a list's items; bytes' octets (bytes of length 1 for 'c',
// ints otherwise); a string's characters.
std::vector<Value> split_sequence(const CodeInfo& info, const Value& seq) {
  std::vector<Value> out;
  if (seq.is_list()) {
    out = seq.as_list();
  } else if (seq.is_bytes()) {
    const Bytes& octets = seq.as_bytes();
    out.resize(octets.size());
    for (std::size_t i = 0; i < octets.size(); ++i) {
      if (info.kind == Kind::kChar)
        out[i] = Value(Bytes{octets[i]});
      else
        out[i] = Value(std::to_integer<int>(octets[i]));
    }
  } else if (seq.is_string()) {
    const std::string& s = seq.as_string();
    for (std::size_t i = 0; i < s.size();) {
      char32_t cp = 0;
      std::size_t n = detail::decode_utf8(s, i, cp);
      if (n == 0) throw ValueError("the string is not valid UTF-8");
      out.push_back(Value(s.substr(i, n)));
      i += n;
    }
  } else {
    throw TypeError(std::string("'") + seq.type_name() + "' object is not a sequence");
  }
  return out;
}

// Converts every element before anything is written, so that a refused one
// changes nothing.
std::vector<std::byte> encode_all(const CodeInfo& info, const std::vector<Value>& items) {
  std::vector<std::byte> out(items.size() * info.size);
  for (std::size_t i = 0; i < items.size(); ++i) encode(info, items[i], out.data() + i * info.size);
  return out;
}

// Python's slice.indices() and slice length.
struct SliceRange {
  std::int64_t start, step, count;
};

SliceRange resolve(const Slice& s, std::size_t size) {
  const auto len = static_cast<std::int64_t>(size);
  const std::int64_t step = s.step.value_or(1);
  if (step == 0) throw ValueError("slice step cannot be zero");
  const std::int64_t lower = step < 0 ? -1 : 0;
  const std::int64_t upper = step < 0 ? len - 1 : len;
  auto clamp = [&](std::optional<std::int64_t> v, std::int64_t open) {
    if (!v) return open;
    std::int64_t x = *v;
    if (x < 0) {
      x = x < std::numeric_limits<std::int64_t>::min() + len ? lower : x + len;
      if (x < lower) x = lower;
    } else if (x > upper) {
      x = upper;
    }
    return x;
  };
  const std::int64_t start = clamp(s.start, step < 0 ? upper : lower);
  const std::int64_t stop = clamp(s.stop, step < 0 ? lower : upper);
  std::int64_t count = 0;
  if (step < 0) {
    if (stop < start) count = (start - stop - 1) / (-step) + 1;
  } else if (start < stop) {
    count = (stop - start - 1) / step + 1;
  }
  return {start, step, count};
}

}  // namespace

namespace sharedctypes_detail {

void check_type(char code, bool is_signed, bool is_float, bool is_char, bool is_wchar,
                std::size_t size) {
  const CodeInfo& info = info_of(code);
  bool ok;
  switch (info.kind) {
    case Kind::kChar:
      ok = is_char;
      break;
    case Kind::kWchar:
      ok = is_wchar;
      break;
    case Kind::kFloat:
      ok = is_float && size == info.size;
      break;
    default:
      ok = !is_char && !is_wchar && !is_float && size == info.size &&
           is_signed == (info.kind == Kind::kSigned);
  }
  if (!ok) throw TypeError(std::string("the C++ type does not match the type code '") + code + "'");
}

AccessGuard::AccessGuard(SyncLock& lock) : lock_(lock) {
  if (auto* l = std::get_if<Lock>(&lock_)) {
    l->lock();
    return;
  }
  RLock& r = std::get<RLock>(lock_);
  try {
    r.acquire();
  } catch (const OwnerDied&) {
    // [sharedctypes.kill.owner_died]: report the death and leave the lock
    // free, so that the next access proceeds.
    r.release();
    throw;
  }
}

AccessGuard::~AccessGuard() {
  try {
    std::visit([](auto& l) { l.release(); }, lock_);
  } catch (const Error&) {
    // Only possible when another party released a given mp::Lock during the
    // access; the lock is free either way.
  }
}

Storage::Storage(std::string_view typecode, std::size_t length) {
  const CodeInfo& info = info_of(typecode);
  if (length > std::numeric_limits<std::size_t>::max() / info.size / 2)
    throw ValueError("array too large");
  const std::size_t bytes = length * info.size;
  mapping_ = std::make_shared<platform::SharedMapping>(
      platform::SharedMapping::anonymous(bytes == 0 ? 1 : bytes));
  data_ = static_cast<std::byte*>(mapping_->data());
  length_ = length;
  elem_ = info.size;
  code_ = info.code;
}

Value Storage::load(std::size_t i) const { return mp::decode(info_of(code_), data_ + i * elem_); }

void Storage::store(std::size_t i, const Value& v) {
  std::byte tmp[8];
  mp::encode(info_of(code_), v, tmp);
  std::memcpy(data_ + i * elem_, tmp, elem_);
}

void Storage::encode(const Value& v, std::byte* out) const { mp::encode(info_of(code_), v, out); }

Value Storage::decode(const std::byte* in) const { return mp::decode(info_of(code_), in); }

}  // namespace sharedctypes_detail

std::size_t typecode_size(std::string_view typecode) { return info_of(typecode).size; }

// ---------------------------------------------------------------- RawValue

RawValue::RawValue(std::string_view typecode) : storage_(typecode, 1) {}

// Validates the code and converts `initial` before any memory is made
// ([sharedctypes.construct.initial.bad]: nothing is created on failure).
RawValue::RawValue(std::string_view typecode, const Value& initial)
    : storage_([&] {
        std::byte tmp[8];
        encode(info_of(typecode), initial, tmp);
        return sharedctypes_detail::Storage(typecode, 1);
      }()) {
  storage_.store(0, initial);
}

// ---------------------------------------------------------------- RawArray

namespace {
std::size_t checked_length(std::string_view typecode, std::int64_t size) {
  info_of(typecode);
  if (size < 0) throw ValueError("Array length must be >= 0, not " + std::to_string(size));
  return static_cast<std::size_t>(size);
}
}  // namespace

RawArray::RawArray(std::string_view typecode, std::int64_t size)
    : storage_(typecode, checked_length(typecode, size)) {}

RawArray::RawArray(std::string_view typecode, const Value& initializer)
    : storage_([&] {
        const CodeInfo& info = info_of(typecode);
        if (initializer.is_int())
          return sharedctypes_detail::Storage(typecode,
                                              checked_length(typecode, initializer.as_int()));
        // [sharedctypes.array.construct.initializer]: convert all, then allocate.
        const std::vector<std::byte> bytes = encode_all(info, split_sequence(info, initializer));
        sharedctypes_detail::Storage s(typecode, bytes.size() / info.size);
        if (!bytes.empty()) std::memcpy(s.bytes(), bytes.data(), bytes.size());
        return s;
      }()) {}

std::size_t RawArray::offset(std::int64_t index) const {
  const auto n = static_cast<std::int64_t>(size());
  if (index < 0) index += n;
  if (index < 0 || index >= n) throw IndexError("invalid index");
  return static_cast<std::size_t>(index) * element_size();
}

Value RawArray::get(std::int64_t index) const {
  return storage_.decode(storage_.bytes() + offset(index));
}

void RawArray::set(std::int64_t index, const Value& v) {
  const std::size_t at = offset(index);
  std::byte tmp[8];
  storage_.encode(v, tmp);
  std::memcpy(storage_.bytes() + at, tmp, element_size());
}

Value RawArray::get_slice(const Slice& slice) const {
  const SliceRange r = resolve(slice, size());
  const std::size_t es = element_size();
  const std::byte* base = storage_.bytes();
  auto at = [&](std::int64_t k) {
    return base + static_cast<std::size_t>(r.start + k * r.step) * es;
  };
  if (typecode() == 'c') {
    std::string out;
    for (std::int64_t k = 0; k < r.count; ++k) out += static_cast<char>(*at(k));
    return Value::bytes(out);
  }
  if (typecode() == 'u') {
    std::string out;
    for (std::int64_t k = 0; k < r.count; ++k) detail::append_utf8(out, load_wchar(at(k)));
    return Value(std::move(out));
  }
  Value::List out;
  out.reserve(static_cast<std::size_t>(r.count));
  for (std::int64_t k = 0; k < r.count; ++k) out.push_back(storage_.decode(at(k)));
  return Value(std::move(out));
}

void RawArray::set_slice(const Slice& slice, const Value& values) {
  const SliceRange r = resolve(slice, size());
  const CodeInfo& info = info_of(typecode());
  const std::vector<Value> items = split_sequence(info, values);
  if (static_cast<std::int64_t>(items.size()) != r.count)
    throw ValueError("Can only assign sequence of same size");
  const std::vector<std::byte> bytes = encode_all(info, items);
  const std::size_t es = element_size();
  for (std::int64_t k = 0; k < r.count; ++k)
    std::memcpy(storage_.bytes() + static_cast<std::size_t>(r.start + k * r.step) * es,
                bytes.data() + static_cast<std::size_t>(k) * es, es);
}

namespace {
void require_char_array(char code) {
  if (code != 'c') throw AttributeError("only arrays of type code 'c' have 'value' and 'raw'");
}
const Bytes& bytes_of(const Value& v) {
  if (!v.is_bytes())
    throw TypeError(std::string("bytes expected instead of ") + v.type_name() + " instance");
  return v.as_bytes();
}
}  // namespace

Value RawArray::value() const {
  require_char_array(typecode());
  const char* p = reinterpret_cast<const char*>(storage_.bytes());
  std::size_t n = 0;
  while (n < size() && p[n] != '\0') ++n;
  return Value::bytes(std::string_view(p, n));
}

Value RawArray::raw() const {
  require_char_array(typecode());
  return Value::bytes(std::string_view(reinterpret_cast<const char*>(storage_.bytes()), size()));
}

void RawArray::set_value(const Value& v) {
  require_char_array(typecode());
  const Bytes& b = bytes_of(v);
  if (b.size() > size()) throw ValueError("byte string too long");
  if (!b.empty()) std::memcpy(storage_.bytes(), b.data(), b.size());
  if (b.size() < size()) storage_.bytes()[b.size()] = std::byte{0};
}

void RawArray::set_raw(const Value& v) {
  require_char_array(typecode());
  const Bytes& b = bytes_of(v);
  if (b.size() > size()) throw ValueError("byte string too long");
  if (!b.empty()) std::memcpy(storage_.bytes(), b.data(), b.size());
}

// ---------------------------------------------------------------- wrappers

namespace {
SyncLock lock_or_new(std::optional<SyncLock> lock) {
  if (lock) return std::move(*lock);
  return SyncLock(std::in_place_type<RLock>);  // [sharedctypes.construct.lock.default]
}

bool acquire_lock(SyncLock& lock, bool block, std::optional<double> timeout) {
  return std::visit([&](auto& l) { return l.acquire(block, timeout); }, lock);
}
void release_lock(SyncLock& lock) {
  std::visit([](auto& l) { l.release(); }, lock);
}

RawValue make_raw_value(std::string_view typecode, const std::optional<Value>& initial) {
  return initial ? RawValue(typecode, *initial) : RawValue(typecode);
}
}  // namespace

using sharedctypes_detail::AccessGuard;

SynchronizedValue::SynchronizedValue(std::string_view typecode, std::optional<Value> initial,
                                     std::optional<SyncLock> lock)
    : obj_(make_raw_value(typecode, initial)), lock_(lock_or_new(std::move(lock))) {}

SynchronizedValue::SynchronizedValue(RawValue raw, std::optional<SyncLock> lock)
    : obj_(std::move(raw)), lock_(lock_or_new(std::move(lock))) {}

Value SynchronizedValue::value() const {
  AccessGuard g(lock_);
  return obj_.value();
}

void SynchronizedValue::set_value(const Value& v) {
  AccessGuard g(lock_);
  obj_.set_value(v);
}

bool SynchronizedValue::acquire(bool block, std::optional<double> timeout) {
  return acquire_lock(lock_, block, timeout);
}
void SynchronizedValue::release() { release_lock(lock_); }

SynchronizedArray::SynchronizedArray(std::string_view typecode, const Value& size_or_initializer,
                                     std::optional<SyncLock> lock)
    : obj_(typecode, size_or_initializer), lock_(lock_or_new(std::move(lock))) {}

SynchronizedArray::SynchronizedArray(std::string_view typecode, std::int64_t size,
                                     std::optional<SyncLock> lock)
    : obj_(typecode, size), lock_(lock_or_new(std::move(lock))) {}

SynchronizedArray::SynchronizedArray(RawArray raw, std::optional<SyncLock> lock)
    : obj_(std::move(raw)), lock_(lock_or_new(std::move(lock))) {}

Value SynchronizedArray::get(std::int64_t index) const {
  AccessGuard g(lock_);
  return obj_.get(index);
}
void SynchronizedArray::set(std::int64_t index, const Value& v) {
  AccessGuard g(lock_);
  obj_.set(index, v);
}
Value SynchronizedArray::get_slice(const Slice& slice) const {
  AccessGuard g(lock_);
  return obj_.get_slice(slice);
}
void SynchronizedArray::set_slice(const Slice& slice, const Value& values) {
  AccessGuard g(lock_);
  obj_.set_slice(slice, values);
}
Value SynchronizedArray::value() const {
  AccessGuard g(lock_);
  return obj_.value();
}
Value SynchronizedArray::raw() const {
  AccessGuard g(lock_);
  return obj_.raw();
}
void SynchronizedArray::set_value(const Value& bytes) {
  AccessGuard g(lock_);
  obj_.set_value(bytes);
}
void SynchronizedArray::set_raw(const Value& bytes) {
  AccessGuard g(lock_);
  obj_.set_raw(bytes);
}

bool SynchronizedArray::acquire(bool block, std::optional<double> timeout) {
  return acquire_lock(lock_, block, timeout);
}
void SynchronizedArray::release() { release_lock(lock_); }

// ---------------------------------------------------------------- free functions

SynchronizedValue synchronized(const RawValue& obj, std::optional<SyncLock> lock) {
  return SynchronizedValue(obj, std::move(lock));
}
SynchronizedArray synchronized(const RawArray& obj, std::optional<SyncLock> lock) {
  return SynchronizedArray(obj, std::move(lock));
}
void synchronized(const SynchronizedValue&, std::optional<SyncLock>) {
  throw AssertionError("object already synchronized");
}
void synchronized(const SynchronizedArray&, std::optional<SyncLock>) {
  throw AssertionError("object already synchronized");
}

RawValue copy(const RawValue& obj) {
  const char code = obj.typecode();
  RawValue out(std::string_view(&code, 1));
  std::memcpy(out.data(), obj.data(), obj.size_bytes());
  return out;
}

RawArray copy(const RawArray& obj) {
  const char code = obj.typecode();
  RawArray out(std::string_view(&code, 1), static_cast<std::int64_t>(obj.size()));
  if (obj.size() > 0) std::memcpy(out.bytes(), obj.bytes(), obj.size() * obj.element_size());
  return out;
}

}  // namespace mp
