#include "aead.h"

#include <openssl/evp.h>

#include <limits.h>

namespace tswg {

namespace {

// OpenSSL takes int lengths; packets never come near, but a 2 GiB slice must not wrap.
constexpr size_t kMaxChunk = INT_MAX;

bool Update(EVP_CIPHER_CTX* ctx, bool enc, uint8_t* out, const uint8_t* in, size_t len) {
  while (len > 0) {
    int chunk = static_cast<int>(len > kMaxChunk ? kMaxChunk : len);
    int n = 0;
    int r = enc ? EVP_EncryptUpdate(ctx, out, &n, in, chunk) : EVP_DecryptUpdate(ctx, out, &n, in, chunk);
    if (r != 1) return false;
    if (out != nullptr) out += n;
    in += chunk;
    len -= static_cast<size_t>(chunk);
  }
  return true;
}

}  // namespace

ChaChaPoly::ChaChaPoly() {
  enc_ = EVP_CIPHER_CTX_new();
  dec_ = EVP_CIPHER_CTX_new();
  if (enc_ == nullptr || dec_ == nullptr ||
      EVP_EncryptInit_ex(enc_, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr) != 1 ||
      EVP_DecryptInit_ex(dec_, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr) != 1) {
    if (enc_ != nullptr) EVP_CIPHER_CTX_free(enc_);
    if (dec_ != nullptr) EVP_CIPHER_CTX_free(dec_);
    enc_ = dec_ = nullptr;
  }
}

ChaChaPoly::~ChaChaPoly() {
  if (enc_ != nullptr) EVP_CIPHER_CTX_free(enc_);
  if (dec_ != nullptr) EVP_CIPHER_CTX_free(dec_);
}

bool ChaChaPoly::Seal(const uint8_t* key, const uint8_t* nonce, const uint8_t* in, size_t len, size_t pad,
                      uint8_t* out, const uint8_t* ad, size_t ad_len) {
  static const uint8_t kZeros[64] = {0};
  if (!ok() || EVP_EncryptInit_ex(enc_, nullptr, nullptr, key, nonce) != 1) return false;
  if (ad_len > 0 && !Update(enc_, true, nullptr, ad, ad_len)) return false;
  if (!Update(enc_, true, out, in, len)) return false;
  size_t done = len;
  while (pad > 0) {
    size_t chunk = pad > sizeof(kZeros) ? sizeof(kZeros) : pad;
    if (!Update(enc_, true, out + done, kZeros, chunk)) return false;
    done += chunk;
    pad -= chunk;
  }
  int n = 0;
  if (EVP_EncryptFinal_ex(enc_, out + done, &n) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAeadTagLen), out + done) == 1;
}

bool ChaChaPoly::Open(const uint8_t* key, const uint8_t* nonce, const uint8_t* in, size_t len, uint8_t* out,
                      const uint8_t* ad, size_t ad_len) {
  if (!ok() || EVP_DecryptInit_ex(dec_, nullptr, nullptr, key, nonce) != 1) return false;
  // OpenSSL wants a writable pointer for the expected tag although it only reads it.
  uint8_t tag[kAeadTagLen];
  for (size_t i = 0; i < kAeadTagLen; i++) tag[i] = in[len + i];
  if (EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kAeadTagLen), tag) != 1) return false;
  if (ad_len > 0 && !Update(dec_, false, nullptr, ad, ad_len)) return false;
  if (!Update(dec_, false, out, in, len)) return false;
  int n = 0;
  return EVP_DecryptFinal_ex(dec_, out + len, &n) == 1;
}

}  // namespace tswg
