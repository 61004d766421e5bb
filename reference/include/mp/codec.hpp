// -----------------------------------------------------------------------------
// File: codec.hpp
// -----------------------------------------------------------------------------
//
// This header defines libmp's wire codec: a subset of Python's pickle format
// that carries exactly the mpspec value domain (`mp::Value`), so that a C++
// Connection or Queue can talk to a CPython one (BLUEPRINT section 7):
//
//   mp::pickle_dumps()   a Value -> the pickle CPython's `pickle.dumps` writes
//                        for the same value, protocols 2 to 5
//   mp::pickle_loads()   a pickle of the value domain, as CPython writes it at
//                        any protocol 0 to 5 -> a Value; every opcode that
//                        would run code or build another object is refused
//
// Example:
//
//   mp::Value v = mp::Value::list({1, "x"});
//   std::vector<std::byte> p = mp::pickle_dumps(v);      // protocol 4
//   // p == 80 04 95 0b 00 00 00 00 00 00 00 5d 94 28 4b 01 8c 01 78 94 65 2e,
//   // byte for byte what `pickle.dumps([1, 'x'], 4)` returns
//   mp::Value back = mp::pickle_loads(p);                 // back == v
//
// Byte identity with CPython. For a value whose Python counterpart shares no
// object (a tree, as a Value is), pickle_dumps() writes what CPython 3.8 to
// 3.13 write with `pickle.dumps(value, protocol)`, byte for byte: the same
// opcodes (BININT1/BININT2/BININT/LONG1, BINFLOAT, SHORT_BINUNICODE /
// BINUNICODE / BINUNICODE8, SHORT_BINBYTES / BINBYTES / BINBYTES8, EMPTY_LIST +
// APPEND or MARK/APPENDS batches of 1000, EMPTY_DICT + SETITEM or MARK/SETITEMS
// batches of 1000, NONE, NEWTRUE/NEWFALSE), the same memo opcodes (MEMOIZE at
// protocol 4+, BINPUT/LONG_BINPUT below), and at protocol 4+ the same FRAMEs:
// a new frame after about 64 KiB, frames under 4 bytes dropped, payloads of
// 64 KiB or more written outside frames.
//
// Sharing. CPython memoizes objects by identity and writes a memo reference
// (BINGET) when the same object appears again. A Value cannot tell identity,
// so pickle_dumps() imitates CPython's *singletons* only: the empty str, every
// one-character str below U+0100, the empty bytes and every one-byte bytes
// object are one object each in CPython, and pickle_dumps() refers back to
// them as CPython does (`['a', 'a']` -> the second 'a' is a BINGET). Longer
// strings and bytes are written in full each time; a Python program that puts
// the *same* longer string object twice into a value (e.g. a repeated literal)
// gets a memo reference from CPython instead. Both forms load to equal values.
// (CPython 3.11 and 3.12 keep two copies of some one-character ASCII strings,
// so they may write such a string in full where 3.8 and 3.13 refer back.)
//
// Protocol 2 and bytes. Protocol 2 has no bytes opcode; CPython pickles bytes
// there as `_codecs.encode(<latin-1 str>, 'latin1')` (and b'' as
// `__builtin__.bytes()`), a GLOBAL and a REDUCE. pickle_dumps() writes exactly
// that, so a protocol-2 peer receives real bytes, and pickle_loads() accepts
// exactly these calls (see below).
//
// Errors:
//
//   mp::ValueError     pickle_dumps: a protocol outside 2..5, a string that
//                      is not valid UTF-8 (or encodes a surrogate), nesting
//                      deeper than kPickleMaxDepth.
//                      pickle_loads: anything that is not a pickle of the
//                      value domain: truncated or malformed data, an unknown
//                      or refused opcode, a bad memo reference, data after
//                      STOP, a recursive or too deep structure, a value that
//                      would grow beyond the limits of PickleLoadOptions.
//   mp::OverflowError  pickle_loads: an integer outside int64 (or a protocol
//                      0 FLOAT literal outside the double range);
//                      pickle_dumps: a str or bytes of 4 GiB or more at
//                      protocol 2 or 3 (as CPython).
//
// Both functions are thread-safe (they share no state) and never abort on any
// input. Memory: pickle_dumps() needs the output; pickle_loads() needs a graph
// of about 100 bytes per object of the input (bounded by the input's size)
// plus the result.

#ifndef MP_CODEC_HPP_
#define MP_CODEC_HPP_

#include <cstddef>
#include <span>
#include <vector>

#include "mp/value.hpp"

namespace mp {

// The protocol `multiprocessing` uses (pickle.DEFAULT_PROTOCOL on 3.8-3.13).
inline constexpr int kPickleDefaultProtocol = 4;
// The highest protocol libmp reads and writes (pickle.HIGHEST_PROTOCOL).
inline constexpr int kPickleHighestProtocol = 5;
// The deepest nesting of lists and dicts pickle_dumps() writes and
// pickle_loads() accepts by default: `[]` has depth 1, `[[]]` depth 2. CPython
// cannot pickle values much deeper than its recursion limit (1000) either.
inline constexpr std::size_t kPickleMaxDepth = 1000;

// mp::pickle_dumps()
//
// Returns the pickle of `value` at `protocol` (2 to 5), byte-identical to
// CPython's `pickle.dumps(value, protocol)` for the corresponding Python value
// (see "Byte identity" and "Sharing" above). Protocol 4 is what
// `multiprocessing.connection.Connection.send` uses.
//
// Every value is written faithfully: ints exactly, floats bit for bit (NaN and
// infinities included, although the spec's domain excludes them), strings as
// UTF-8, dicts in insertion order.
//
// Throws mp::ValueError for a protocol outside 2..5, a string that is not
// valid UTF-8 (Python could not load it), or nesting deeper than
// kPickleMaxDepth; mp::OverflowError for a str or bytes of 4 GiB or more at
// protocol 2 or 3 (CPython needs protocol 4 for those too).
std::vector<std::byte> pickle_dumps(const Value& value, int protocol = kPickleDefaultProtocol);

// mp::PickleLoadOptions
//
// Limits pickle_loads() enforces on untrusted input. The defaults accept
// every pickle CPython writes for a value of the domain up to kPickleMaxDepth
// deep, unless it refers to the same large object very many times.
struct PickleLoadOptions {
  // The deepest nesting of lists, dicts and tuples accepted (`[]` is 1).
  // The decoder recurses once per level: keep this below ~10000.
  std::size_t max_depth = kPickleMaxDepth;

  // A pickle may refer to one object many times (memo references, DUP);
  // a Value holds a separate copy for each reference, so a short pickle
  // could otherwise expand into an enormous Value. The decoded Value may
  // take about 64 bytes per input byte (what any pickle without sharing
  // needs, at most) plus this many bytes; beyond that pickle_loads() throws
  // mp::ValueError. Sizes are counted as sizeof(mp::Value) per element plus
  // the string and bytes payloads.
  std::size_t max_alias_bytes = std::size_t{256} << 20;
};

// mp::pickle_loads()
//
// Decodes one pickle of a value of the domain, as CPython's `pickle.loads`
// would, and returns it as a Value. Accepts every protocol 0 to 5 and all the
// opcodes CPython uses for the domain:
//
//   - scalars: NONE, NEWTRUE/NEWFALSE, INT (also "I01"/"I00", protocol 0/1
//     booleans), BININT/BININT1/BININT2, LONG/LONG1/LONG4 (int64 range),
//     FLOAT/BINFLOAT, UNICODE (raw-unicode-escape), BINUNICODE /
//     SHORT_BINUNICODE / BINUNICODE8, BINBYTES / SHORT_BINBYTES / BINBYTES8;
//   - containers: EMPTY_LIST/LIST/APPEND/APPENDS, EMPTY_DICT/DICT/SETITEM/
//     SETITEMS, tuples (EMPTY_TUPLE, TUPLE, TUPLE1-3), MARK, POP, POP_MARK,
//     DUP;
//   - the memo: PUT/BINPUT/LONG_BINPUT/MEMOIZE, GET/BINGET/LONG_BINGET, with
//     Python's reference semantics (a list changed after it was memoized is
//     changed everywhere it appears);
//   - PROTO (up to 5) and FRAME.
//
// Conversions, the only ones: a tuple decodes to a list; a bytearray
// (BYTEARRAY8, or the `bytearray(...)` call of protocols 0-4) decodes to
// bytes. A dict key repeated by SETITEM keeps its first place and its last
// value, as in Python.
//
// Refused, with mp::ValueError naming the opcode:
//
//   - every opcode that imports, calls or builds an object: GLOBAL,
//     STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1/EXT2/
//     EXT4, PERSID/BINPERSID. The one exception is the fixed set of calls
//     CPython uses for bytes below protocol 3: `_codecs.encode(s, 'latin1')`
//     (also `codecs.encode`, encoding 'latin1', 'latin-1' or 'latin_1'),
//     `__builtin__.bytes()`, and `__builtin__.bytearray()` /
//     `bytearray(b)` / `bytearray(s, 'latin-1')` (also under `builtins`).
//     These are recognised and evaluated by the decoder itself: no Python
//     name is ever looked up and no code runs;
//   - values outside the domain: sets and frozensets (EMPTY_SET, ADDITEMS,
//     FROZENSET), out-of-band buffers (NEXT_BUFFER, READONLY_BUFFER),
//     Python 2 str (STRING, BINSTRING, SHORT_BINSTRING), dict keys that are
//     not str, strings with lone surrogates, recursive structures (a list
//     that contains itself).
//
// Hostile input always ends in a clean exception: truncated data, lengths
// beyond the data (nothing is allocated before the input is shown to hold
// it), unknown opcodes, stack and mark underflow, undefined memo keys, memo
// indices up to 2^32 (stored sparsely), nesting deeper than
// `options.max_depth`, shared references that would expand beyond
// `options.max_alias_bytes`. The pickle must end with STOP, leave exactly the
// result on the stack and no open MARK, and be followed by no more data
// (CPython ignores the rest; libmp, which decodes one message, refuses it).
//
// Throws mp::ValueError as above, mp::OverflowError for an integer outside
// int64 (or a protocol 0 FLOAT literal outside the double range).
Value pickle_loads(std::span<const std::byte> data, const PickleLoadOptions& options = {});

}  // namespace mp

#endif  // MP_CODEC_HPP_
