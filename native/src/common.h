// Shared helpers of the cdpo addon: tensor handles, argument parsing and error conversion.
//
// The addon is a thin map onto libtorch. A tensor crosses into JavaScript as a number: a handle
// into a per-thread table of tensors, made of a slot index and the slot's generation, so a handle
// used after `dispose` is detected instead of reaching a reused slot. TypeScript wraps handles in
// its `Tensor` class, frees them deterministically through `dispose`, and registers only tensors
// that outlive every scope with a FinalizationRegistry as the garbage collector's backstop. A
// number handle costs no allocation and no finalizer per op, which keeps small ops cheap.
//
// Every entry point runs inside `Guard`, which turns libtorch's c10::Error and any other C++
// exception into a JavaScript CdpoError with code "TORCH" and the op's name in the message.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>

#include <atomic>
#include <c10/util/Optional.h>
#include <string>
#include <vector>

namespace cdpo {

extern std::atomic<int64_t> gLiveTensors;

// Wraps a tensor in a new handle; an undefined tensor becomes `null`.
Napi::Value Wrap(Napi::Env env, at::Tensor tensor);
Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& tensors);

// Argument readers. `op` and `arg` name the call and argument in the TypeError they raise.
at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t index, const char* op, const char* arg);
c10::optional<at::Tensor> ArgOptionalTensor(const Napi::CallbackInfo& info, size_t index,
                                            const char* op, const char* arg);
std::vector<at::Tensor> ArgTensorList(const Napi::CallbackInfo& info, size_t index, const char* op,
                                      const char* arg);
bool IsTensor(const Napi::Value& value);
// Returns the live tensor a value refers to, or nullptr when it is not a live handle.
at::Tensor* TensorFromValue(const Napi::Value& value);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t index, const char* op, const char* arg);
c10::optional<int64_t> ArgOptionalInt(const Napi::CallbackInfo& info, size_t index, const char* op,
                                      const char* arg);
double ArgDouble(const Napi::CallbackInfo& info, size_t index, const char* op, const char* arg);
bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* op, const char* arg);
std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* op,
                      const char* arg);
std::vector<int64_t> ArgInts(const Napi::CallbackInfo& info, size_t index, const char* op,
                             const char* arg);
c10::optional<std::vector<int64_t>> ArgOptionalInts(const Napi::CallbackInfo& info, size_t index,
                                                    const char* op, const char* arg);
at::Scalar ArgScalar(const Napi::CallbackInfo& info, size_t index, const char* op,
                     const char* arg);
at::ScalarType ArgDtype(const Napi::CallbackInfo& info, size_t index, const char* op);
c10::optional<at::ScalarType> ArgOptionalDtype(const Napi::CallbackInfo& info, size_t index,
                                               const char* op);
at::Device ArgDevice(const Napi::CallbackInfo& info, size_t index, const char* op);
c10::optional<at::Generator> ArgOptionalGenerator(const Napi::CallbackInfo& info, size_t index,
                                                  const char* op);

const char* DtypeName(at::ScalarType type);
std::string DeviceName(const at::Device& device);

[[noreturn]] void ThrowTypeError(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowTorchError(Napi::Env env, const char* op, const std::string& message);
void SetErrorClass(Napi::Function cdpoErrorClass);

// Runs `body` and converts C++ exceptions into JavaScript errors naming `op`.
template <typename F>
Napi::Value Guard(const Napi::CallbackInfo& info, const char* op, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& error) {
    ThrowTorchError(info.Env(), op, error.what_without_backtrace());
  } catch (const std::exception& error) {
    ThrowTorchError(info.Env(), op, error.what());
  }
}

// Registration of each translation unit's functions on the module's exports.
void RegisterTensor(Napi::Env env, Napi::Object exports);
void RegisterOps(Napi::Env env, Napi::Object exports);
void RegisterAutograd(Napi::Env env, Napi::Object exports);
void RegisterOptim(Napi::Env env, Napi::Object exports);

}  // namespace cdpo
