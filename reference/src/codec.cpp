// The pickle subset of mp/codec.hpp.
//
// The encoder mirrors CPython's C pickler (Modules/_pickle.c) step by step
// where it decides bytes: the opcode choice per type, memo_put() after every
// str, bytes, list, dict and tuple, APPEND/SETITEM for one item and batches of
// 1000 otherwise (including the empty trailing SETITEMS batch of a dict whose
// size is a multiple of 1000), and framing (a frame is opened by the first
// write after a commit, committed at the start of a save() once it holds 64
// KiB, and dropped when it holds fewer than 4 bytes; payloads of 64 KiB or
// more are written outside frames).
//
// The decoder first builds a graph of nodes with Python's reference semantics
// (the memo and DUP share nodes; APPEND/SETITEM mutate a node everywhere it
// appears), then converts the graph into a Value tree, checking depth,
// cycles and the size budget as it goes.
#include "mp/codec.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mp/errors.hpp"
#include "utf8.hpp"

namespace mp {

namespace {

// ---------------------------------------------------------------------------
// Opcodes (pickletools.py names).

enum Op : std::uint8_t {
  MARK = '(',
  STOP = '.',
  POP = '0',
  POP_MARK = '1',
  DUP = '2',
  FLOAT = 'F',
  INT = 'I',
  BININT = 'J',
  BININT1 = 'K',
  LONG = 'L',
  BININT2 = 'M',
  NONE = 'N',
  PERSID = 'P',
  BINPERSID = 'Q',
  REDUCE = 'R',
  STRING = 'S',
  BINSTRING = 'T',
  SHORT_BINSTRING = 'U',
  UNICODE = 'V',
  BINUNICODE = 'X',
  APPEND = 'a',
  BUILD = 'b',
  GLOBAL = 'c',
  DICT = 'd',
  EMPTY_DICT = '}',
  APPENDS = 'e',
  GET = 'g',
  BINGET = 'h',
  INST = 'i',
  LONG_BINGET = 'j',
  LIST = 'l',
  EMPTY_LIST = ']',
  OBJ = 'o',
  PUT = 'p',
  BINPUT = 'q',
  LONG_BINPUT = 'r',
  SETITEM = 's',
  TUPLE = 't',
  EMPTY_TUPLE = ')',
  SETITEMS = 'u',
  BINFLOAT = 'G',
  // Protocol 2.
  PROTO = 0x80,
  NEWOBJ = 0x81,
  EXT1 = 0x82,
  EXT2 = 0x83,
  EXT4 = 0x84,
  TUPLE1 = 0x85,
  TUPLE2 = 0x86,
  TUPLE3 = 0x87,
  NEWTRUE = 0x88,
  NEWFALSE = 0x89,
  LONG1 = 0x8a,
  LONG4 = 0x8b,
  // Protocol 3.
  BINBYTES = 'B',
  SHORT_BINBYTES = 'C',
  // Protocol 4.
  SHORT_BINUNICODE = 0x8c,
  BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e,
  EMPTY_SET = 0x8f,
  ADDITEMS = 0x90,
  FROZENSET = 0x91,
  NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93,
  MEMOIZE = 0x94,
  FRAME = 0x95,
  // Protocol 5.
  BYTEARRAY8 = 0x96,
  NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98,
};

constexpr std::size_t kFrameSizeTarget = 64 * 1024;  // CPython's FRAME_SIZE_TARGET
constexpr std::size_t kFrameSizeMin = 4;             // CPython's FRAME_SIZE_MIN
constexpr std::size_t kFrameHeaderSize = 9;          // FRAME + 8-byte length
constexpr std::size_t kBatchSize = 1000;             // CPython's BATCHSIZE
constexpr std::size_t kNoFrame = static_cast<std::size_t>(-1);
constexpr std::uint64_t kMaxU32 = 0xffffffffu;

// ---------------------------------------------------------------------------
// UTF-8.

bool utf8_valid(std::string_view s) {
  // ASCII fast path, then full decoding from the first non-ASCII byte.
  std::size_t i = 0;
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  char32_t cp;
  while (i < s.size()) {
    const std::size_t len = detail::decode_utf8(s, i, cp);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Encoder.

class Encoder {
 public:
  explicit Encoder(int protocol) : proto_(protocol) {
    str1_.fill(-1);
    bytes1_.fill(-1);
  }

  std::vector<std::byte> run(const Value& value) {
    const std::uint8_t header[2] = {PROTO, static_cast<std::uint8_t>(proto_)};
    write(header, 2);
    if (proto_ >= 4) framing_ = true;
    save(value, 0);
    write_op(STOP);
    commit_frame();
    framing_ = false;
    return std::move(out_);
  }

 private:
  // -- output and framing (CPython's _Pickler_Write and friends) --

  void write(const void* data, std::size_t n) {
    if (framing_ && frame_start_ == kNoFrame) {
      frame_start_ = out_.size();
      out_.resize(out_.size() + kFrameHeaderSize);  // filled in by commit_frame()
    }
    const auto* p = static_cast<const std::byte*>(data);
    out_.insert(out_.end(), p, p + n);
  }

  void write_op(std::uint8_t op) { write(&op, 1); }

  void commit_frame() {
    if (!framing_ || frame_start_ == kNoFrame) return;
    const std::size_t frame_len = out_.size() - frame_start_ - kFrameHeaderSize;
    if (frame_len >= kFrameSizeMin) {
      out_[frame_start_] = static_cast<std::byte>(FRAME);
      for (int i = 0; i < 8; ++i) {
        out_[frame_start_ + 1 + static_cast<std::size_t>(i)] =
            static_cast<std::byte>((static_cast<std::uint64_t>(frame_len) >> (8 * i)) & 0xff);
      }
    } else {
      const auto begin = out_.begin() + static_cast<std::ptrdiff_t>(frame_start_);
      out_.erase(begin, begin + kFrameHeaderSize);
    }
    frame_start_ = kNoFrame;
  }

  // At the start of every save(): a frame that reached the target is closed.
  void opcode_boundary() {
    if (!framing_ || frame_start_ == kNoFrame) return;
    if (out_.size() - frame_start_ - kFrameHeaderSize >= kFrameSizeTarget) commit_frame();
  }

  // A header and its payload; payloads of kFrameSizeTarget bytes or more go
  // outside frames, after the current frame is committed.
  void write_payload(const std::uint8_t* header, std::size_t header_len, const void* data,
                     std::size_t n) {
    const bool bypass = n >= kFrameSizeTarget;
    const bool framing = framing_;
    if (bypass) {
      commit_frame();
      framing_ = false;
    }
    write(header, header_len);
    write(data, n);
    framing_ = framing;
  }

  // -- the memo --

  // Memoizes the object just written; `slot` (if any) remembers its index
  // for a singleton that may be referred to again.
  void memo_put(std::int64_t* slot) {
    const std::uint64_t idx = memo_len_++;
    if (slot != nullptr) *slot = static_cast<std::int64_t>(idx);
    if (proto_ >= 4) {
      write_op(MEMOIZE);
    } else if (idx < 256) {
      const std::uint8_t b[2] = {BINPUT, static_cast<std::uint8_t>(idx)};
      write(b, 2);
    } else if (idx <= kMaxU32) {
      std::uint8_t b[5] = {LONG_BINPUT};
      put_le(b + 1, idx, 4);
      write(b, 5);
    } else {
      throw ValueError("pickle_dumps: memo id too large for LONG_BINPUT");
    }
  }

  void memo_get(std::int64_t idx) {
    const auto u = static_cast<std::uint64_t>(idx);
    if (u < 256) {
      const std::uint8_t b[2] = {BINGET, static_cast<std::uint8_t>(u)};
      write(b, 2);
    } else if (u <= kMaxU32) {
      std::uint8_t b[5] = {LONG_BINGET};
      put_le(b + 1, u, 4);
      write(b, 5);
    } else {
      throw ValueError("pickle_dumps: memo id too large for LONG_BINGET");
    }
  }

  static void put_le(std::uint8_t* p, std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>((v >> (8 * i)) & 0xff);
  }

  // The memo slot of a str that is a CPython singleton: '' and one code
  // point below U+0100.
  std::int64_t* str_slot(std::string_view s) {
    if (s.empty()) return &str1_[256];
    char32_t cp;
    if (detail::decode_utf8(s, 0, cp) == s.size() && cp < 256) return &str1_[cp];
    return nullptr;
  }

  std::int64_t* bytes_slot(const Bytes& b) {
    if (b.empty()) return &bytes1_[256];
    if (b.size() == 1) return &bytes1_[static_cast<std::uint8_t>(b[0])];
    return nullptr;
  }

  // -- save() (CPython's save() and its save_* helpers) --

  void save(const Value& v, std::size_t depth) {
    opcode_boundary();
    switch (v.type()) {
      case Value::Type::kNone:
        write_op(NONE);
        return;
      case Value::Type::kBool:
        write_op(v.as_bool() ? NEWTRUE : NEWFALSE);
        return;
      case Value::Type::kInt:
        save_int(v.as_int());
        return;
      case Value::Type::kFloat:
        save_float(v.as_float());
        return;
      case Value::Type::kString:
        save_str(v.as_string());
        return;
      case Value::Type::kBytes:
        save_bytes(v.as_bytes());
        return;
      case Value::Type::kList:
        save_list(v.as_list(), depth + 1);
        return;
      case Value::Type::kDict:
        save_dict(v.as_dict(), depth + 1);
        return;
    }
  }

  void save_int(std::int64_t i) {
    if (i >= -0x80000000LL && i <= 0x7fffffffLL) {
      const auto u = static_cast<std::uint32_t>(i);
      std::uint8_t b[5];
      put_le(b + 1, u, 4);
      if (b[3] != 0 || b[4] != 0) {
        b[0] = BININT;
        write(b, 5);
      } else if (b[2] != 0) {
        b[0] = BININT2;
        write(b, 3);
      } else {
        b[0] = BININT1;
        write(b, 2);
      }
      return;
    }
    // LONG1 with the shortest little-endian two's complement CPython uses:
    // one byte more than the magnitude's bits need, minus a redundant 0xff
    // for negative numbers.
    const std::uint64_t magnitude =
        i < 0 ? static_cast<std::uint64_t>(-(i + 1)) + 1 : static_cast<std::uint64_t>(i);
    const auto nbits = static_cast<std::size_t>(std::bit_width(magnitude));
    std::size_t nbytes = nbits / 8 + 1;
    std::uint8_t b[2 + 9];
    const auto u = static_cast<std::uint64_t>(i);
    for (std::size_t k = 0; k < nbytes; ++k) {
      const std::uint8_t sign_fill = i < 0 ? 0xff : 0x00;
      b[2 + k] = k < 8 ? static_cast<std::uint8_t>((u >> (8 * k)) & 0xff) : sign_fill;
    }
    if (i < 0 && nbytes > 1 && b[2 + nbytes - 1] == 0xff && (b[2 + nbytes - 2] & 0x80) != 0) {
      --nbytes;
    }
    b[0] = LONG1;
    b[1] = static_cast<std::uint8_t>(nbytes);
    write(b, 2 + nbytes);
  }

  void save_float(double d) {
    std::uint8_t b[9] = {BINFLOAT};
    const auto bits = std::bit_cast<std::uint64_t>(d);
    for (int k = 0; k < 8; ++k) b[1 + k] = static_cast<std::uint8_t>((bits >> (56 - 8 * k)) & 0xff);
    write(b, 9);
  }

  // A str's opcode and payload (CPython's write_unicode_binary), then its
  // memo entry.
  void write_str(std::string_view s, std::int64_t* slot) {
    const std::size_t n = s.size();
    std::uint8_t header[9];
    std::size_t header_len;
    if (n <= 0xff && proto_ >= 4) {
      header[0] = SHORT_BINUNICODE;
      header[1] = static_cast<std::uint8_t>(n);
      header_len = 2;
    } else if (n <= kMaxU32) {
      header[0] = BINUNICODE;
      put_le(header + 1, n, 4);
      header_len = 5;
    } else if (proto_ >= 4) {
      header[0] = BINUNICODE8;
      put_le(header + 1, n, 8);
      header_len = 9;
    } else {
      throw OverflowError(
          "pickle_dumps: serializing a string larger than 4 GiB requires pickle protocol 4 or "
          "higher");
    }
    write_payload(header, header_len, s.data(), n);
    memo_put(slot);
  }

  void save_str(std::string_view s) {
    if (!utf8_valid(s)) {
      throw ValueError(
          "pickle_dumps: a str is not valid UTF-8 (or encodes a surrogate); Python could not "
          "load it");
    }
    std::int64_t* slot = str_slot(s);
    if (slot != nullptr && *slot >= 0) {
      memo_get(*slot);
      return;
    }
    write_str(s, slot);
  }

  void save_bytes(const Bytes& b) {
    std::int64_t* slot = bytes_slot(b);
    if (slot != nullptr && *slot >= 0) {
      memo_get(*slot);
      return;
    }
    if (proto_ < 3) {
      save_bytes_protocol2(b, slot);
      return;
    }
    const std::size_t n = b.size();
    std::uint8_t header[9];
    std::size_t header_len;
    if (n <= 0xff) {
      header[0] = SHORT_BINBYTES;
      header[1] = static_cast<std::uint8_t>(n);
      header_len = 2;
    } else if (n <= kMaxU32) {
      header[0] = BINBYTES;
      put_le(header + 1, n, 4);
      header_len = 5;
    } else if (proto_ >= 4) {
      header[0] = BINBYTES8;
      put_le(header + 1, n, 8);
      header_len = 9;
    } else {
      throw OverflowError(
          "pickle_dumps: serializing a bytes object larger than 4 GiB requires pickle protocol 4 "
          "or higher");
    }
    write_payload(header, header_len, b.data(), n);
    memo_put(slot);
  }

  // CPython's save_bytes() below protocol 3: save_reduce() of
  // `_codecs.encode(<bytes decoded as latin-1>, 'latin1')`, or of
  // `__builtin__.bytes()` for b''. The nested saves each start with an
  // opcode boundary, as in CPython (no-ops without framing).
  void save_bytes_protocol2(const Bytes& b, std::int64_t* slot) {
    if (b.empty()) {
      save_global(builtins_bytes_, "c__builtin__\nbytes\n");
      opcode_boundary();
      write_op(EMPTY_TUPLE);
    } else {
      save_global(codecs_encode_, "c_codecs\nencode\n");
      opcode_boundary();  // the argument tuple
      // Its first item: the str with the same code points as the bytes.
      opcode_boundary();
      std::string text;
      text.reserve(b.size() * 2);
      for (std::byte x : b) detail::append_utf8(text, static_cast<std::uint8_t>(x));
      std::int64_t* text_slot = str_slot(text);
      if (text_slot != nullptr && *text_slot >= 0) {
        memo_get(*text_slot);
      } else {
        write_str(text, text_slot);
      }
      // Its second item: the interned 'latin1'.
      opcode_boundary();
      if (latin1_ >= 0) {
        memo_get(latin1_);
      } else {
        write_str("latin1", &latin1_);
      }
      write_op(TUPLE2);
      memo_put(nullptr);
    }
    write_op(REDUCE);
    memo_put(slot);
  }

  void save_global(std::int64_t& slot, std::string_view text) {
    opcode_boundary();
    if (slot >= 0) {
      memo_get(slot);
      return;
    }
    write(text.data(), text.size());
    memo_put(&slot);
  }

  static void check_depth(std::size_t level) {
    if (level > kPickleMaxDepth) {
      throw ValueError("pickle_dumps: lists and dicts nested deeper than " +
                       std::to_string(kPickleMaxDepth));
    }
  }

  void save_list(const Value::List& list, std::size_t level) {
    check_depth(level);
    write_op(EMPTY_LIST);
    memo_put(nullptr);
    const std::size_t n = list.size();
    if (n == 0) return;
    if (n == 1) {
      save(list[0], level);
      write_op(APPEND);
      return;
    }
    std::size_t total = 0;
    do {
      write_op(MARK);
      std::size_t batch = 0;
      while (total < n) {
        save(list[total], level);
        ++total;
        if (++batch == kBatchSize) break;
      }
      write_op(APPENDS);
    } while (total < n);
  }

  void save_dict(const Dict& dict, std::size_t level) {
    check_depth(level);
    write_op(EMPTY_DICT);
    memo_put(nullptr);
    const auto& items = dict.items();
    const std::size_t n = items.size();
    if (n == 0) return;
    if (n == 1) {
      save_key(items[0].first);
      save(items[0].second, level);
      write_op(SETITEM);
      return;
    }
    std::size_t pos = 0;
    std::size_t batch;
    do {
      write_op(MARK);
      batch = 0;
      while (pos < n) {
        save_key(items[pos].first);
        save(items[pos].second, level);
        ++pos;
        if (++batch == kBatchSize) break;
      }
      write_op(SETITEMS);
    } while (batch == kBatchSize);  // as CPython: an empty batch after a full one
  }

  void save_key(std::string_view key) {
    opcode_boundary();
    save_str(key);
  }

  const int proto_;
  std::vector<std::byte> out_;
  bool framing_ = false;
  std::size_t frame_start_ = kNoFrame;
  std::uint64_t memo_len_ = 0;
  // Memo indices (-1: not yet written) of CPython's singletons: the str of
  // one code point < 256 (index: the code point) or '' (index 256), the
  // bytes of one byte or b'' (index 256), and the objects protocol 2 uses
  // for bytes.
  std::array<std::int64_t, 257> str1_;
  std::array<std::int64_t, 257> bytes1_;
  std::int64_t codecs_encode_ = -1;
  std::int64_t builtins_bytes_ = -1;
  std::int64_t latin1_ = -1;
};

// ---------------------------------------------------------------------------
// Decoder.

const char* op_name(std::uint8_t op) {
  switch (op) {
    case PERSID:
      return "PERSID";
    case BINPERSID:
      return "BINPERSID";
    case REDUCE:
      return "REDUCE";
    case STRING:
      return "STRING";
    case BINSTRING:
      return "BINSTRING";
    case SHORT_BINSTRING:
      return "SHORT_BINSTRING";
    case BUILD:
      return "BUILD";
    case GLOBAL:
      return "GLOBAL";
    case INST:
      return "INST";
    case OBJ:
      return "OBJ";
    case NEWOBJ:
      return "NEWOBJ";
    case NEWOBJ_EX:
      return "NEWOBJ_EX";
    case EXT1:
      return "EXT1";
    case EXT2:
      return "EXT2";
    case EXT4:
      return "EXT4";
    case STACK_GLOBAL:
      return "STACK_GLOBAL";
    case EMPTY_SET:
      return "EMPTY_SET";
    case ADDITEMS:
      return "ADDITEMS";
    case FROZENSET:
      return "FROZENSET";
    case NEXT_BUFFER:
      return "NEXT_BUFFER";
    case READONLY_BUFFER:
      return "READONLY_BUFFER";
    default:
      return "?";
  }
}

// Text from the input, made safe and short for an error message.
std::string printable(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 60; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  if (s.size() > 60) out += "...";
  return out;
}

class Decoder {
 public:
  Decoder(std::span<const std::byte> data, const PickleLoadOptions& options)
      : data_(data), options_(options) {
    // Shared, immutable nodes: None, True, False and the empty tuple.
    add_scalar(Value());
    add_scalar(Value(true));
    add_scalar(Value(false));
    new_node(Node::Kind::kTuple);
    // The size budget, saturating.
    const std::size_t cap = std::numeric_limits<std::size_t>::max();
    const std::size_t per_byte = data.size() > cap / 64 ? cap : data.size() * 64;
    budget_ = per_byte > cap - options.max_alias_bytes ? cap : per_byte + options.max_alias_bytes;
  }

  Value run() {
    for (;;) {
      op_pos_ = pos_;
      if (pos_ >= data_.size()) fail("pickle data was truncated (no STOP)");
      const std::uint8_t op = u8();
      if (op == STOP) return finish();
      step(op);
    }
  }

 private:
  struct Node {
    enum class Kind : std::uint8_t { kScalar, kList, kTuple, kDict, kGlobal };
    enum Global : std::uint8_t { kNoGlobal, kCodecsEncode, kBytesType, kBytearrayType };
    Kind kind = Kind::kScalar;
    Global global = kNoGlobal;
    bool on_path = false;  // while converting: an ancestor of the current node
    Value scalar;          // kScalar
    // kList, kTuple: the items; kDict: key, value, key, value, ...
    std::vector<std::uint32_t> items;
  };

  static constexpr std::uint32_t kNone = 0, kTrue = 1, kFalse = 2, kEmptyTuple = 3;

  // -- errors --

  [[noreturn]] void fail(const std::string& message) const {
    throw ValueError("pickle_loads: " + message + " (opcode at byte " + std::to_string(op_pos_) +
                     ")");
  }

  [[noreturn]] void refuse(std::uint8_t op, const char* what) const {
    fail(std::string("opcode ") + op_name(op) + " (" + what +
         ") is refused: only values of the mpspec domain are decoded");
  }

  [[noreturn]] void fail_convert(const std::string& message) const {
    throw ValueError("pickle_loads: " + message);
  }

  // -- input --

  std::size_t remaining() const { return data_.size() - pos_; }

  const std::byte* take(std::uint64_t n) {
    if (n > remaining()) fail("pickle data was truncated");
    const std::byte* p = data_.data() + pos_;
    pos_ += static_cast<std::size_t>(n);
    return p;
  }

  std::uint8_t u8() { return static_cast<std::uint8_t>(*take(1)); }

  std::uint64_t le(std::size_t n) {
    const std::byte* p = take(n);
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
    return v;
  }

  std::string_view bytes_view(std::uint64_t n) {
    const std::byte* p = take(n);
    return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
  }

  // The text up to the next '\n' (which is consumed, not returned).
  std::string_view line() {
    const auto* begin = reinterpret_cast<const char*>(data_.data() + pos_);
    const void* nl = std::memchr(begin, '\n', remaining());
    if (nl == nullptr) fail("pickle data was truncated (no end of line)");
    const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - begin);
    pos_ += len + 1;
    return {begin, len};
  }

  // -- nodes and the stack --

  std::uint32_t new_node(Node::Kind kind) {
    if (nodes_.size() >= std::numeric_limits<std::uint32_t>::max()) fail("too many objects");
    nodes_.emplace_back();
    nodes_.back().kind = kind;
    return static_cast<std::uint32_t>(nodes_.size() - 1);
  }

  std::uint32_t add_scalar(Value v) {
    const std::uint32_t idx = new_node(Node::Kind::kScalar);
    nodes_[idx].scalar = std::move(v);
    return idx;
  }

  void push(std::uint32_t idx) { stack_.push_back(idx); }
  void push_scalar(Value v) { push(add_scalar(std::move(v))); }

  std::size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }

  // Requires `n` items above the current mark.
  void need(std::size_t n) const {
    if (stack_.size() < fence() + n) fail("unpickling stack underflow");
  }

  std::uint32_t pop() {
    need(1);
    const std::uint32_t idx = stack_.back();
    stack_.pop_back();
    return idx;
  }

  std::uint32_t top() const {
    need(1);
    return stack_.back();
  }

  std::size_t pop_mark() {
    if (marks_.empty()) fail("could not find MARK");
    const std::size_t m = marks_.back();
    marks_.pop_back();
    return m;
  }

  // Pops the topmost mark and returns its position; the object below the
  // mark (the target of APPENDS/SETITEMS) must lie above the new fence.
  std::size_t pop_mark_with_target() {
    const std::size_t m = pop_mark();
    if (m <= fence()) fail("unpickling stack underflow (no object before MARK)");
    return m;
  }

  const std::string* str_of(std::uint32_t idx) const {
    const Node& n = nodes_[idx];
    return n.kind == Node::Kind::kScalar ? n.scalar.get_if<std::string>() : nullptr;
  }

  const char* kind_name(std::uint32_t idx) const {
    const Node& n = nodes_[idx];
    switch (n.kind) {
      case Node::Kind::kScalar:
        return n.scalar.type_name();
      case Node::Kind::kList:
        return "list";
      case Node::Kind::kTuple:
        return "tuple";
      case Node::Kind::kDict:
        return "dict";
      case Node::Kind::kGlobal:
        return "global";
    }
    return "?";
  }

  Node& list_target(std::uint32_t idx, const char* op) {
    if (nodes_[idx].kind != Node::Kind::kList) {
      fail(std::string(op) + " to a " + kind_name(idx) + ", not a list");
    }
    return nodes_[idx];
  }

  Node& dict_target(std::uint32_t idx, const char* op) {
    if (nodes_[idx].kind != Node::Kind::kDict) {
      fail(std::string(op) + " on a " + kind_name(idx) + ", not a dict");
    }
    return nodes_[idx];
  }

  void add_item(Node& dict, std::uint32_t key, std::uint32_t value) {
    if (str_of(key) == nullptr) {
      fail(std::string("a dict key must be a str, not ") + kind_name(key));
    }
    dict.items.push_back(key);
    dict.items.push_back(value);
  }

  // Builds a list, tuple or dict from the items above position `m`.
  void collect(Node::Kind kind, std::size_t m) {
    const std::uint32_t idx = new_node(kind);
    Node& node = nodes_[idx];
    if (kind == Node::Kind::kDict) {
      if ((stack_.size() - m) % 2 != 0) fail("odd number of items for DICT");
      for (std::size_t i = m; i < stack_.size(); i += 2) add_item(node, stack_[i], stack_[i + 1]);
    } else {
      node.items.assign(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    }
    stack_.resize(m);
    push(idx);
  }

  // -- scalars --

  std::int64_t parse_int_text(std::string_view text) {
    std::string_view t = text;
    if (!t.empty() && t[0] == '+') t.remove_prefix(1);
    std::int64_t v = 0;
    const auto res = std::from_chars(t.data(), t.data() + t.size(), v);
    const bool whole = !t.empty() && res.ptr == t.data() + t.size();
    if (whole && res.ec == std::errc::result_out_of_range) {
      // All digits, but too large: an int outside int64.
      throw OverflowError("pickle_loads: int out of the int64 range");
    }
    if (!whole || res.ec != std::errc()) fail("invalid literal for int: '" + printable(text) + "'");
    return v;
  }

  // A little-endian two's complement integer (LONG1, LONG4).
  std::int64_t decode_long(std::string_view b) {
    const std::size_t n = b.size();
    if (n == 0) return 0;
    const bool negative = (static_cast<unsigned char>(b[n - 1]) & 0x80) != 0;
    if (n > 8) {
      const unsigned char fill = negative ? 0xff : 0x00;
      for (std::size_t i = 8; i < n; ++i) {
        if (static_cast<unsigned char>(b[i]) != fill) {
          throw OverflowError("pickle_loads: int out of the int64 range");
        }
      }
      if (((static_cast<unsigned char>(b[7]) & 0x80) != 0) != negative) {
        throw OverflowError("pickle_loads: int out of the int64 range");
      }
    }
    std::uint64_t u = negative ? ~std::uint64_t{0} : 0;
    for (std::size_t i = 0; i < n && i < 8; ++i) {
      u &= ~(std::uint64_t{0xff} << (8 * i));
      u |= static_cast<std::uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
    }
    return static_cast<std::int64_t>(u);
  }

  double parse_float_text(std::string_view text) {
    std::string_view t = text;
    if (!t.empty() && t[0] == '+') t.remove_prefix(1);
    double d = 0;
    const auto res = std::from_chars(t.data(), t.data() + t.size(), d);
    if (t.empty() || res.ec != std::errc() || res.ptr != t.data() + t.size()) {
      if (res.ec == std::errc::result_out_of_range && res.ptr == t.data() + t.size()) {
        throw OverflowError("pickle_loads: float literal out of range");
      }
      fail("could not convert string to float: '" + printable(text) + "'");
    }
    return d;
  }

  std::string check_utf8(std::string_view s) {
    if (!utf8_valid(s)) {
      fail("a str is not valid UTF-8 or holds a lone surrogate (outside the value domain)");
    }
    return std::string(s);
  }

  // UNICODE's argument: raw-unicode-escape (latin-1 bytes, plus \uXXXX and
  // \UXXXXXXXX escapes where the backslash is not itself escaped).
  std::string decode_raw_unicode_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
      const auto c = static_cast<unsigned char>(s[i++]);
      if (c != '\\' || i >= s.size()) {
        detail::append_utf8(out, c);
        continue;
      }
      const auto next = static_cast<unsigned char>(s[i]);
      if (next != 'u' && next != 'U') {  // a backslash pair or a lone backslash
        detail::append_utf8(out, c);
        detail::append_utf8(out, next);
        ++i;
        continue;
      }
      const std::size_t count = next == 'u' ? 4 : 8;
      ++i;
      if (s.size() - i < count) fail("truncated \\uXXXX escape in UNICODE");
      char32_t cp = 0;
      for (std::size_t k = 0; k < count; ++k) {
        const char h = s[i + k];
        unsigned digit;
        if (h >= '0' && h <= '9') {
          digit = static_cast<unsigned>(h - '0');
        } else if (h >= 'a' && h <= 'f') {
          digit = static_cast<unsigned>(h - 'a' + 10);
        } else if (h >= 'A' && h <= 'F') {
          digit = static_cast<unsigned>(h - 'A' + 10);
        } else {
          fail("invalid \\uXXXX escape in UNICODE");
        }
        if (cp > 0x10ffff) fail("\\Uxxxxxxxx out of range in UNICODE");
        cp = (cp << 4) | digit;
      }
      i += count;
      if (cp > 0x10ffff) fail("\\Uxxxxxxxx out of range in UNICODE");
      if (cp >= 0xd800 && cp <= 0xdfff) {
        fail("a str holds a lone surrogate (outside the value domain)");
      }
      detail::append_utf8(out, cp);
    }
    return out;
  }

  // -- globals (only CPython's reductions of bytes and bytearray) --

  void push_global(std::string_view module, std::string_view name) {
    Node::Global g = Node::kNoGlobal;
    if ((module == "_codecs" || module == "codecs") && name == "encode") {
      g = Node::kCodecsEncode;
    } else if (module == "__builtin__" || module == "builtins") {
      if (name == "bytes") g = Node::kBytesType;
      if (name == "bytearray") g = Node::kBytearrayType;
    }
    if (g == Node::kNoGlobal) {
      fail("global '" + printable(module) + "." + printable(name) +
           "' is refused: pickles may not import or call anything (only the bytes and "
           "bytearray reductions of protocols 0-4 are recognised)");
    }
    const std::uint32_t idx = new_node(Node::Kind::kGlobal);
    nodes_[idx].global = g;
    push(idx);
  }

  static bool is_latin1_name(std::string_view s) {
    return s == "latin1" || s == "latin-1" || s == "latin_1";
  }

  Bytes latin1_encode(const std::string& s) {
    Bytes out;
    out.reserve(s.size());
    char32_t cp = 0;
    for (std::size_t i = 0; i < s.size();) {
      const std::size_t len = detail::decode_utf8(s, i, cp);  // s is valid UTF-8
      if (cp > 0xff) fail("'latin-1' codec can't encode a character above U+00FF");
      out.push_back(static_cast<std::byte>(cp));
      i += len;
    }
    return out;
  }

  // REDUCE: evaluates one of the recognised calls.
  void reduce() {
    const std::uint32_t args_idx = pop();
    const std::uint32_t callable_idx = top();
    const Node& callable = nodes_[callable_idx];
    if (callable.kind != Node::Kind::kGlobal) refuse(REDUCE, "calls an object");
    const Node& args_node = nodes_[args_idx];
    if (args_node.kind != Node::Kind::kTuple) fail("REDUCE arguments are not a tuple");
    const std::vector<std::uint32_t>& args = args_node.items;
    const auto str_arg = [&](std::size_t i) { return str_of(args[i]); };
    Bytes result;
    bool ok = false;
    switch (callable.global) {
      case Node::kCodecsEncode:
        if (args.size() == 2 && str_arg(0) != nullptr && str_arg(1) != nullptr &&
            is_latin1_name(*str_arg(1))) {
          result = latin1_encode(*str_arg(0));
          ok = true;
        }
        break;
      case Node::kBytesType:
        ok = args.empty();
        break;
      case Node::kBytearrayType:
        if (args.empty()) {
          ok = true;
        } else if (args.size() == 1) {
          const Node& a = nodes_[args[0]];
          if (const Bytes* b = a.kind == Node::Kind::kScalar ? a.scalar.get_if<Bytes>() : nullptr) {
            result = *b;
            ok = true;
          }
        } else if (args.size() == 2 && str_arg(0) != nullptr && str_arg(1) != nullptr &&
                   is_latin1_name(*str_arg(1))) {
          result = latin1_encode(*str_arg(0));
          ok = true;
        }
        break;
      case Node::kNoGlobal:
        break;
    }
    if (!ok) {
      fail("REDUCE with arguments other than those CPython uses to pickle bytes is refused");
    }
    stack_.back() = add_scalar(Value(std::move(result)));
  }

  // -- the memo --

  void memo_put(std::uint64_t idx) {
    const std::uint32_t value = top();
    if (idx < memo_dense_.size()) {
      memo_dense_[idx] = value;
    } else if (idx == memo_dense_.size()) {
      if (!memo_sparse_.empty()) memo_sparse_.erase(idx);
      memo_dense_.push_back(value);
    } else {
      memo_sparse_[idx] = value;
    }
  }

  // The number of memo entries: MEMOIZE's index.
  std::uint64_t memo_size() const { return memo_dense_.size() + memo_sparse_.size(); }

  void memo_get(std::uint64_t idx) {
    if (idx < memo_dense_.size()) {
      push(memo_dense_[idx]);
      return;
    }
    const auto it = memo_sparse_.find(idx);
    if (it == memo_sparse_.end()) fail("memo value not found at index " + std::to_string(idx));
    push(it->second);
  }

  std::uint64_t parse_memo_index(std::string_view text, const char* op) {
    std::uint64_t v = 0;
    const auto res = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || res.ec != std::errc() || res.ptr != text.data() + text.size()) {
      if (!text.empty() && text[0] == '-') fail(std::string("negative ") + op + " argument");
      fail(std::string("invalid ") + op + " argument '" + printable(text) + "'");
    }
    return v;
  }

  // -- one opcode --

  void step(std::uint8_t op) {
    switch (op) {
      case MARK:
        marks_.push_back(stack_.size());
        return;
      case POP:
        if (stack_.size() > fence()) {
          stack_.pop_back();
        } else if (!marks_.empty()) {
          marks_.pop_back();
        } else {
          fail("unpickling stack underflow");
        }
        return;
      case POP_MARK:
        stack_.resize(pop_mark());
        return;
      case DUP:
        push(top());
        return;

      case NONE:
        push(kNone);
        return;
      case NEWTRUE:
        push(kTrue);
        return;
      case NEWFALSE:
        push(kFalse);
        return;
      case INT: {
        const std::string_view t = line();
        if (t == "00") {
          push(kFalse);
        } else if (t == "01") {
          push(kTrue);
        } else {
          push_scalar(Value(parse_int_text(t)));
        }
        return;
      }
      case BININT:
        push_scalar(Value(static_cast<std::int64_t>(static_cast<std::int32_t>(le(4)))));
        return;
      case BININT1:
        push_scalar(Value(static_cast<std::int64_t>(u8())));
        return;
      case BININT2:
        push_scalar(Value(static_cast<std::int64_t>(le(2))));
        return;
      case LONG: {
        std::string_view t = line();
        if (!t.empty() && t.back() == 'L') t.remove_suffix(1);
        push_scalar(Value(parse_int_text(t)));
        return;
      }
      case LONG1:
        push_scalar(Value(decode_long(bytes_view(u8()))));
        return;
      case LONG4: {
        const auto n = static_cast<std::int32_t>(le(4));
        if (n < 0) fail("LONG pickle has negative byte count");
        push_scalar(Value(decode_long(bytes_view(static_cast<std::uint64_t>(n)))));
        return;
      }
      case FLOAT:
        push_scalar(Value(parse_float_text(line())));
        return;
      case BINFLOAT: {
        const std::byte* p = take(8);
        std::uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<std::uint64_t>(p[i]);
        push_scalar(Value(std::bit_cast<double>(bits)));
        return;
      }

      case UNICODE:
        push_scalar(Value(decode_raw_unicode_escape(line())));
        return;
      case SHORT_BINUNICODE:
        push_scalar(Value(check_utf8(bytes_view(u8()))));
        return;
      case BINUNICODE:
        push_scalar(Value(check_utf8(bytes_view(le(4)))));
        return;
      case BINUNICODE8:
        push_scalar(Value(check_utf8(bytes_view(le(8)))));
        return;
      case SHORT_BINBYTES:
        push_scalar(Value::bytes(bytes_view(u8())));
        return;
      case BINBYTES:
        push_scalar(Value::bytes(bytes_view(le(4))));
        return;
      case BINBYTES8:
      case BYTEARRAY8:
        push_scalar(Value::bytes(bytes_view(le(8))));
        return;

      case EMPTY_LIST:
        push(new_node(Node::Kind::kList));
        return;
      case EMPTY_DICT:
        push(new_node(Node::Kind::kDict));
        return;
      case EMPTY_TUPLE:
        push(kEmptyTuple);
        return;
      case LIST:
        collect(Node::Kind::kList, pop_mark());
        return;
      case TUPLE:
        collect(Node::Kind::kTuple, pop_mark());
        return;
      case DICT:
        collect(Node::Kind::kDict, pop_mark());
        return;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        const std::size_t n = static_cast<std::size_t>(op - TUPLE1) + 1;
        need(n);
        collect(Node::Kind::kTuple, stack_.size() - n);
        return;
      }
      case APPEND: {
        const std::uint32_t v = pop();
        list_target(top(), "APPEND").items.push_back(v);
        return;
      }
      case APPENDS: {
        const std::size_t m = pop_mark_with_target();
        Node& list = list_target(stack_[m - 1], "APPENDS");
        list.items.insert(list.items.end(), stack_.begin() + static_cast<std::ptrdiff_t>(m),
                          stack_.end());
        stack_.resize(m);
        return;
      }
      case SETITEM: {
        need(3);
        const std::uint32_t v = pop();
        const std::uint32_t k = pop();
        add_item(dict_target(top(), "SETITEM"), k, v);
        return;
      }
      case SETITEMS: {
        const std::size_t m = pop_mark_with_target();
        Node& dict = dict_target(stack_[m - 1], "SETITEMS");
        if ((stack_.size() - m) % 2 != 0) fail("odd number of items for SETITEMS");
        for (std::size_t i = m; i < stack_.size(); i += 2) add_item(dict, stack_[i], stack_[i + 1]);
        stack_.resize(m);
        return;
      }

      case PUT:
        memo_put(parse_memo_index(line(), "PUT"));
        return;
      case BINPUT:
        memo_put(u8());
        return;
      case LONG_BINPUT:
        memo_put(le(4));
        return;
      case MEMOIZE:
        memo_put(memo_size());
        return;
      case GET:
        memo_get(parse_memo_index(line(), "GET"));
        return;
      case BINGET:
        memo_get(u8());
        return;
      case LONG_BINGET:
        memo_get(le(4));
        return;

      case PROTO: {
        const std::uint8_t v = u8();
        if (v > kPickleHighestProtocol) fail("unsupported pickle protocol: " + std::to_string(v));
        return;
      }
      case FRAME: {
        const std::uint64_t n = le(8);
        if (n > remaining()) fail("pickle data was truncated (FRAME longer than the data)");
        return;
      }

      case GLOBAL: {
        const std::string_view module = line();
        const std::string_view name = line();
        push_global(module, name);
        return;
      }
      case STACK_GLOBAL: {
        const std::uint32_t name = pop();
        const std::uint32_t module = pop();
        const std::string* m = str_of(module);
        const std::string* n = str_of(name);
        if (m == nullptr || n == nullptr) fail("STACK_GLOBAL requires str");
        push_global(*m, *n);
        return;
      }
      case REDUCE:
        reduce();
        return;

      case PERSID:
      case BINPERSID:
        refuse(op, "a persistent id, resolved by the application");
      case BUILD:
        refuse(op, "sets an object's state");
      case INST:
      case OBJ:
      case NEWOBJ:
      case NEWOBJ_EX:
        refuse(op, "builds an instance of a class");
      case EXT1:
      case EXT2:
      case EXT4:
        refuse(op, "loads a global from the extension registry");
      case EMPTY_SET:
      case ADDITEMS:
      case FROZENSET:
        refuse(op, "sets are outside the value domain");
      case NEXT_BUFFER:
      case READONLY_BUFFER:
        refuse(op, "out-of-band buffers are not supported");
      case STRING:
      case BINSTRING:
      case SHORT_BINSTRING:
        refuse(op, "a Python 2 str, whose text encoding is unknown");
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        fail(std::string("invalid load key, '\\x") + kHex[op >> 4] + kHex[op & 0xf] + "'");
      }
    }
  }

  // -- STOP: from the graph to a Value --

  Value finish() {
    if (stack_.size() != 1 || !marks_.empty()) {
      fail("STOP must leave exactly one object on the stack and no MARK (found " +
           std::to_string(stack_.size()) + " objects, " + std::to_string(marks_.size()) +
           " marks)");
    }
    if (pos_ != data_.size()) {
      fail(std::to_string(data_.size() - pos_) + " bytes of data after STOP");
    }
    charge(sizeof(Value));
    refs_.assign(nodes_.size(), 0);
    for (const Node& node : nodes_) {
      for (std::uint32_t child : node.items) ++refs_[child];
    }
    return convert(stack_[0], 0, true);
  }

  void charge(std::size_t bytes) {
    if (bytes > budget_ - used_) {
      fail_convert(
          "the decoded value would be too large (shared references expand into copies; see "
          "PickleLoadOptions::max_alias_bytes)");
    }
    used_ += bytes;
  }

  // Whether node `child` of a node reached through unique references is
  // reached only once: then its payload can be moved instead of copied.
  bool unique_child(bool unique_parent, std::uint32_t child) const {
    return unique_parent && refs_[child] == 1;
  }

  // Converts node `idx`, whose slot (sizeof(Value)) is already charged;
  // `depth` containers enclose it. `unique`: the node is reached through no
  // shared node and only once, so its payload may be moved out.
  Value convert(std::uint32_t idx, std::size_t depth, bool unique) {
    Node& node = nodes_[idx];
    switch (node.kind) {
      case Node::Kind::kScalar:
        if (const std::string* s = node.scalar.get_if<std::string>()) charge(s->size());
        if (const Bytes* b = node.scalar.get_if<Bytes>()) charge(b->size());
        // The shared None/True/False nodes are copied (cheaply) either way.
        return unique ? std::move(node.scalar) : node.scalar;
      case Node::Kind::kGlobal:
        fail_convert("a global (a callable) is not a value");
      case Node::Kind::kList:
      case Node::Kind::kTuple:
      case Node::Kind::kDict:
        break;
    }
    const std::size_t level = depth + 1;
    if (level > options_.max_depth) {
      fail_convert("lists, tuples and dicts nested deeper than " +
                   std::to_string(options_.max_depth));
    }
    if (node.on_path) {
      fail_convert("recursive structure (a list, tuple or dict contains itself)");
    }
    node.on_path = true;
    Value result;
    if (node.kind == Node::Kind::kDict) {
      result = convert_dict(node, level, unique);
    } else {
      charge(node.items.size() * sizeof(Value));
      Value::List list;
      list.reserve(node.items.size());
      for (std::uint32_t child : node.items) {
        list.push_back(convert(child, level, unique_child(unique, child)));
      }
      result = Value(std::move(list));
    }
    node.on_path = false;
    return result;
  }

  Value convert_dict(const Node& node, std::size_t level, bool unique) {
    // Repeated keys: the first position, the last value (Python's SETITEM).
    const std::size_t pairs = node.items.size() / 2;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> winners;
    winners.reserve(pairs);
    if (pairs <= 16) {
      for (std::size_t i = 0; i < pairs; ++i) {
        const std::string& key = *str_of(node.items[2 * i]);
        bool found = false;
        for (auto& w : winners) {
          if (*str_of(w.first) == key) {
            w.second = node.items[2 * i + 1];
            found = true;
            break;
          }
        }
        if (!found) winners.emplace_back(node.items[2 * i], node.items[2 * i + 1]);
      }
    } else {
      std::unordered_map<std::string_view, std::size_t> index;
      index.reserve(pairs);
      for (std::size_t i = 0; i < pairs; ++i) {
        const std::string& key = *str_of(node.items[2 * i]);
        const auto [it, inserted] = index.emplace(key, winners.size());
        if (inserted) {
          winners.emplace_back(node.items[2 * i], node.items[2 * i + 1]);
        } else {
          winners[it->second].second = node.items[2 * i + 1];
        }
      }
    }
    charge(winners.size() * sizeof(Dict::Item));
    std::vector<Dict::Item> items;
    items.reserve(winners.size());
    for (const auto& [key, value] : winners) {
      std::string& k = nodes_[key].scalar.as_string();
      charge(k.size());
      items.emplace_back(unique_child(unique, key) ? std::move(k) : k,
                         convert(value, level, unique_child(unique, value)));
    }
    return Value(Dict(std::move(items)));
  }

  std::span<const std::byte> data_;
  const PickleLoadOptions& options_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  std::deque<Node> nodes_;  // a deque: growing it never moves nodes
  std::vector<std::uint32_t> stack_;
  std::vector<std::size_t> marks_;
  // The memo: indices 0..n-1 in a vector (what CPython writes), any other
  // index in a hash map (so that a hostile index costs no memory). No index
  // is in both.
  std::vector<std::uint32_t> memo_dense_;
  std::unordered_map<std::uint64_t, std::uint32_t> memo_sparse_;
  // At STOP: how many list, tuple and dict items refer to each node.
  std::vector<std::uint32_t> refs_;
  std::size_t budget_ = 0;
  std::size_t used_ = 0;
};

}  // namespace

std::vector<std::byte> pickle_dumps(const Value& value, int protocol) {
  if (protocol < 2 || protocol > kPickleHighestProtocol) {
    throw ValueError("pickle_dumps: protocol must be 2 to 5, not " + std::to_string(protocol));
  }
  return Encoder(protocol).run(value);
}

Value pickle_loads(std::span<const std::byte> data, const PickleLoadOptions& options) {
  return Decoder(data, options).run();
}

}  // namespace mp
