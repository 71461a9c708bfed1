// Autograd, grad-mode scopes and autocast.
//
// Scopes take a JavaScript callback and run it synchronously under a libtorch RAII guard, so the
// guard's thread-local state is restored even when the callback throws.
#include "common.h"

#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>
#include <torch/types.h>
#include <torch/nn/utils/clip_grad.h>

namespace cdpo {
namespace {

Napi::Value RequiresGrad_(const Napi::CallbackInfo& info) {
  return Guard(info, "requiresGrad_", [&]() -> Napi::Value {
    ArgTensor(info, 0, "requiresGrad_", "tensor").requires_grad_(ArgBool(info, 1, "requiresGrad_", "requiresGrad"));
    return info[0];
  });
}

Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return Guard(info, "requiresGrad", [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), ArgTensor(info, 0, "requiresGrad", "tensor").requires_grad());
  });
}

Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  return Guard(info, "isLeaf", [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), ArgTensor(info, 0, "isLeaf", "tensor").is_leaf());
  });
}

Napi::Value RetainGrad(const Napi::CallbackInfo& info) {
  return Guard(info, "retainGrad", [&]() -> Napi::Value {
    ArgTensor(info, 0, "retainGrad", "tensor").retain_grad();
    return info.Env().Undefined();
  });
}

// grad(t) returns a new handle on t's gradient, or null when it has none.
Napi::Value Grad(const Napi::CallbackInfo& info) {
  return Guard(info, "grad", [&]() -> Napi::Value {
    return Wrap(info.Env(), ArgTensor(info, 0, "grad", "tensor").grad());
  });
}

// setGrad(t, g | null)
Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  return Guard(info, "setGrad", [&]() -> Napi::Value {
    at::Tensor& tensor = ArgTensor(info, 0, "setGrad", "tensor");
    c10::optional<at::Tensor> grad = ArgOptionalTensor(info, 1, "setGrad", "grad");
    if (grad) tensor.mutable_grad() = *grad;
    else tensor.mutable_grad().reset();
    return info.Env().Undefined();
  });
}

// zeroGrads(tensors[], setToNone): zeroes or clears the gradient of each tensor.
Napi::Value ZeroGrads(const Napi::CallbackInfo& info) {
  return Guard(info, "zeroGrads", [&]() -> Napi::Value {
    bool setToNone = ArgBool(info, 1, "zeroGrads", "setToNone");
    for (at::Tensor& tensor : ArgTensorList(info, 0, "zeroGrads", "tensors")) {
      at::Tensor& grad = tensor.mutable_grad();
      if (!grad.defined()) continue;
      if (setToNone) {
        grad.reset();
      } else {
        grad = grad.detach();
        grad.zero_();
      }
    }
    return info.Env().Undefined();
  });
}

// backward(t, grad | null, retainGraph)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  return Guard(info, "backward", [&]() -> Napi::Value {
    at::Tensor& tensor = ArgTensor(info, 0, "backward", "tensor");
    c10::optional<at::Tensor> grad = ArgOptionalTensor(info, 1, "backward", "gradient");
    bool retain = info.Length() > 2 && info[2].IsBoolean() && ArgBool(info, 2, "backward", "retainGraph");
    tensor.backward(grad.value_or(at::Tensor()), retain);
    return info.Env().Undefined();
  });
}

// clipGradNorm(tensors[], maxNorm, normType) returns the total norm before clipping.
Napi::Value ClipGradNorm(const Napi::CallbackInfo& info) {
  return Guard(info, "clipGradNorm", [&]() -> Napi::Value {
    std::vector<at::Tensor> tensors = ArgTensorList(info, 0, "clipGradNorm", "tensors");
    double maxNorm = ArgDouble(info, 1, "clipGradNorm", "maxNorm");
    double normType = info.Length() > 2 && info[2].IsNumber() ? ArgDouble(info, 2, "clipGradNorm", "normType") : 2.0;
    double total = torch::nn::utils::clip_grad_norm_(tensors, maxNorm, normType);
    return Napi::Number::New(info.Env(), total);
  });
}

Napi::Function ArgCallback(const Napi::CallbackInfo& info, size_t index, const char* op) {
  if (index >= info.Length() || !info[index].IsFunction()) {
    ThrowTypeError(info.Env(), std::string(op) + ": argument 'fn' must be a function");
  }
  return info[index].As<Napi::Function>();
}

// withGradMode(enabled, fn)
Napi::Value WithGradMode(const Napi::CallbackInfo& info) {
  bool enabled = ArgBool(info, 0, "withGradMode", "enabled");
  Napi::Function fn = ArgCallback(info, 1, "withGradMode");
  at::AutoGradMode guard(enabled);
  return fn.Call({});
}

// withInferenceMode(fn)
Napi::Value WithInferenceMode(const Napi::CallbackInfo& info) {
  Napi::Function fn = ArgCallback(info, 0, "withInferenceMode");
  c10::InferenceMode guard(true);
  return fn.Call({});
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

Napi::Value IsInferenceMode(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::InferenceMode::is_enabled());
}

// Restores the autocast state of one device type when the scope ends.
class AutocastScope {
 public:
  AutocastScope(bool cuda, bool enabled, at::ScalarType dtype) : cuda_(cuda) {
    if (cuda_) {
      previousEnabled_ = at::autocast::is_enabled();
      previousDtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_enabled(enabled);
      at::autocast::set_autocast_gpu_dtype(dtype);
    } else {
      previousEnabled_ = at::autocast::is_cpu_enabled();
      previousDtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_cpu_enabled(enabled);
      at::autocast::set_autocast_cpu_dtype(dtype);
    }
    at::autocast::increment_nesting();
  }

  ~AutocastScope() {
    // The cast-weight cache lives as long as the outermost autocast scope, as in PyTorch.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cuda_) {
      at::autocast::set_enabled(previousEnabled_);
      at::autocast::set_autocast_gpu_dtype(previousDtype_);
    } else {
      at::autocast::set_cpu_enabled(previousEnabled_);
      at::autocast::set_autocast_cpu_dtype(previousDtype_);
    }
  }

 private:
  bool cuda_;
  bool previousEnabled_;
  at::ScalarType previousDtype_;
};

// withAutocast(deviceType: "cpu" | "cuda", dtype, enabled, fn)
Napi::Value WithAutocast(const Napi::CallbackInfo& info) {
  std::string deviceType = ArgString(info, 0, "withAutocast", "deviceType");
  if (deviceType != "cpu" && deviceType != "cuda") {
    ThrowTypeError(info.Env(), "withAutocast: argument 'deviceType' must be 'cpu' or 'cuda', received '" + deviceType + "'");
  }
  at::ScalarType dtype = ArgDtype(info, 1, "withAutocast");
  bool enabled = ArgBool(info, 2, "withAutocast", "enabled");
  Napi::Function fn = ArgCallback(info, 3, "withAutocast");
  AutocastScope scope(deviceType == "cuda", enabled, dtype);
  return fn.Call({});
}

Napi::Value IsAutocastEnabled(const Napi::CallbackInfo& info) {
  std::string deviceType = ArgString(info, 0, "isAutocastEnabled", "deviceType");
  return Napi::Boolean::New(info.Env(), deviceType == "cuda" ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled());
}

}  // namespace

void RegisterAutograd(Napi::Env env, Napi::Object exports) {
  exports.Set("requiresGrad_", Napi::Function::New(env, RequiresGrad_, "requiresGrad_"));
  exports.Set("requiresGrad", Napi::Function::New(env, RequiresGrad, "requiresGrad"));
  exports.Set("isLeaf", Napi::Function::New(env, IsLeaf, "isLeaf"));
  exports.Set("retainGrad", Napi::Function::New(env, RetainGrad, "retainGrad"));
  exports.Set("grad", Napi::Function::New(env, Grad, "grad"));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad, "setGrad"));
  exports.Set("zeroGrads", Napi::Function::New(env, ZeroGrads, "zeroGrads"));
  exports.Set("backward", Napi::Function::New(env, Backward, "backward"));
  exports.Set("clipGradNorm", Napi::Function::New(env, ClipGradNorm, "clipGradNorm"));
  exports.Set("withGradMode", Napi::Function::New(env, WithGradMode, "withGradMode"));
  exports.Set("withInferenceMode", Napi::Function::New(env, WithInferenceMode, "withInferenceMode"));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled, "isGradEnabled"));
  exports.Set("isInferenceMode", Napi::Function::New(env, IsInferenceMode, "isInferenceMode"));
  exports.Set("withAutocast", Napi::Function::New(env, WithAutocast, "withAutocast"));
  exports.Set("isAutocastEnabled", Napi::Function::New(env, IsAutocastEnabled, "isAutocastEnabled"));
}

}  // namespace cdpo
