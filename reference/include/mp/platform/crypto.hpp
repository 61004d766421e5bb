// -----------------------------------------------------------------------------
// File: platform/crypto.hpp
// -----------------------------------------------------------------------------
//
// INTERNAL: part of libmp's platform layer. Users of libmp do not include this
// header; its contents may change without notice.
//
// The cryptography of the connection handshake, over OpenSSL's libcrypto
// (the only file of libmp that includes OpenSSL headers is crypto.cpp):
// random nonces, HMACs with the digests CPython's multiprocessing allows, and
// a comparison whose time does not depend on the bytes compared.

#ifndef MP_PLATFORM_CRYPTO_HPP_
#define MP_PLATFORM_CRYPTO_HPP_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace mp::platform {

// random_bytes()
//
// `size` bytes from OpenSSL's CSPRNG (RAND_bytes, seeded by the kernel).
// Throws mp::OSError if the generator cannot produce them.
std::string random_bytes(std::size_t size);

// hmac()
//
// HMAC-<digest>(key, message), raw. `digest` is one of the names
// multiprocessing allows: "md5", "sha256", "sha384", "sha3_256", "sha3_384".
// Returns nullopt for any other name, or when the digest is unavailable (e.g.
// MD5 in FIPS mode). An empty key is an ordinary (all-zero padded) HMAC key.
std::optional<std::string> hmac(std::string_view digest, std::string_view key,
                                std::string_view message);

// equal_constant_time()
//
// Whether `a` and `b` are equal; for equal lengths, the time taken does not
// depend on where they differ (CRYPTO_memcmp). Different lengths compare
// unequal at once (the lengths are public in the protocol).
bool equal_constant_time(std::string_view a, std::string_view b) noexcept;

}  // namespace mp::platform

#endif  // MP_PLATFORM_CRYPTO_HPP_
