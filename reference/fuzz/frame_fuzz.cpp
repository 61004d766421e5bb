// Fuzz targets: the frame reader of mp::Connection. This file builds two targets:
//
//   frame            (default) bounded readers, fast: one mode byte, one argument byte, then
//                    the bytes a peer sends before closing. Mode (byte 0 % 2):
//                      0  recv_bytes(maxlength), maxlength = 2^(byte 1 % 21) (at most 1 MiB)
//                      1  recv_bytes(1 MiB) then pickle_loads() of each message: CPython's
//                         Connection.recv()
//   frame_records    (MP_FUZZ_FRAME_RECORDS) the bounded readers of `frame` over the record
//                    transport (mp::Pipe()'s SOCK_SEQPACKET pair): after the two bytes, a list
//                    of records, each a 2-byte big-endian length and its bytes; records that do
//                    not tile messages must give "bad message length", never a crash or hang
//   frame_unbounded  (MP_FUZZ_FRAME_UNBOUNDED) the readers with no bound, slow because every
//                    header of up to 64 MiB makes libmp allocate (and zero) that much at once:
//                      0  recv_bytes() with no maxlength (a header may announce 2^64 - 1 bytes)
//                      1  recv_bytes_into() a 64-byte buffer at offset (byte 1 % 72); a longer
//                         message is read whole into BufferTooShort, as in CPython
//
// Messages are read until the first error (at most 4096). Properties: every outcome is a
// message or an mp::Error (ValueError, OSError, EOFError, BufferTooShort, OverflowError), never
// a crash, a hang, another exception or a large allocation (run with -malloc_limit_mb=96: libmp
// documents at most 64 MiB allocated before a payload's bytes arrive); a returned message is
// never longer than maxlength, nor than the bytes sent; recv_bytes_into's count fits the buffer.
#include <span>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "mp/codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int mode = data[0] % 2;
  const int arg = data[1];
#ifdef MP_FUZZ_FRAME_RECORDS
  std::size_t sent = 0;
  auto [conn, raw] = mp_fuzz::connection_fed_with_records(data + 2, size - 2, &sent);
#else
  auto [conn, raw] = mp_fuzz::connection_fed_with(data + 2, size - 2);
  const std::size_t sent = size - 2;
#endif
  mp_fuzz::expect_clean([&, &conn = conn] {
    for (int i = 0; i < 4096 && !conn.closed() && conn.readable(); ++i) {
#ifndef MP_FUZZ_FRAME_UNBOUNDED
      if (mode == 0) {
        const std::int64_t maxlength = std::int64_t{1} << (arg % 21);
        const std::string m = conn.recv_bytes(maxlength);
        if (static_cast<std::int64_t>(m.size()) > maxlength) {
          mp_fuzz::fail("recv_bytes returned more than maxlength");
        }
        if (m.size() > sent) mp_fuzz::fail("recv_bytes returned more bytes than were sent");
      } else {
        const std::string m = conn.recv_bytes(std::int64_t{1} << 20);
        mp::PickleLoadOptions options;
        options.max_alias_bytes = std::size_t{1} << 20;
        try {
          (void)mp::pickle_loads(std::as_bytes(std::span(m.data(), m.size())), options);
        } catch (const mp::ValueError&) {
          // a refused pickle; the connection stays usable
        } catch (const mp::OverflowError&) {
        }
      }
#else
      if (mode == 0) {
        const std::string m = conn.recv_bytes();
        if (m.size() > sent) mp_fuzz::fail("recv_bytes returned more bytes than were sent");
      } else {
        char buf[64];
        const std::int64_t offset = arg % 72;
        try {
          const std::size_t n = conn.recv_bytes_into(std::span<char>(buf, sizeof buf), offset);
          if (offset > 64 || n > static_cast<std::size_t>(64 - offset)) {
            mp_fuzz::fail("recv_bytes_into reported more than the buffer holds");
          }
        } catch (const mp::BufferTooShort& e) {
          if (e.message().size() > sent) mp_fuzz::fail("BufferTooShort holds unsent bytes");
        }
      }
#endif
    }
  });
  ::close(raw);
  return 0;
}
