// Optimizers: libtorch's own AdamW and SGD behind one small JavaScript class.
//
// new Optimizer(kind: "adamw" | "sgd", groups: {params, lr, weightDecay}[], options)
//   options (all optional): betas [b1, b2], eps, amsgrad (AdamW); momentum, dampening, nesterov (SGD)
// step(), zeroGrad(setToNone), setLr(lr, group | null), getLr(group), stateDict() -> Buffer,
// loadStateDict(Buffer). The state buffer is libtorch's own archive format for the optimizer, and
// restoring it needs the same parameter groups in the same order.
#include "common.h"

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>

#include <sstream>

namespace cdpo {
namespace {

double NumberOption(const Napi::Object& options, const char* key, double fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (!value.IsNumber()) {
    throw Napi::TypeError::New(options.Env(), std::string("Optimizer: option '") + key + "' must be a number");
  }
  return value.As<Napi::Number>().DoubleValue();
}

bool BoolOption(const Napi::Object& options, const char* key, bool fallback) {
  Napi::Value value = options.Get(key);
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (!value.IsBoolean()) {
    throw Napi::TypeError::New(options.Env(), std::string("Optimizer: option '") + key + "' must be a boolean");
  }
  return value.As<Napi::Boolean>().Value();
}

class Optimizer : public Napi::ObjectWrap<Optimizer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Optimizer",
                       {InstanceMethod("step", &Optimizer::Step),
                        InstanceMethod("zeroGrad", &Optimizer::ZeroGrad),
                        InstanceMethod("setLr", &Optimizer::SetLr),
                        InstanceMethod("getLr", &Optimizer::GetLr),
                        InstanceMethod("stateDict", &Optimizer::StateDict),
                        InstanceMethod("loadStateDict", &Optimizer::LoadStateDict)});
  }

  explicit Optimizer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Optimizer>(info) {
    Guard(info, "Optimizer", [&]() -> Napi::Value {
      kind_ = ArgString(info, 0, "Optimizer", "kind");
      if (kind_ != "adamw" && kind_ != "sgd") {
        ThrowTypeError(info.Env(), "Optimizer: argument 'kind' must be 'adamw' or 'sgd', received '" + kind_ + "'");
      }
      if (info.Length() < 2 || !info[1].IsArray()) ThrowTypeError(info.Env(), "Optimizer: argument 'groups' must be an array");
      Napi::Object options = info.Length() > 2 && info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(info.Env());
      Napi::Array groups = info[1].As<Napi::Array>();

      double beta1 = 0.9, beta2 = 0.999;
      Napi::Value betas = options.Get("betas");
      if (betas.IsArray() && betas.As<Napi::Array>().Length() == 2) {
        beta1 = betas.As<Napi::Array>().Get(0u).As<Napi::Number>().DoubleValue();
        beta2 = betas.As<Napi::Array>().Get(1u).As<Napi::Number>().DoubleValue();
      }
      double eps = NumberOption(options, "eps", 1e-8);
      bool amsgrad = BoolOption(options, "amsgrad", false);
      double momentum = NumberOption(options, "momentum", 0.0);
      double dampening = NumberOption(options, "dampening", 0.0);
      bool nesterov = BoolOption(options, "nesterov", false);

      std::vector<torch::optim::OptimizerParamGroup> paramGroups;
      for (uint32_t i = 0; i < groups.Length(); i++) {
        if (!groups.Get(i).IsObject()) ThrowTypeError(info.Env(), "Optimizer: each group must be an object");
        Napi::Object group = groups.Get(i).As<Napi::Object>();
        std::vector<at::Tensor> params;
        Napi::Value list = group.Get("params");
        if (!list.IsArray()) ThrowTypeError(info.Env(), "Optimizer: group " + std::to_string(i) + " needs a 'params' array");
        for (uint32_t j = 0; j < list.As<Napi::Array>().Length(); j++) {
          Napi::Value item = list.As<Napi::Array>().Get(j);
          at::Tensor* tensor = TensorFromValue(item);
          if (tensor == nullptr) ThrowTypeError(info.Env(), "Optimizer: group " + std::to_string(i) + " param " + std::to_string(j) + " must be a live tensor handle");
          params.push_back(*tensor);
        }
        double lr = NumberOption(group, "lr", 1e-3);
        double weightDecay = NumberOption(group, "weightDecay", kind_ == "adamw" ? 0.01 : 0.0);
        if (kind_ == "adamw") {
          auto groupOptions = std::make_unique<torch::optim::AdamWOptions>(lr);
          groupOptions->betas({beta1, beta2}).eps(eps).weight_decay(weightDecay).amsgrad(amsgrad);
          paramGroups.emplace_back(params, std::move(groupOptions));
        } else {
          auto groupOptions = std::make_unique<torch::optim::SGDOptions>(lr);
          groupOptions->momentum(momentum).dampening(dampening).weight_decay(weightDecay).nesterov(nesterov);
          paramGroups.emplace_back(params, std::move(groupOptions));
        }
      }
      if (kind_ == "adamw") {
        optimizer_ = std::make_unique<torch::optim::AdamW>(paramGroups, torch::optim::AdamWOptions(1e-3));
      } else {
        optimizer_ = std::make_unique<torch::optim::SGD>(paramGroups, torch::optim::SGDOptions(1e-3));
      }
      return info.Env().Undefined();
    });
  }

 private:
  Napi::Value Step(const Napi::CallbackInfo& info) {
    return Guard(info, "Optimizer.step", [&]() -> Napi::Value {
      at::NoGradGuard noGrad;
      optimizer_->step();
      return info.Env().Undefined();
    });
  }

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    return Guard(info, "Optimizer.zeroGrad", [&]() -> Napi::Value {
      bool setToNone = info.Length() > 0 && info[0].IsBoolean() ? ArgBool(info, 0, "Optimizer.zeroGrad", "setToNone") : true;
      for (auto& group : optimizer_->param_groups()) {
        for (auto& param : group.params()) {
          at::Tensor& grad = param.mutable_grad();
          if (!grad.defined()) continue;
          if (setToNone) {
            grad.reset();
          } else {
            grad = grad.detach();
            grad.zero_();
          }
        }
      }
      return info.Env().Undefined();
    });
  }

  torch::optim::OptimizerOptions& GroupOptions(const Napi::CallbackInfo& info, size_t group) {
    auto& groups = optimizer_->param_groups();
    if (group >= groups.size()) {
      ThrowTypeError(info.Env(), "Optimizer: group index " + std::to_string(group) + " is out of range [0, " + std::to_string(groups.size()) + ")");
    }
    return groups[group].options();
  }

  // setLr(lr, group | null): null sets every group.
  Napi::Value SetLr(const Napi::CallbackInfo& info) {
    return Guard(info, "Optimizer.setLr", [&]() -> Napi::Value {
      double lr = ArgDouble(info, 0, "Optimizer.setLr", "lr");
      auto group = ArgOptionalInt(info, 1, "Optimizer.setLr", "group");
      size_t count = optimizer_->param_groups().size();
      for (size_t i = 0; i < count; i++) {
        if (group && static_cast<size_t>(*group) != i) continue;
        GroupOptions(info, i).set_lr(lr);
      }
      if (group) GroupOptions(info, static_cast<size_t>(*group));  // range check
      return info.Env().Undefined();
    });
  }

  Napi::Value GetLr(const Napi::CallbackInfo& info) {
    return Guard(info, "Optimizer.getLr", [&]() -> Napi::Value {
      int64_t group = info.Length() > 0 && info[0].IsNumber() ? ArgInt(info, 0, "Optimizer.getLr", "group") : 0;
      return Napi::Number::New(info.Env(), GroupOptions(info, static_cast<size_t>(group)).get_lr());
    });
  }

  Napi::Value StateDict(const Napi::CallbackInfo& info) {
    return Guard(info, "Optimizer.stateDict", [&]() -> Napi::Value {
      std::ostringstream stream;
      torch::serialize::OutputArchive archive;
      optimizer_->save(archive);
      archive.save_to(stream);
      std::string bytes = stream.str();
      return Napi::Buffer<char>::Copy(info.Env(), bytes.data(), bytes.size());
    });
  }

  Napi::Value LoadStateDict(const Napi::CallbackInfo& info) {
    return Guard(info, "Optimizer.loadStateDict", [&]() -> Napi::Value {
      if (info.Length() < 1 || !info[0].IsBuffer()) ThrowTypeError(info.Env(), "Optimizer.loadStateDict: argument 'state' must be a Buffer");
      auto buffer = info[0].As<Napi::Buffer<char>>();
      std::istringstream stream(std::string(buffer.Data(), buffer.Length()));
      torch::serialize::InputArchive archive;
      archive.load_from(stream);
      optimizer_->load(archive);
      return info.Env().Undefined();
    });
  }

  std::string kind_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

}  // namespace

void RegisterOptim(Napi::Env env, Napi::Object exports) {
  exports.Set("Optimizer", Optimizer::Define(env));
}

}  // namespace cdpo
