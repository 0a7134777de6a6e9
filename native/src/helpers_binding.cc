#include "helpers_binding.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "errno_error.h"
#include "mss_clamp.h"
#include "pmtu.h"
#include "vnet.h"

namespace tswg {

namespace {

bool Bytes(const Napi::Value& v, Napi::Uint8Array* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) return false;
  *out = v.As<Napi::Uint8Array>();
  return true;
}

// vnetSplit(header: 10 bytes, packet) -> Uint8Array[] of plain IP packets, or null when the
// header and packet make no sense together.
Napi::Value VnetSplit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array header, packet;
  if (!Bytes(info[0], &header) || header.ByteLength() != kVnetHdrLen || !Bytes(info[1], &packet)) {
    Napi::TypeError::New(env, "vnetSplit(header: 10 bytes, packet)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  VirtioNetHdr h;
  memcpy(&h, header.Data(), sizeof(h));
  PacketBatch batch;
  SplitResult r = SplitVnetPacket(h, packet.Data(), packet.ByteLength(), &batch);
  if (r != SplitResult::kOk) return env.Null();
  Napi::Array out = Napi::Array::New(env, batch.count());
  size_t off = 0;
  for (size_t i = 0; i < batch.count(); i++) {
    size_t len = batch.sizes()[i];
    Napi::Uint8Array p = Napi::Uint8Array::New(env, len);
    memcpy(p.Data(), batch.data() + off, len);
    off += len;
    out.Set(static_cast<uint32_t>(i), p);
  }
  return out;
}

// tunCoalesce(packets) -> [{ header: 10 bytes, packet, segments }]: what one TUN write burst of
// these packets would consist of.
Napi::Value TunCoalesce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) {
    Napi::TypeError::New(env, "tunCoalesce(packets: Uint8Array[])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array packets = info[0].As<Napi::Array>();
  // Copies, so the pointers stay valid however the engine moves things.
  std::vector<std::vector<uint8_t>> copies(packets.Length());
  TunWriter writer(true, kOffloadCsum | kOffloadTso4 | kOffloadTso6 | kOffloadUso4 | kOffloadUso6);
  for (uint32_t i = 0; i < packets.Length(); i++) {
    Napi::Uint8Array p;
    if (!Bytes(packets.Get(i), &p) || p.ByteLength() == 0 || p.ByteLength() > kMaxIpPacket) {
      Napi::TypeError::New(env, "tunCoalesce: packets must be non-empty Uint8Arrays").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    copies[i].assign(p.Data(), p.Data() + p.ByteLength());
    writer.Add(copies[i].data(), copies[i].size());
  }
  std::vector<TunWriter::Unit> units;
  writer.Finish(&units);
  Napi::Array out = Napi::Array::New(env, units.size());
  for (size_t i = 0; i < units.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    Napi::Uint8Array h = Napi::Uint8Array::New(env, kVnetHdrLen);
    memcpy(h.Data(), &units[i].hdr, kVnetHdrLen);
    Napi::Uint8Array p = Napi::Uint8Array::New(env, units[i].len);
    memcpy(p.Data(), units[i].data, units[i].len);
    o.Set("header", h);
    o.Set("packet", p);
    o.Set("segments", Napi::Number::New(env, units[i].segments));
    out.Set(static_cast<uint32_t>(i), o);
  }
  writer.Reset();
  return out;
}

// setSocketMark(fd, mark): SO_MARK on a socket; throws an errno error on failure.
Napi::Value SetSocketMark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "setSocketMark(fd, mark)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  double m = info[1].As<Napi::Number>().DoubleValue();
  if (fd < 0 || !(m >= 0 && m <= 4294967295.0) || m != static_cast<double>(static_cast<uint32_t>(m))) {
    Napi::TypeError::New(env, "setSocketMark: bad descriptor or mark").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t mark = static_cast<uint32_t>(m);
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
    ErrnoError(env, errno, "setsockopt(SO_MARK)").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// pathMtu(family: 4 | 6, address bytes, port, mark[, detail]) -> the kernel's path MTU towards it, 0 if
// unknown; with detail true { mtu, interfaceMtu }.
Napi::Value PathMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array addr;
  if (!info[0].IsNumber() || !Bytes(info[1], &addr) || !info[2].IsNumber() || !info[3].IsNumber()) {
    Napi::TypeError::New(env, "pathMtu(family, address, port, mark)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  SockAddr to;
  int family = info[0].As<Napi::Number>().Int32Value();
  uint32_t port = info[2].As<Napi::Number>().Uint32Value();
  if (port > 65535 || !MakeSockAddr(family, addr.Data(), addr.ByteLength(), static_cast<uint16_t>(port), "", &to)) {
    return Napi::Number::New(env, 0);
  }
  uint32_t interface_mtu = 0;
  uint32_t mtu = ReadKernelPathMtu(to, info[3].As<Napi::Number>().Uint32Value(), &interface_mtu);
  if (!info[4].IsBoolean() || !info[4].As<Napi::Boolean>().Value()) return Napi::Number::New(env, mtu);
  // detail: also the MTU of the interface the path leaves by, which tells how the value was learnt.
  Napi::Object out = Napi::Object::New(env);
  out.Set("mtu", Napi::Number::New(env, mtu));
  out.Set("interfaceMtu", Napi::Number::New(env, interface_mtu));
  return out;
}

// clampMss(packet, maxMss) -> whether the SYN's MSS was lowered (in place); for tests beside the TypeScript twin.
Napi::Value ClampMssHelper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array pkt;
  if (!Bytes(info[0], &pkt) || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "clampMss(packet, maxMss)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, ClampMss(pkt.Data(), pkt.ByteLength(), info[1].As<Napi::Number>().Uint32Value()));
}

}  // namespace

void DefineHelperFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("vnetSplit", Napi::Function::New<VnetSplit>(env, "vnetSplit"));
  exports.Set("tunCoalesce", Napi::Function::New<TunCoalesce>(env, "tunCoalesce"));
  exports.Set("pathMtu", Napi::Function::New<PathMtu>(env, "pathMtu"));
  exports.Set("clampMss", Napi::Function::New<ClampMssHelper>(env, "clampMss"));
  exports.Set("setSocketMark", Napi::Function::New<SetSocketMark>(env, "setSocketMark"));
}

}  // namespace tswg
