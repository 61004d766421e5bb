// Fuzz target: the authentication handshake, mp::deliver_challenge / mp::answer_challenge.
//
// Input: one mode byte, then the frames the peer sends before closing. Key b"secret".
//   0  server order: deliver_challenge, then answer_challenge (Listener::accept)
//   1  client order: answer_challenge, then deliver_challenge (mp::Client)
//   2  answer_challenge only            3  deliver_challenge only
// The nonce of deliver_challenge is made deterministic (RAND_bytes below): bytes 0x00, 0x01, ...
// in the server order and 0x40, 0x41, ... in the client order, the nonces of the handshake
// fixtures, so that the seed transcripts authenticate and the fuzzer explores past them.
// Properties: each call returns or throws an mp::Error (AuthenticationError, OSError,
// EOFError), never crashes or throws anything else; the peer receives only whole frames of at
// most 256 bytes.
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "fuzz_util.hpp"

namespace {
unsigned char g_nonce_base = 0;
}

// Takes precedence over OpenSSL's RAND_bytes for this program (libmp's nonce source).
extern "C" int RAND_bytes(unsigned char* buf, int num) {
  for (int i = 0; i < num; ++i) buf[i] = static_cast<unsigned char>(g_nonce_base + i);
  return 1;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 4;
  g_nonce_base = mode == 1 ? 0x40 : 0x00;
  auto [conn, raw] = mp_fuzz::connection_fed_with(data + 1, size - 1);
  const std::string key = "secret";
  mp_fuzz::expect_clean([&, &conn = conn] {
    switch (mode) {
      case 0:
        mp::deliver_challenge(conn, key);
        mp::answer_challenge(conn, key);
        break;
      case 1:
        mp::answer_challenge(conn, key);
        mp::deliver_challenge(conn, key);
        break;
      case 2:
        mp::answer_challenge(conn, key);
        break;
      default:
        mp::deliver_challenge(conn, key);
        break;
    }
  });
  conn.close();
  // What libmp wrote: whole frames, each at most 256 bytes (challenge 63, response <= 56,
  // verdicts 13 with their headers).
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(raw, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(raw);
  std::size_t pos = 0;
  while (pos < out.size()) {
    if (out.size() - pos < 4) mp_fuzz::fail("libmp wrote a partial header");
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<unsigned char>(out[pos + i]);
    if (len > 256) mp_fuzz::fail("libmp wrote a handshake frame over 256 bytes");
    if (out.size() - pos - 4 < len) mp_fuzz::fail("libmp wrote a partial frame");
    pos += 4 + len;
  }
  return 0;
}
