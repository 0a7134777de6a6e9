#include "tun_device.h"

#include <errno.h>
#include <string.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include "errno_error.h"
#include "packet_sink.h"
#include "netif_ioctl.h"
#include "tun_open.h"

namespace tswg {

namespace {

constexpr uint32_t kMaxBatchSize = 4096;
constexpr uint32_t kMaxPending = 1024;

Napi::Value ThrowError(Napi::Env env, const char* message) {
  Napi::Error::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowTypeError(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  ErrnoError(env, err, syscall).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool ReadCount(const Napi::Value& value, uint32_t max, uint32_t* out) {
  if (!value.IsNumber()) return false;
  double d = value.As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= max) || d != static_cast<double>(static_cast<uint32_t>(d))) return false;
  *out = static_cast<uint32_t>(d);
  return true;
}

}  // namespace

void DeliverBatch(Napi::Env env, Napi::Function callback, std::nullptr_t* /*context*/,
                  PacketBatch* batch) {
  std::unique_ptr<PacketBatch> owned(batch);
  // A null environment means the function is being torn down with batches still queued.
  if (static_cast<napi_env>(env) == nullptr || callback.IsEmpty()) return;
  if (batch->error != 0) {
    callback.Call({env.Null(), env.Null(), Napi::String::New(env, ErrnoName(batch->error))});
    return;
  }
  // One copy into memory the garbage collector accounts for; the native batch is freed at once.
  // C calls throughout: while the environment is torn down (a process ending with batches
  // queued) they fail with a status, where the C++ wrappers would end it with a fatal error.
  void* copy;
  napi_value data, buffer, sizes, ignored;
  void* sizes_data;
  size_t count = batch->count();
  if (napi_create_buffer_copy(env, batch->bytes(), batch->data(), &copy, &data) != napi_ok ||
      napi_create_arraybuffer(env, count * sizeof(uint32_t), &sizes_data, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_uint32_array, count, buffer, 0, &sizes) != napi_ok) {
    return;
  }
  if (count > 0) memcpy(sizes_data, batch->sizes().data(), count * sizeof(uint32_t));
  napi_value args[3] = {data, sizes, env.Null()};
  napi_call_function(env, env.Undefined(), callback, 3, args, &ignored);
}

Napi::Function TunDevice::Define(Napi::Env env) {
  return DefineClass(env, "Tun",
                     {
                         InstanceMethod<&TunDevice::Start>("start"),
                         InstanceMethod<&TunDevice::Ack>("ack"),
                         InstanceMethod<&TunDevice::Write>("write"),
                         InstanceMethod<&TunDevice::Ref>("ref"),
                         InstanceMethod<&TunDevice::Unref>("unref"),
                         InstanceMethod<&TunDevice::Close>("close"),
                         InstanceMethod<&TunDevice::Name>("name"),
                         InstanceMethod<&TunDevice::GetMtu>("getMtu"),
                         InstanceMethod<&TunDevice::SetMtu>("setMtu"),
                         InstanceMethod<&TunDevice::GetFlags>("getFlags"),
                         InstanceMethod<&TunDevice::Stats>("stats"),
                         InstanceMethod<&TunDevice::Offloads>("offloads"),
                         InstanceMethod<&TunDevice::SetPacketSink>("setPacketSink"),
                     });
}

TunDevice::TunDevice(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<TunDevice>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info[0].IsNumber()) {
    AdoptPacketFd(info);
    return;
  }
  if (!info[0].IsString()) {
    ThrowTypeError(env, "Tun: name must be a string");
    return;
  }
  std::string netns;
  if (info[1].IsString()) {
    netns = info[1].As<Napi::String>().Utf8Value();
  } else if (!info[1].IsUndefined() && !info[1].IsNull()) {
    ThrowTypeError(env, "Tun: netnsPath must be a string or null");
    return;
  }
  bool offload = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  TunOpenResult opened = OpenTun(info[0].As<Napi::String>().Utf8Value(), netns, offload);
  if (opened.err != 0) {
    ErrnoError(env, opened.err, opened.syscall).ThrowAsJavaScriptException();
    return;
  }
  tun_fd_ = std::make_shared<SharedFd>(opened.tun_fd);
  ctl_fd_ = opened.ctl_fd;
  name_ = opened.name;
  vnet_ = opened.vnet;
  offloads_ = opened.offloads;
  writer_.reset(new TunWriter(vnet_, offloads_));
  // Without this, a worker or an environment torn down with the device open would leave
  // the reader thread running against freed state.
  teardown_.Arm(env_, [](void* self) { static_cast<TunDevice*>(self)->Shutdown(); }, this);
}

void TunDevice::AdoptPacketFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd = info[0].As<Napi::Number>().DoubleValue();
  uint32_t mtu;
  if (!(fd >= 0 && fd <= 0x7fffffff) || fd != static_cast<double>(static_cast<int>(fd)) || !info[1].IsString() ||
      !ReadCount(info[2], 65535, &mtu)) {
    ThrowTypeError(env, "Tun(fd, name, mtu): fd must be a descriptor, name a string, mtu in 1..65535");
    return;
  }
  // Only packet sockets: a stream would merge packets, and anything else is not ours to adopt.
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      (type != SOCK_SEQPACKET && type != SOCK_DGRAM)) {
    ThrowTypeError(env, "Tun(fd, name, mtu): fd must be a SOCK_SEQPACKET or SOCK_DGRAM socket");
    return;
  }
  tun_fd_ = std::make_shared<SharedFd>(static_cast<int>(fd));
  name_ = info[1].As<Napi::String>().Utf8Value();
  packet_fd_ = true;
  packet_mtu_ = static_cast<int>(mtu);
  writer_.reset(new TunWriter(false, 0));
  teardown_.Arm(env_, [](void* self) { static_cast<TunDevice*>(self)->Shutdown(); }, this);
}

TunDevice::~TunDevice() {
  Shutdown();
  teardown_.Disarm();
}

void TunDevice::Shutdown() {
  if (closed_) return;
  closed_ = true;
  // The thread goes first, so nothing is queued into the function after it is aborted.
  if (reader_) reader_->Stop();
  deliver_.Abort();
  // The native data path may hold the descriptor too; the last holder closes it.
  tun_fd_.reset();
  if (ctl_fd_ >= 0) close(ctl_fd_);
  ctl_fd_ = -1;
}

Napi::Value TunDevice::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return ThrowError(env, "Tun.start: device is closed");
  if (deliver_.started()) return ThrowError(env, "Tun.start: already started");
  if (!info[0].IsFunction()) return ThrowTypeError(env, "Tun.start: callback must be a function");
  uint32_t batch_size, max_pending;
  if (!ReadCount(info[1], kMaxBatchSize, &batch_size)) {
    return ThrowTypeError(env, "Tun.start: batchSize must be an integer in 1..4096");
  }
  if (!ReadCount(info[2], kMaxPending, &max_pending)) {
    return ThrowTypeError(env, "Tun.start: maxPending must be an integer in 1..1024");
  }

  // Idle until the JavaScript side waits for packets (see ref/unref).
  if (!deliver_.Start(env, info[0].As<Napi::Function>(), "tswg:tun-reader")) return env.Undefined();
  BatchFunction deliver = deliver_.function();
  reader_.reset(new TunReader(tun_fd_->get(), vnet_, batch_size, static_cast<int>(max_pending),
                              [deliver](PacketBatch* batch) {
                                return deliver.NonBlockingCall(batch) == napi_ok;
                              }));
  int err = reader_->Start();
  if (err != 0) {
    reader_.reset();
    return ThrowErrno(env, err, "eventfd");
  }
  return env.Undefined();
}

Napi::Value TunDevice::Ack(const Napi::CallbackInfo& info) {
  if (!closed_ && reader_) reader_->Acknowledge();
  return info.Env().Undefined();
}

Napi::Value TunDevice::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) return ThrowTypeError(env, "Tun.write: packets must be an array");
  Napi::Array packets = info[0].As<Napi::Array>();
  uint32_t count = packets.Length();
  uint64_t dropped_before = write_stats_.dropped;
  uint32_t invalid = 0;
  // The arrays stay referenced by `packets` until the flush below, so the writer may point
  // into them; segments of one TCP flow go out as one write.
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value value = packets.Get(i);
    if (env.IsExceptionPending()) {
      writer_->Reset();
      return env.Undefined();
    }
    // A packet that is not bytes is dropped like one the kernel refuses.
    if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array || closed_) {
      invalid++;
      continue;
    }
    Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
    if (bytes.ByteLength() == 0 || bytes.ByteLength() > kMaxIpPacket) {
      invalid++;
      continue;
    }
    writer_->Add(bytes.Data(), bytes.ByteLength());
  }
  if (closed_) {
    writer_->Reset();
  } else {
    writer_->Flush(tun_fd_->get(), &write_stats_);
  }
  write_stats_.dropped += invalid;
  return Napi::Number::New(env, static_cast<double>(write_stats_.dropped - dropped_before));
}

Napi::Value TunDevice::Ref(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!closed_) deliver_.SetRef(env, true);
  return env.Undefined();
}

Napi::Value TunDevice::Unref(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!closed_) deliver_.SetRef(env, false);
  return env.Undefined();
}

Napi::Value TunDevice::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  teardown_.Disarm();
  return info.Env().Undefined();
}

const std::string& TunDevice::CurrentName() {
  std::string current;
  if (!closed_ && tun_fd_ && !packet_fd_ && TunInterfaceName(tun_fd_->get(), &current) == 0 && !current.empty()) {
    name_ = current;
  }
  return name_;
}

Napi::Value TunDevice::Name(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), CurrentName());
}

Napi::Value TunDevice::GetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return ThrowError(env, "Tun.getMtu: device is closed");
  if (packet_fd_) return Napi::Number::New(env, packet_mtu_);
  int mtu = 0;
  int err = GetInterfaceMtu(ctl_fd_, CurrentName(), &mtu);
  if (err != 0) return ThrowErrno(env, err, "ioctl(SIOCGIFMTU)");
  return Napi::Number::New(env, mtu);
}

Napi::Value TunDevice::SetMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return ThrowError(env, "Tun.setMtu: device is closed");
  uint32_t mtu;
  if (!ReadCount(info[0], 65535, &mtu)) {
    return ThrowTypeError(env, "Tun.setMtu: mtu must be an integer in 1..65535");
  }
  if (packet_fd_) {
    packet_mtu_ = static_cast<int>(mtu);
    return env.Undefined();
  }
  int err = SetInterfaceMtu(ctl_fd_, CurrentName(), static_cast<int>(mtu));
  if (err != 0) return ThrowErrno(env, err, "ioctl(SIOCSIFMTU)");
  return env.Undefined();
}

Napi::Value TunDevice::GetFlags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (closed_) return ThrowError(env, "Tun.getFlags: device is closed");
  if (packet_fd_) return Napi::Number::New(env, IFF_UP | IFF_RUNNING);
  unsigned flags = 0;
  int err = GetInterfaceFlags(ctl_fd_, CurrentName(), &flags);
  if (err != 0) return ThrowErrno(env, err, "ioctl(SIOCGIFFLAGS)");
  return Napi::Number::New(env, flags);
}

Napi::Value TunDevice::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TunReaderStats r;
  int pending = 0;
  if (reader_) {
    r = reader_->stats();
    pending = reader_->pending();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("packetsRead", Napi::Number::New(env, static_cast<double>(r.packets)));
  out.Set("bytesRead", Napi::Number::New(env, static_cast<double>(r.bytes)));
  out.Set("batchesRead", Napi::Number::New(env, static_cast<double>(r.batches)));
  out.Set("readerPauses", Napi::Number::New(env, static_cast<double>(r.pauses)));
  out.Set("pendingBatches", Napi::Number::New(env, pending));
  out.Set("superPackets", Napi::Number::New(env, static_cast<double>(r.super_packets)));
  out.Set("malformed", Napi::Number::New(env, static_cast<double>(r.malformed)));
  out.Set("handledNatively", Napi::Number::New(env, static_cast<double>(r.handled)));
  out.Set("passedDropped", Napi::Number::New(env, static_cast<double>(r.passed_dropped)));
  out.Set("packetsWritten", Napi::Number::New(env, static_cast<double>(write_stats_.packets)));
  out.Set("writes", Napi::Number::New(env, static_cast<double>(write_stats_.writes)));
  out.Set("coalesced", Napi::Number::New(env, static_cast<double>(write_stats_.coalesced)));
  out.Set("writeDropped", Napi::Number::New(env, static_cast<double>(write_stats_.dropped)));
  if (write_stats_.last_errno != 0) {
    out.Set("lastWriteError", Napi::String::New(env, ErrnoName(write_stats_.last_errno)));
  } else {
    out.Set("lastWriteError", env.Null());
  }
  return out;
}

Napi::Value TunDevice::Offloads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("vnetHdr", Napi::Boolean::New(env, vnet_));
  out.Set("flags", Napi::Number::New(env, offloads_));
  return out;
}

Napi::Value TunDevice::SetPacketSink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const PacketSink* sink = info.Length() > 0 ? PacketSinkFromValue(env, info[0]) : nullptr;
  bool taken = sink != nullptr && packet_fd_ && !closed_ && tun_fd_ && tun_fd_->SetSink(sink);
  return Napi::Boolean::New(env, taken);
}

}  // namespace tswg
