// -----------------------------------------------------------------------------
// File: sharedctypes.hpp
// -----------------------------------------------------------------------------
//
// This header defines *shared values*: C-typed scalars and fixed-length arrays
// of them, in memory that processes share, with the semantics of Python's
// `multiprocessing.sharedctypes` (normative text: mpspec
// `spec/sharedctypes/sharedctypes.md`).
//
//   mp::RawValue            one element in bare shared memory (RawValue, or
//                           Value(..., lock=False))
//   mp::RawArray            n elements in bare shared memory (RawArray, or
//                           Array(..., lock=False))
//   mp::SynchronizedValue   a RawValue behind a lock: Python's Value(...) and
//                           synchronized(raw_value)
//   mp::SynchronizedArray   a RawArray behind a lock: Python's Array(...) and
//                           synchronized(raw_array) (`value` / `raw` for 'c')
//   mp::SyncLock            the lock of a wrapper: an mp::Lock or an mp::RLock
//   mp::synchronized()      wraps a raw object
//   mp::copy()              a new raw object with the same contents
//
// (Python's `Value` is spelled SynchronizedValue here because mp::Value is the
// spec's value domain, value.hpp, which the dynamic accessors below take and
// return.)
//
// Type codes. An element's C type is named by a one-letter type code, with the
// sizes of Linux x86-64 ([sharedctypes.typecode.table]):
//
//   code  C type               bytes  read as (mp::Value)
//   ----  -------------------  -----  -----------------------------------
//   'b'   signed char          1      int
//   'B'   unsigned char        1      int
//   'h'   short                2      int
//   'H'   unsigned short       2      int
//   'i'   int                  4      int
//   'I'   unsigned int         4      int
//   'l'   long                 8      int
//   'L'   unsigned long        8      int (> INT64_MAX: OverflowError)
//   'q'   long long            8      int
//   'Q'   unsigned long long   8      int (> INT64_MAX: OverflowError)
//   'f'   float                4      float (the single-precision value)
//   'd'   double               8      float
//   'c'   char                 1      bytes of length 1
//   'u'   wchar_t              4      string of one character (UTF-8)
//
// Any other code (also "", "ii", "z") throws mp::TypeError("this type has no
// size") and creates nothing ([sharedctypes.typecode.unknown.kind]).
//
// Conversions on write (the same for initial values, elements, slices), as
// CPython's ctypes ([sharedctypes.typecode.*]):
//   - integer codes take an int (or a bool: 0/1) and store it modulo 2^bits,
//     two's complement for signed codes: 200 in 'b' reads -56
//     ([sharedctypes.typecode.range]);
//   - 'f' and 'd' take a float, an int or a bool ([sharedctypes.typecode.
//     int_to_float]); 'f' rounds to single precision (1e300 -> inf);
//   - 'c' takes bytes of length 1 or an int 0..255;
//   - 'u' takes a string of exactly one character (any code point);
//   - anything else throws mp::TypeError and stores nothing
//     ([sharedctypes.typecode.wrong_type]).
//
// Memory and processes. Each object made by a constructor (or by copy()) lives
// in its own anonymous MAP_SHARED mapping, zero-filled, like mp::Lock. A child
// forked afterwards shares it: writes by either are read by the other
// ([sharedctypes.process.inherit]). Copying a handle (RawValue, RawArray, a
// wrapper) yields another handle to the *same* memory; mp::copy() makes new
// memory. The mapping stays mapped in a process while any handle to it exists
// there. As for mp::Lock, handing an object to a spawned or unrelated process
// is not supported (use mp::SharedMemory, shared_memory.hpp, for that).
//
// Atomicity. Raw objects take no lock: nothing makes a read or write atomic
// with respect to a concurrent write in another thread or process
// ([sharedctypes.raw.not_atomic]). A wrapper holds its lock during each single
// read or write of the value, of an element and of a whole slice
// ([sharedctypes.value.locked], [sharedctypes.array.slice.atomic]). A
// read-modify-write is atomic only inside one acquisition of the lock
// ([sharedctypes.add.locked]):
//
//   mp::SynchronizedValue counter("i", 0);
//   {
//     std::lock_guard<mp::SynchronizedValue> g(counter);   // the wrapper's lock
//     counter.set_value(counter.value().as_int() + 1);      // recursive: fine
//   }
//   counter.set<std::int32_t>(counter.get<std::int32_t>() + 1);  // NOT atomic
//
// Blocking. Accesses through a wrapper wait while another thread or process
// holds its lock, without limit. Accesses through raw objects never wait.
//
// Crashes. When a process dies holding a wrapper's default lock (an mp::RLock,
// which is robust), the next access through the wrapper in another process
// throws mp::OwnerDied and leaves the lock free, so that the access after it
// proceeds; an explicit acquire() / lock() throws mp::OwnerDied and leaves the
// caller owning the lock (depth 1) ([sharedctypes.kill.owner_died]). The memory
// holds whatever the dead process wrote, perhaps half a slice. With a given
// mp::Lock, a dead holder leaves the lock held until a survivor releases it
// ([sharedctypes.kill.holder]). The memory itself is never affected by the
// death of a process ([sharedctypes.kill.memory]).
//
// Errors, besides the conversions above: a negative array length throws
// mp::ValueError; an index outside [-n, n) throws mp::IndexError("invalid
// index"); a slice step of 0 throws mp::ValueError; a slice assignment with
// the wrong number of values throws mp::ValueError("Can only assign sequence
// of same size"); 'c' arrays' set_value/set_raw with too many bytes throw
// mp::ValueError("byte string too long"); value() of an array of another code
// throws mp::AttributeError. Every failing write changes nothing. A failed
// mmap throws std::system_error.

#ifndef MP_SHAREDCTYPES_HPP_
#define MP_SHAREDCTYPES_HPP_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <variant>

#include "mp/lock.hpp"
#include "mp/rlock.hpp"
#include "mp/value.hpp"

namespace mp {

namespace platform {
class SharedMapping;
}  // namespace platform

// mp::SyncLock
//
// The lock of a synchronized wrapper: a non-recursive mp::Lock or a recursive,
// robust mp::RLock (the default).
using SyncLock = std::variant<Lock, RLock>;

namespace sharedctypes_detail {

// The type code's C type, for the typed accessors (get<T>, set<T>, data<T>).
// T must be the code's type exactly, up to signedness-preserving aliases
// (std::int64_t and long long both fit 'l' and 'q'; char32_t and wchar_t
// both fit 'u'); otherwise the accessor throws mp::TypeError.
template <class T>
constexpr bool kElementType =
    std::is_same_v<T, std::int8_t> || std::is_same_v<T, std::uint8_t> ||
    std::is_same_v<T, std::int16_t> || std::is_same_v<T, std::uint16_t> ||
    std::is_same_v<T, std::int32_t> || std::is_same_v<T, std::uint32_t> ||
    std::is_same_v<T, long> || std::is_same_v<T, unsigned long> || std::is_same_v<T, long long> ||
    std::is_same_v<T, unsigned long long> || std::is_same_v<T, float> ||
    std::is_same_v<T, double> || std::is_same_v<T, char> || std::is_same_v<T, wchar_t> ||
    std::is_same_v<T, char32_t>;

// Throws mp::TypeError unless T is the C type of `code`.
void check_type(char code, bool is_signed, bool is_float, bool is_char, bool is_wchar,
                std::size_t size);

template <class T>
void check_type(char code) {
  static_assert(kElementType<T>, "not the C type of any type code");
  check_type(code, std::is_signed_v<T>, std::is_floating_point_v<T>, std::is_same_v<T, char>,
             std::is_same_v<T, wchar_t> || std::is_same_v<T, char32_t>, sizeof(T));
}

// Holds the wrapper's lock for one access. An RLock whose owner died is
// released again and mp::OwnerDied thrown ([sharedctypes.kill.owner_died]).
class AccessGuard {
 public:
  explicit AccessGuard(SyncLock& lock);
  ~AccessGuard();
  AccessGuard(const AccessGuard&) = delete;
  AccessGuard& operator=(const AccessGuard&) = delete;

 private:
  SyncLock& lock_;
};

// Storage common to RawValue and RawArray: a handle to one shared mapping.
class Storage {
 public:
  Storage(std::string_view typecode, std::size_t length);  // zero-filled
  char typecode() const noexcept { return code_; }
  std::size_t element_size() const noexcept { return elem_; }
  std::size_t length() const noexcept { return length_; }
  std::byte* bytes() const noexcept { return data_; }
  mp::Value load(std::size_t i) const;
  void store(std::size_t i, const mp::Value& v);
  // Converts v for this code into `out` (element_size() bytes); throws
  // mp::TypeError, writes nothing, when refused.
  void encode(const mp::Value& v, std::byte* out) const;
  mp::Value decode(const std::byte* in) const;
  bool same_memory(const Storage& other) const noexcept { return data_ == other.data_; }

 private:
  std::shared_ptr<platform::SharedMapping> mapping_;
  std::byte* data_ = nullptr;
  std::size_t length_ = 0;
  std::size_t elem_ = 0;
  char code_ = 0;
};

}  // namespace sharedctypes_detail

// mp::typecode_size()
//
// The size in bytes of an element of `typecode`; throws mp::TypeError("this
// type has no size") for an unknown code.
std::size_t typecode_size(std::string_view typecode);

// mp::RawValue
//
// One element of a type code in bare shared memory. Copies are handles to the
// same memory. Never blocks; not thread safe for concurrent writes (the
// caller synchronises, e.g. through a SynchronizedValue).
class RawValue {
 public:
  // RawValue::RawValue()
  //
  // A new zero-filled element ([sharedctypes.construct.zero]), or one holding
  // `initial` converted by the code's rule ([sharedctypes.construct.initial]).
  // Throws mp::TypeError for an unknown code or a refused initial value
  // ([sharedctypes.construct.initial.bad]); nothing is created then.
  explicit RawValue(std::string_view typecode);
  RawValue(std::string_view typecode, const mp::Value& initial);

  char typecode() const noexcept { return storage_.typecode(); }
  std::size_t size_bytes() const noexcept { return storage_.element_size(); }

  // RawValue::value() / set_value()
  //
  // Reads or writes the element through the value domain
  // ([sharedctypes.value.read_write]). set_value() throws mp::TypeError for a
  // refused value and leaves the element unchanged; value() throws
  // mp::OverflowError for a 'Q' / 'L' value above INT64_MAX.
  mp::Value value() const { return storage_.load(0); }
  void set_value(const mp::Value& v) { storage_.store(0, v); }

  // RawValue::get<T>() / set<T>()
  //
  // The typed fast path: T is the code's C type (see the table above;
  // mp::TypeError otherwise). One plain load or store.
  template <class T>
  T get() const {
    sharedctypes_detail::check_type<T>(typecode());
    T out;
    std::memcpy(&out, storage_.bytes(), sizeof(T));
    return out;
  }
  template <class T>
  void set(T v) {
    sharedctypes_detail::check_type<T>(typecode());
    std::memcpy(storage_.bytes(), &v, sizeof(T));
  }

  // The element's bytes (size_bytes() of them), for the caller's own access.
  void* data() const noexcept { return storage_.bytes(); }

  // Whether two handles share the same memory.
  friend bool operator==(const RawValue& a, const RawValue& b) noexcept {
    return a.storage_.same_memory(b.storage_);
  }

 private:
  friend class RawArray;
  sharedctypes_detail::Storage storage_;
};

// mp::Slice
//
// Python's slice(start, stop, step): nullopt is an open end (step: 1).
struct Slice {
  std::optional<std::int64_t> start;
  std::optional<std::int64_t> stop;
  std::optional<std::int64_t> step;
};

// mp::RawArray
//
// A fixed number of elements of one type code in bare shared memory. Copies
// are handles to the same memory. Never blocks.
class RawArray {
 public:
  // RawArray::RawArray(code, size)
  //
  // `size` zero elements ([sharedctypes.array.construct.size]); 0 is allowed.
  // Throws mp::ValueError("Array length must be >= 0, not <size>") for a
  // negative size ([sharedctypes.array.construct.negative]) and mp::TypeError
  // for an unknown code.
  RawArray(std::string_view typecode, std::int64_t size);

  // RawArray::RawArray(code, initializer)
  //
  // An int `initializer` is a size, as above. A list gives one element per
  // item; bytes give one element per byte ('c': bytes of length 1; other
  // codes: the byte's int); a string gives one element per character ('u';
  // other codes refuse the characters). Each element is converted by the
  // code's rule; a refused one throws mp::TypeError and nothing is created
  // ([sharedctypes.array.construct.initializer]). Other value types throw
  // mp::TypeError.
  RawArray(std::string_view typecode, const mp::Value& initializer);

  char typecode() const noexcept { return storage_.typecode(); }
  std::size_t size() const noexcept { return storage_.length(); }  // len()
  std::size_t element_size() const noexcept { return storage_.element_size(); }

  // RawArray::get() / set()
  //
  // Element `index`; a negative index counts from the end
  // ([sharedctypes.array.index]). Throws mp::IndexError("invalid index")
  // outside [-size(), size()) ([sharedctypes.array.index.out_of_range]), and
  // set() mp::TypeError for a refused value; nothing changes then.
  mp::Value get(std::int64_t index) const;
  void set(std::int64_t index, const mp::Value& v);

  // RawArray::get_slice() / set_slice()
  //
  // Python's a[start:stop:step] with its clamping rules
  // ([sharedctypes.array.slice.read]): a list, bytes for 'c', a string for
  // 'u'. set_slice() takes a list, bytes or a string (split as for the
  // initializer); with another number of values than the slice selects it
  // throws mp::ValueError("Can only assign sequence of same size"), and with a
  // refused value mp::TypeError, changing nothing
  // ([sharedctypes.array.slice.write]). A step of 0 throws mp::ValueError.
  mp::Value get_slice(const Slice& slice) const;
  void set_slice(const Slice& slice, const mp::Value& values);

  // RawArray::value() / raw() / set_value() / set_raw() ('c' arrays)
  //
  // value(): the bytes up to the first zero byte; raw(): all of them.
  // set_value(b) stores b followed by a zero byte when there is room;
  // set_raw(b) stores b only. Both throw mp::ValueError("byte string too
  // long") when b is longer than the array ([sharedctypes.array.char]), and
  // mp::TypeError when b is not bytes. On arrays of another code all four
  // throw mp::AttributeError ([sharedctypes.array.no_value]).
  mp::Value value() const;
  mp::Value raw() const;
  void set_value(const mp::Value& bytes);
  void set_raw(const mp::Value& bytes);

  // The typed fast path: element `index` (bounds checked as get()), and all
  // elements as a span. T is the code's C type (mp::TypeError otherwise).
  template <class T>
  T get_as(std::int64_t index) const {
    sharedctypes_detail::check_type<T>(typecode());
    T out;
    std::memcpy(&out, storage_.bytes() + offset(index), sizeof(T));
    return out;
  }
  template <class T>
  void set_as(std::int64_t index, T v) {
    sharedctypes_detail::check_type<T>(typecode());
    std::memcpy(storage_.bytes() + offset(index), &v, sizeof(T));
  }
  template <class T>
  std::span<T> data() const {
    sharedctypes_detail::check_type<T>(typecode());
    return std::span<T>(reinterpret_cast<T*>(storage_.bytes()), size());
  }

  // All elements' bytes (size() * element_size() of them).
  void* bytes() const noexcept { return storage_.bytes(); }

  friend bool operator==(const RawArray& a, const RawArray& b) noexcept {
    return a.storage_.same_memory(b.storage_);
  }

 private:
  // The byte offset of element `index` (negative from the end); IndexError.
  std::size_t offset(std::int64_t index) const;

  sharedctypes_detail::Storage storage_;
};

// mp::SynchronizedValue
//
// A RawValue behind a lock ([sharedctypes.construct.lock.default],
// [sharedctypes.construct.lock.given]). Every value() and set_value() holds
// the lock for its duration (blocking without limit while another thread or
// process holds it). Copies are handles to the same value and lock.
//
// SynchronizedValue is BasicLockable / Lockable through its lock (lock(),
// unlock(), try_lock()), for std::lock_guard around a read-modify-write.
//
// With a given (non-recursive) mp::Lock, a thread that holds the lock and then
// reads or writes through the wrapper waits for ever
// ([sharedctypes.lock.given.not_reentrant]); inside lock()/unlock() it uses
// get_obj() instead. The default RLock has no such trap.
class SynchronizedValue {
 public:
  // SynchronizedValue::SynchronizedValue(code[, initial][, lock])
  //
  // Python's Value(code, initial, lock=...): a new RawValue (as RawValue's
  // constructors; same errors) behind `lock`, or behind a new mp::RLock when
  // `lock` is nullopt. (Python's lock=False is a plain RawValue.)
  explicit SynchronizedValue(std::string_view typecode,
                             std::optional<mp::Value> initial = std::nullopt,
                             std::optional<SyncLock> lock = std::nullopt);

  // SynchronizedValue::SynchronizedValue(raw[, lock])
  //
  // Python's synchronized(raw, lock): a wrapper over the memory of `raw`
  // ([sharedctypes.synchronized.wraps]).
  explicit SynchronizedValue(RawValue raw, std::optional<SyncLock> lock = std::nullopt);

  char typecode() const noexcept { return obj_.typecode(); }

  // value() / set_value() / get<T>() / set<T>(): as RawValue's, under the lock
  // ([sharedctypes.value.locked], [sharedctypes.value.atomic]). Each may also
  // throw mp::OwnerDied (see "Crashes" above); the lock is then free and the
  // access did not happen.
  mp::Value value() const;
  void set_value(const mp::Value& v);
  template <class T>
  T get() const {
    sharedctypes_detail::AccessGuard g(lock_);
    return obj_.get<T>();
  }
  template <class T>
  void set(T v) {
    sharedctypes_detail::AccessGuard g(lock_);
    obj_.set<T>(v);
  }

  // get_obj(): the raw object beneath; accesses through it take no lock
  // ([sharedctypes.get_obj]). get_lock(): the lock, the same on every call
  // ([sharedctypes.get_lock]).
  const RawValue& get_obj() const noexcept { return obj_; }
  const SyncLock& get_lock() const noexcept { return lock_; }

  // acquire() / release() / lock() / unlock() / try_lock(): the lock's own
  // (mp::Lock's or mp::RLock's, with their blocking, timeouts and errors;
  // an RLock's dead owner makes acquire throw mp::OwnerDied, the caller then
  // owning it).
  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt);
  void release();
  void lock() { acquire(); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() { return acquire(false); }

 private:
  RawValue obj_;
  mutable SyncLock lock_;
};

// mp::SynchronizedArray
//
// A RawArray behind a lock; Python's SynchronizedArray and, for 'c' arrays,
// SynchronizedString. Every element, slice, value and raw access holds the
// lock for its duration, a slice for the whole copy
// ([sharedctypes.array.slice.atomic]). size() takes no lock (it never
// changes).
class SynchronizedArray {
 public:
  // Python's Array(code, size_or_initializer, lock=...): as RawArray's
  // constructors (same errors) behind `lock`, or a new mp::RLock.
  SynchronizedArray(std::string_view typecode, const mp::Value& size_or_initializer,
                    std::optional<SyncLock> lock = std::nullopt);
  SynchronizedArray(std::string_view typecode, std::int64_t size,
                    std::optional<SyncLock> lock = std::nullopt);
  // Python's synchronized(raw_array, lock).
  explicit SynchronizedArray(RawArray raw, std::optional<SyncLock> lock = std::nullopt);

  char typecode() const noexcept { return obj_.typecode(); }
  std::size_t size() const noexcept { return obj_.size(); }

  // As RawArray's, under the lock; may also throw mp::OwnerDied.
  mp::Value get(std::int64_t index) const;
  void set(std::int64_t index, const mp::Value& v);
  mp::Value get_slice(const Slice& slice) const;
  void set_slice(const Slice& slice, const mp::Value& values);
  mp::Value value() const;
  mp::Value raw() const;
  void set_value(const mp::Value& bytes);
  void set_raw(const mp::Value& bytes);
  template <class T>
  T get_as(std::int64_t index) const {
    sharedctypes_detail::AccessGuard g(lock_);
    return obj_.get_as<T>(index);
  }
  template <class T>
  void set_as(std::int64_t index, T v) {
    sharedctypes_detail::AccessGuard g(lock_);
    obj_.set_as<T>(index, v);
  }

  const RawArray& get_obj() const noexcept { return obj_; }
  const SyncLock& get_lock() const noexcept { return lock_; }

  bool acquire(bool block = true, std::optional<double> timeout = std::nullopt);
  void release();
  void lock() { acquire(); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() { return acquire(false); }

 private:
  RawArray obj_;
  mutable SyncLock lock_;
};

// mp::synchronized()
//
// Python's synchronized(obj, lock=None): a wrapper over the memory of a raw
// object, with `lock` or a new mp::RLock ([sharedctypes.synchronized.wraps]).
// The overloads for wrappers throw mp::AssertionError("object already
// synchronized") ([sharedctypes.synchronized.twice]).
SynchronizedValue synchronized(const RawValue& obj, std::optional<SyncLock> lock = std::nullopt);
SynchronizedArray synchronized(const RawArray& obj, std::optional<SyncLock> lock = std::nullopt);
[[noreturn]] void synchronized(const SynchronizedValue& obj,
                               std::optional<SyncLock> lock = std::nullopt);
[[noreturn]] void synchronized(const SynchronizedArray& obj,
                               std::optional<SyncLock> lock = std::nullopt);

// mp::copy()
//
// Python's copy(obj): a new raw object, in memory of its own, with the
// contents of `obj` ([sharedctypes.copy]). Reads `obj` without any lock; copy
// a wrapper's get_obj() while holding its lock for a consistent snapshot.
RawValue copy(const RawValue& obj);
RawArray copy(const RawArray& obj);

}  // namespace mp

#endif  // MP_SHAREDCTYPES_HPP_
