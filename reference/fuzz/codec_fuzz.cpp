// Fuzz target: the pickle decoder, mp::pickle_loads().
//
// Input: any bytes, decoded with the default depth limit and a 1 MiB alias budget (a documented
// option, to keep each run fast). Properties: pickle_loads returns a Value or throws
// mp::ValueError / mp::OverflowError, never crashes or throws anything else; a Value it returns
// can be written by pickle_dumps (protocols 2 to 5), and decoding that gives a Value that
// pickle_dumps writes to the same bytes again (a fixed point; NaN-safe, unlike ==).
#include <span>
#include <vector>

#include "fuzz_util.hpp"
#include "mp/codec.hpp"
#include "mp/value.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  mp::PickleLoadOptions options;
  options.max_alias_bytes = std::size_t{1} << 20;
  mp::Value v;
  try {
    v = mp::pickle_loads(std::as_bytes(std::span(data, size)), options);
  } catch (const mp::ValueError&) {
    return 0;
  } catch (const mp::OverflowError&) {
    return 0;
  } catch (const std::exception& e) {
    mp_fuzz::fail("pickle_loads threw an exception that is not ValueError/OverflowError:",
                  e.what());
  }
  for (int protocol = 2; protocol <= 5; ++protocol) {
    std::vector<std::byte> once, twice;
    try {
      once = mp::pickle_dumps(v, protocol);
      twice = mp::pickle_dumps(mp::pickle_loads(once, options), protocol);
    } catch (const std::exception& e) {
      mp_fuzz::fail("a decoded Value does not round-trip:", e.what());
    }
    if (once != twice) mp_fuzz::fail("pickle_dumps(pickle_loads(p)) != p for p = pickle_dumps(v)");
  }
  return 0;
}
