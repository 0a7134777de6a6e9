// What the JavaScript classes `Tun` and `Udp` share around their reader threads: the thread-safe
// function that hands a reader's batches to a JavaScript callback (and whether it keeps the event
// loop alive), and the environment-teardown hook that stops the reader before its state is freed.
#pragma once

#include <napi.h>

#include <memory>

namespace tswg {

// Fn: a Napi::TypedThreadSafeFunction<std::nullptr_t, Batch, Deliver>.
template <typename Fn>
class JsDelivery {
 public:
  // Creates the function, idle (not keeping the loop alive until SetRef(true)). False with an
  // exception pending when N-API refused.
  bool Start(Napi::Env env, Napi::Function callback, const char* name) {
    // Cleared by the function's finalizer, which may run after the owner is gone; hence shared.
    alive_ = std::make_shared<bool>(true);
    auto* alive = new std::shared_ptr<bool>(alive_);
    fn_ = Fn::New(
        env, callback, name, 0, 1, nullptr,
        [](Napi::Env, std::shared_ptr<bool>* flag, std::nullptr_t*) {
          **flag = false;
          delete flag;
        },
        alive);
    if (env.IsExceptionPending()) return false;
    started_ = true;
    fn_.Unref(env);
    refed_ = false;
    return true;
  }

  bool started() const { return started_; }
  // A copy for the reader thread to call NonBlockingCall on.
  Fn function() const { return fn_; }

  // Whether delivering keeps the event loop alive; nothing once the function is finalized.
  void SetRef(Napi::Env env, bool ref) {
    if (!started_ || !*alive_ || refed_ == ref) return;
    if (ref)
      fn_.Ref(env);
    else
      fn_.Unref(env);
    refed_ = ref;
  }

  // After the reader thread has stopped: nothing more will be queued.
  void Abort() {
    if (started_ && *alive_) fn_.Abort();
  }

 private:
  Fn fn_;
  std::shared_ptr<bool> alive_;
  bool started_ = false;
  bool refed_ = false;
};

// Runs a shutdown function when the environment is torn down with the object still open (a
// worker ending, process exit): without it the reader thread would outlive the state it uses.
class TeardownHook {
 public:
  using Shutdown = void (*)(void* owner);
  ~TeardownHook() { Disarm(); }

  void Arm(napi_env env, Shutdown shutdown, void* owner) {
    if (armed_) return;
    env_ = env;
    shutdown_ = shutdown;
    owner_ = owner;
    armed_ = napi_add_env_cleanup_hook(env, &TeardownHook::Fire, this) == napi_ok;
  }

  void Disarm() {
    if (!armed_) return;
    napi_remove_env_cleanup_hook(env_, &TeardownHook::Fire, this);
    armed_ = false;
  }

 private:
  static void Fire(void* self) {
    auto* hook = static_cast<TeardownHook*>(self);
    hook->armed_ = false;
    hook->shutdown_(hook->owner_);
  }

  napi_env env_ = nullptr;
  Shutdown shutdown_ = nullptr;
  void* owner_ = nullptr;
  bool armed_ = false;
};

}  // namespace tswg
