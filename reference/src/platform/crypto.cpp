#include "mp/platform/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cerrno>
#include <climits>

#include "mp/errors.hpp"

namespace mp::platform {

namespace {

const EVP_MD* digest_by_name(std::string_view name) noexcept {
  if (name == "md5") return EVP_md5();
  if (name == "sha256") return EVP_sha256();
  if (name == "sha384") return EVP_sha384();
  if (name == "sha3_256") return EVP_sha3_256();
  if (name == "sha3_384") return EVP_sha3_384();
  return nullptr;
}

}  // namespace

std::string random_bytes(std::size_t size) {
  std::string out(size, '\0');
  if (size > INT_MAX ||
      RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(size)) != 1) {
    ERR_clear_error();
    throw OSError(EIO, "random number generator failed");
  }
  return out;
}

std::optional<std::string> hmac(std::string_view digest, std::string_view key,
                                std::string_view message) {
  const EVP_MD* md = digest_by_name(digest);
  if (md == nullptr || key.size() > INT_MAX) return std::nullopt;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int out_len = 0;
  // A null key pointer means "reuse the previous key" to some OpenSSL
  // versions: always pass a real pointer, also for an empty key.
  static const unsigned char kEmpty[1] = {0};
  const void* key_data = key.empty() ? static_cast<const void*>(kEmpty) : key.data();
  if (HMAC(md, key_data, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out,
           &out_len) == nullptr) {
    ERR_clear_error();  // e.g. MD5 refused by a FIPS provider
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(out), out_len);
}

bool equal_constant_time(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace mp::platform
