#include "crypto_binding.h"

#include <string.h>

#include "aead.h"

namespace tswg {

namespace {

// One pair of EVP contexts per JavaScript thread (the main thread and each worker).
ChaChaPoly& ThreadAead() {
  thread_local ChaChaPoly aead;
  return aead;
}

bool Bytes(const Napi::Value& v, Napi::Uint8Array* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) return false;
  *out = v.As<Napi::Uint8Array>();
  return true;
}

Napi::Value Fail(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// Common argument checks: key (32 bytes), nonce (12 bytes), data, optional additional data.
bool Args(const Napi::CallbackInfo& info, Napi::Uint8Array* key, Napi::Uint8Array* nonce, Napi::Uint8Array* data,
          Napi::Uint8Array* ad, bool* has_ad) {
  if (!Bytes(info[0], key) || key->ByteLength() != kAeadKeyLen) return false;
  if (!Bytes(info[1], nonce) || nonce->ByteLength() != kAeadNonceLen) return false;
  if (!Bytes(info[2], data)) return false;
  *has_ad = false;
  if (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull()) {
    if (!Bytes(info[3], ad)) return false;
    *has_ad = ad->ByteLength() > 0;
  }
  return true;
}

// aeadSeal(key, nonce, plaintext, ad?) -> ciphertext || tag
Napi::Value AeadSeal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array key, nonce, data, ad;
  bool has_ad;
  if (!Args(info, &key, &nonce, &data, &ad, &has_ad)) {
    return Fail(env, "aeadSeal(key: 32 bytes, nonce: 12 bytes, plaintext, ad?) takes Uint8Arrays");
  }
  size_t len = data.ByteLength();
  Napi::Uint8Array out = Napi::Uint8Array::New(env, len + kAeadTagLen);
  if (!ThreadAead().Seal(key.Data(), nonce.Data(), data.Data(), len, 0, out.Data(),
                         has_ad ? ad.Data() : nullptr, has_ad ? ad.ByteLength() : 0)) {
    Napi::Error::New(env, "aeadSeal: OpenSSL failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return out;
}

// aeadOpen(key, nonce, sealed, ad?) -> plaintext, or null when the tag does not verify
Napi::Value AeadOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array key, nonce, data, ad;
  bool has_ad;
  if (!Args(info, &key, &nonce, &data, &ad, &has_ad)) {
    return Fail(env, "aeadOpen(key: 32 bytes, nonce: 12 bytes, sealed, ad?) takes Uint8Arrays");
  }
  if (data.ByteLength() < kAeadTagLen) return env.Null();
  size_t len = data.ByteLength() - kAeadTagLen;
  Napi::Uint8Array out = Napi::Uint8Array::New(env, len);
  if (!ThreadAead().Open(key.Data(), nonce.Data(), data.Data(), len, out.Data(), has_ad ? ad.Data() : nullptr,
                         has_ad ? ad.ByteLength() : 0)) {
    // Whatever was decrypted before the tag failed must not leak.
    memset(out.Data(), 0, len);
    return env.Null();
  }
  return out;
}

// aeadSealBatch(key, firstCounter, input, sizes: Uint32Array, output) -> packets sealed.
// Seals each packet of `input` (back to back, lengths in `sizes`) with WireGuard's counter
// nonce, writing ciphertext || tag back to back into `output`.
Napi::Value AeadSealBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array key, input, output;
  if (!Bytes(info[0], &key) || key.ByteLength() != kAeadKeyLen || !info[1].IsNumber() || !Bytes(info[2], &input) ||
      !info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      !Bytes(info[4], &output)) {
    return Fail(env, "aeadSealBatch(key, firstCounter, input, sizes: Uint32Array, output)");
  }
  double first = info[1].As<Napi::Number>().DoubleValue();
  if (!(first >= 0 && first <= 9007199254740991.0)) return Fail(env, "aeadSealBatch: bad counter");
  Napi::Uint32Array sizes = info[3].As<Napi::Uint32Array>();
  size_t in_off = 0, out_off = 0;
  uint8_t nonce[kAeadNonceLen];
  uint64_t counter = static_cast<uint64_t>(first);
  size_t i = 0;
  for (; i < sizes.ElementLength(); i++) {
    size_t len = sizes[i];
    if (in_off + len > input.ByteLength() || out_off + len + kAeadTagLen > output.ByteLength()) break;
    CounterNonce(counter++, nonce);
    if (!ThreadAead().Seal(key.Data(), nonce, input.Data() + in_off, len, 0, output.Data() + out_off)) break;
    in_off += len;
    out_off += len + kAeadTagLen;
  }
  return Napi::Number::New(env, static_cast<double>(i));
}

}  // namespace

void DefineCryptoFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("aeadSeal", Napi::Function::New<AeadSeal>(env, "aeadSeal"));
  exports.Set("aeadOpen", Napi::Function::New<AeadOpen>(env, "aeadOpen"));
  exports.Set("aeadSealBatch", Napi::Function::New<AeadSealBatch>(env, "aeadSealBatch"));
}

}  // namespace tswg
