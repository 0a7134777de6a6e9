// ChaCha20-Poly1305 (RFC 8439) through the OpenSSL libcrypto that Node itself exports.
// One object per thread: an EVP context is not safe to share, but re-keying it per packet
// is cheap, so a thread seals and opens for every peer with the same two contexts.
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace tswg {

constexpr size_t kAeadKeyLen = 32;
constexpr size_t kAeadNonceLen = 12;
constexpr size_t kAeadTagLen = 16;

class ChaChaPoly {
 public:
  ChaChaPoly();
  ~ChaChaPoly();
  ChaChaPoly(const ChaChaPoly&) = delete;
  ChaChaPoly& operator=(const ChaChaPoly&) = delete;

  // False when OpenSSL could not provide the cipher; nothing else works then.
  bool ok() const { return enc_ != nullptr && dec_ != nullptr; }

  // Seals `len` bytes of `in` followed by `pad` zero bytes into `out` (which may be `in`),
  // then the 16-byte tag. Returns false on an OpenSSL failure.
  bool Seal(const uint8_t* key, const uint8_t* nonce, const uint8_t* in, size_t len, size_t pad,
            uint8_t* out, const uint8_t* ad = nullptr, size_t ad_len = 0);
  // Opens `len` bytes of ciphertext followed by the tag into `out` (`len` bytes). Returns
  // false when the tag does not verify; `out` then holds garbage the caller must not use.
  bool Open(const uint8_t* key, const uint8_t* nonce, const uint8_t* in, size_t len, uint8_t* out,
            const uint8_t* ad = nullptr, size_t ad_len = 0);

 private:
  EVP_CIPHER_CTX* enc_ = nullptr;
  EVP_CIPHER_CTX* dec_ = nullptr;
};

// WireGuard's transport nonce: 32 zero bits, then the 64-bit counter in little-endian order.
inline void CounterNonce(uint64_t counter, uint8_t nonce[kAeadNonceLen]) {
  nonce[0] = nonce[1] = nonce[2] = nonce[3] = 0;
  for (int i = 0; i < 8; i++) nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
}

}  // namespace tswg
