// Tensor handles, argument parsing, creation, data transfer and runtime settings.
#include "common.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>

#include <cmath>
#include <cstring>
#include <stdexcept>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace cdpo {

std::atomic<int64_t> gLiveTensors{0};

namespace {

// Distinguishes cdpo's generator handles from any other External.
const napi_type_tag kGeneratorTag = {0x6364706f67656e65ULL, 0x7261746f72303031ULL};

Napi::FunctionReference* gErrorClass = nullptr;

// The handle table. A handle is `generation * kSlots + index`: 24 bits of index and up to 29 bits
// of generation, so every handle is an integer that a double represents exactly. Each JavaScript
// thread (main thread or worker) has its own table, so no lock is needed.
constexpr double kSlots = 16777216.0;  // 2^24
constexpr uint32_t kMaxGeneration = 1u << 29;
constexpr int64_t kReportThreshold = 1 << 16;  // smaller tensors are not reported to V8

struct Slot {
  at::Tensor tensor;
  uint32_t generation = 0;
  int64_t reportedBytes = 0;
};

thread_local std::vector<Slot> tSlots;
thread_local std::vector<uint32_t> tFree;

// Returns the slot of a live handle, nullptr otherwise; `stale` is set when the handle was valid
// once but its tensor has been disposed.
Slot* Lookup(const Napi::Value& value, bool* stale) {
  if (stale != nullptr) *stale = false;
  if (!value.IsNumber()) return nullptr;
  double handle = value.As<Napi::Number>().DoubleValue();
  if (!(handle >= 0) || handle >= kSlots * kMaxGeneration || handle != std::floor(handle)) return nullptr;
  double generation = std::floor(handle / kSlots);
  auto index = static_cast<size_t>(handle - generation * kSlots);
  if (index >= tSlots.size()) return nullptr;
  Slot& slot = tSlots[index];
  if (slot.generation != static_cast<uint32_t>(generation) || !slot.tensor.defined()) {
    if (stale != nullptr) *stale = slot.generation > static_cast<uint32_t>(generation) || !slot.tensor.defined();
    return nullptr;
  }
  return &slot;
}

void Release(Napi::Env env, Slot& slot, uint32_t index) {
  slot.tensor.reset();
  slot.generation = (slot.generation + 1) % kMaxGeneration;
  if (slot.reportedBytes != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -slot.reportedBytes);
    slot.reportedBytes = 0;
  }
  tFree.push_back(index);
  gLiveTensors--;
}

std::string Where(const char* op, const char* arg) {
  return std::string(op) + ": argument '" + arg + "'";
}

}  // namespace

void SetErrorClass(Napi::Function cdpoErrorClass) {
  if (gErrorClass == nullptr) gErrorClass = new Napi::FunctionReference();
  *gErrorClass = Napi::Persistent(cdpoErrorClass);
}

void ThrowTypeError(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

void ThrowTorchError(Napi::Env env, const char* op, const std::string& message) {
  // libtorch messages sometimes end with a newline and a hint; keep them whole but trimmed.
  std::string text = message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  std::string full = std::string(op) + ": " + text;
  if (gErrorClass != nullptr && !gErrorClass->IsEmpty()) {
    Napi::Object error =
        gErrorClass->New({Napi::String::New(env, "TORCH"), Napi::String::New(env, full)});
    throw Napi::Error(env, error);
  }
  throw Napi::Error::New(env, full);
}

Napi::Value Wrap(Napi::Env env, at::Tensor tensor) {
  if (!tensor.defined()) return env.Null();
  uint32_t index;
  if (!tFree.empty()) {
    index = tFree.back();
    tFree.pop_back();
  } else {
    if (tSlots.size() >= static_cast<size_t>(kSlots)) {
      throw std::runtime_error("too many live tensors (16,777,216); dispose tensors that are no longer used");
    }
    index = static_cast<uint32_t>(tSlots.size());
    tSlots.emplace_back();
  }
  Slot& slot = tSlots[index];
  slot.tensor = std::move(tensor);
  // Views share storage with their base, so only a tensor that owns its storage reports it, and
  // only when it is large enough to matter to the garbage collector's heuristics.
  if (!slot.tensor.is_sparse() && slot.tensor.has_storage() && !slot.tensor.is_view()) {
    auto bytes = static_cast<int64_t>(slot.tensor.storage().nbytes());
    if (bytes >= kReportThreshold) {
      slot.reportedBytes = bytes;
      Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
    }
  }
  gLiveTensors++;
  return Napi::Number::New(env, static_cast<double>(slot.generation) * kSlots + index);
}

Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& tensors) {
  Napi::Array list = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); i++) list.Set(i, Wrap(env, tensors[i]));
  return list;
}

bool IsTensor(const Napi::Value& value) { return Lookup(value, nullptr) != nullptr; }

at::Tensor* TensorFromValue(const Napi::Value& value) {
  Slot* slot = Lookup(value, nullptr);
  return slot == nullptr ? nullptr : &slot->tensor;
}

at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t index, const char* op,
                      const char* arg) {
  bool stale = false;
  Slot* slot = index < info.Length() ? Lookup(info[index], &stale) : nullptr;
  if (slot == nullptr) {
    if (stale) ThrowTorchError(info.Env(), op, std::string("argument '") + arg + "' was already disposed");
    ThrowTypeError(info.Env(), Where(op, arg) + " must be a tensor handle");
  }
  return slot->tensor;
}

c10::optional<at::Tensor> ArgOptionalTensor(const Napi::CallbackInfo& info, size_t index,
                                            const char* op, const char* arg) {
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) {
    return c10::nullopt;
  }
  return ArgTensor(info, index, op, arg);
}

std::vector<at::Tensor> ArgTensorList(const Napi::CallbackInfo& info, size_t index,
                                      const char* op, const char* arg) {
  if (index >= info.Length() || !info[index].IsArray()) {
    ThrowTypeError(info.Env(), Where(op, arg) + " must be an array of tensor handles");
  }
  Napi::Array list = info[index].As<Napi::Array>();
  std::vector<at::Tensor> tensors;
  tensors.reserve(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    at::Tensor* tensor = TensorFromValue(list.Get(i));
    if (tensor == nullptr) {
      ThrowTypeError(info.Env(), Where(op, arg) + " element " + std::to_string(i) +
                                     " must be a live tensor handle");
    }
    tensors.push_back(*tensor);
  }
  return tensors;
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t index, const char* op, const char* arg) {
  if (index >= info.Length() || !info[index].IsNumber()) {
    ThrowTypeError(info.Env(), Where(op, arg) + " must be an integer");
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (value != static_cast<double>(static_cast<int64_t>(value))) {
    ThrowTypeError(info.Env(), Where(op, arg) + " must be an integer, received " +
                                   std::to_string(value));
  }
  return static_cast<int64_t>(value);
}

c10::optional<int64_t> ArgOptionalInt(const Napi::CallbackInfo& info, size_t index,
                                      const char* op, const char* arg) {
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) {
    return c10::nullopt;
  }
  return ArgInt(info, index, op, arg);
}

double ArgDouble(const Napi::CallbackInfo& info, size_t index, const char* op, const char* arg) {
  if (index >= info.Length() || !info[index].IsNumber()) {
    ThrowTypeError(info.Env(), Where(op, arg) + " must be a number");
  }
  return info[index].As<Napi::Number>().DoubleValue();
}

bool ArgBool(const Napi::CallbackInfo& info, size_t index, const char* op, const char* arg) {
  if (index >= info.Length() || !info[index].IsBoolean()) {
    ThrowTypeError(info.Env(), Where(op, arg) + " must be a boolean");
  }
  return info[index].As<Napi::Boolean>().Value();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t index, const char* op,
                      const char* arg) {
  if (index >= info.Length() || !info[index].IsString()) {
    ThrowTypeError(info.Env(), Where(op, arg) + " must be a string");
  }
  return info[index].As<Napi::String>().Utf8Value();
}

std::vector<int64_t> ArgInts(const Napi::CallbackInfo& info, size_t index, const char* op,
                             const char* arg) {
  if (index >= info.Length() || !info[index].IsArray()) {
    ThrowTypeError(info.Env(), Where(op, arg) + " must be an array of integers");
  }
  Napi::Array list = info[index].As<Napi::Array>();
  std::vector<int64_t> values(list.Length());
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value item = list.Get(i);
    double value = item.IsNumber() ? item.As<Napi::Number>().DoubleValue() : 0.5;
    if (value != static_cast<double>(static_cast<int64_t>(value))) {
      ThrowTypeError(info.Env(), Where(op, arg) + " element " + std::to_string(i) +
                                     " must be an integer");
    }
    values[i] = static_cast<int64_t>(value);
  }
  return values;
}

c10::optional<std::vector<int64_t>> ArgOptionalInts(const Napi::CallbackInfo& info, size_t index,
                                                    const char* op, const char* arg) {
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) {
    return c10::nullopt;
  }
  return ArgInts(info, index, op, arg);
}

at::Scalar ArgScalar(const Napi::CallbackInfo& info, size_t index, const char* op,
                     const char* arg) {
  if (index < info.Length() && info[index].IsBoolean()) {
    return at::Scalar(info[index].As<Napi::Boolean>().Value());
  }
  double value = ArgDouble(info, index, op, arg);
  // Integral values stay integral so that integer tensors keep their dtype.
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9.0e15) {
    return at::Scalar(static_cast<int64_t>(value));
  }
  return at::Scalar(value);
}

at::ScalarType ParseDtypeName(Napi::Env env, const std::string& name, const char* op) {
  if (name == "float32") return at::kFloat;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float64") return at::kDouble;
  if (name == "int64") return at::kLong;
  if (name == "int32") return at::kInt;
  if (name == "int16") return at::kShort;
  if (name == "int8") return at::kChar;
  if (name == "uint8") return at::kByte;
  if (name == "bool") return at::kBool;
  ThrowTypeError(env, std::string(op) + ": unknown dtype '" + name +
                          "', expected one of float32, float16, bfloat16, float64, int64, int32, "
                          "int16, int8, uint8, bool");
}

at::ScalarType ArgDtype(const Napi::CallbackInfo& info, size_t index, const char* op) {
  return ParseDtypeName(info.Env(), ArgString(info, index, op, "dtype"), op);
}

c10::optional<at::ScalarType> ArgOptionalDtype(const Napi::CallbackInfo& info, size_t index,
                                               const char* op) {
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) {
    return c10::nullopt;
  }
  return ArgDtype(info, index, op);
}

at::Device ArgDevice(const Napi::CallbackInfo& info, size_t index, const char* op) {
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) {
    return at::Device(at::kCPU);
  }
  std::string name = ArgString(info, index, op, "device");
  if (name != "cpu" && name.rfind("cuda", 0) != 0) {
    ThrowTypeError(info.Env(), std::string(op) + ": unknown device '" + name +
                                   "', expected 'cpu', 'cuda' or 'cuda:N'");
  }
  return at::Device(name);  // c10 validates the index and raises a c10::Error otherwise
}

c10::optional<at::Generator> ArgOptionalGenerator(const Napi::CallbackInfo& info, size_t index,
                                                  const char* op) {
  if (index >= info.Length() || info[index].IsNull() || info[index].IsUndefined()) {
    return c10::nullopt;
  }
  if (!info[index].IsExternal()) {
    ThrowTypeError(info.Env(), Where(op, "generator") + " must be a generator handle");
  }
  auto external = info[index].As<Napi::External<at::Generator>>();
  if (!external.CheckTypeTag(&kGeneratorTag)) {
    ThrowTypeError(info.Env(), Where(op, "generator") + " must be a generator handle");
  }
  return *external.Data();
}

const char* DtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return "unsupported";
  }
}

std::string DeviceName(const at::Device& device) { return device.str(); }

namespace {

at::TensorOptions Options(at::ScalarType dtype, at::Device device) {
  return at::TensorOptions().dtype(dtype).device(device);
}

// fromBytes(bytes: ArrayBufferView, dtype, shape, device?) copies raw little-endian element bytes.
Napi::Value FromBytes(const Napi::CallbackInfo& info) {
  return Guard(info, "fromBytes", [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsTypedArray()) {
      ThrowTypeError(info.Env(), "fromBytes: argument 'bytes' must be a typed array");
    }
    Napi::TypedArray view = info[0].As<Napi::TypedArray>();
    at::ScalarType dtype = ArgDtype(info, 1, "fromBytes");
    std::vector<int64_t> shape = ArgInts(info, 2, "fromBytes", "shape");
    at::Device device = ArgDevice(info, 3, "fromBytes");
    int64_t numel = 1;
    for (int64_t size : shape) {
      if (size < 0) ThrowTypeError(info.Env(), "fromBytes: shape sizes must be >= 0");
      numel *= size;
    }
    size_t expected = static_cast<size_t>(numel) * c10::elementSize(dtype);
    size_t received = view.ByteLength();
    if (expected != received) {
      ThrowTorchError(info.Env(), "fromBytes",
                      "shape and dtype need " + std::to_string(expected) + " bytes but " +
                          std::to_string(received) + " were given");
    }
    at::Tensor tensor = at::empty(shape, Options(dtype, at::kCPU));
    if (expected > 0) {
      auto* source = static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
      std::memcpy(tensor.data_ptr(), source, expected);
    }
    if (!device.is_cpu()) tensor = tensor.to(device);
    return Wrap(info.Env(), tensor);
  });
}

// toBytes(t) returns a Buffer with the tensor's elements, contiguous, on the CPU.
Napi::Value ToBytes(const Napi::CallbackInfo& info) {
  return Guard(info, "toBytes", [&]() -> Napi::Value {
    at::Tensor tensor = ArgTensor(info, 0, "toBytes", "tensor").detach();
    if (!tensor.device().is_cpu()) tensor = tensor.cpu();
    tensor = tensor.contiguous();
    size_t bytes = tensor.numel() * tensor.element_size();
    Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::New(info.Env(), bytes);
    if (bytes > 0) std::memcpy(buffer.Data(), tensor.data_ptr(), bytes);
    return buffer;
  });
}

Napi::Value Item(const Napi::CallbackInfo& info) {
  return Guard(info, "item", [&]() -> Napi::Value {
    at::Tensor& tensor = ArgTensor(info, 0, "item", "tensor");
    at::Scalar value = tensor.item();
    if (value.isBoolean()) return Napi::Boolean::New(info.Env(), value.toBool());
    return Napi::Number::New(info.Env(), value.toDouble());
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  return Guard(info, "info", [&]() -> Napi::Value {
    at::Tensor& tensor = ArgTensor(info, 0, "info", "tensor");
    Napi::Object result = Napi::Object::New(info.Env());
    Napi::Array shape = Napi::Array::New(info.Env(), tensor.dim());
    for (int64_t i = 0; i < tensor.dim(); i++) shape.Set(i, Napi::Number::New(info.Env(), tensor.size(i)));
    result.Set("shape", shape);
    result.Set("dtype", DtypeName(tensor.scalar_type()));
    result.Set("device", DeviceName(tensor.device()));
    result.Set("requiresGrad", tensor.requires_grad());
    return result;
  });
}

Napi::Value Shape(const Napi::CallbackInfo& info) {
  return Guard(info, "shape", [&]() -> Napi::Value {
    at::Tensor& tensor = ArgTensor(info, 0, "shape", "tensor");
    Napi::Array shape = Napi::Array::New(info.Env(), tensor.dim());
    for (int64_t i = 0; i < tensor.dim(); i++) shape.Set(i, Napi::Number::New(info.Env(), tensor.size(i)));
    return shape;
  });
}

Napi::Value Dtype(const Napi::CallbackInfo& info) {
  return Guard(info, "dtype", [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), DtypeName(ArgTensor(info, 0, "dtype", "tensor").scalar_type()));
  });
}

Napi::Value DeviceOf(const Napi::CallbackInfo& info) {
  return Guard(info, "device", [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), DeviceName(ArgTensor(info, 0, "device", "tensor").device()));
  });
}

// dispose(handle) frees the tensor; disposing a handle twice is a no-op.
Napi::Value Dispose(const Napi::CallbackInfo& info) {
  bool stale = false;
  Slot* slot = info.Length() > 0 ? Lookup(info[0], &stale) : nullptr;
  if (slot == nullptr) {
    if (stale) return info.Env().Undefined();
    ThrowTypeError(info.Env(), "dispose: argument 'tensor' must be a tensor handle");
  }
  Release(info.Env(), *slot, static_cast<uint32_t>(slot - tSlots.data()));
  return info.Env().Undefined();
}

Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  bool stale = false;
  Slot* slot = info.Length() > 0 ? Lookup(info[0], &stale) : nullptr;
  if (slot == nullptr && !stale) ThrowTypeError(info.Env(), "isDisposed: argument 'tensor' must be a tensor handle");
  return Napi::Boolean::New(info.Env(), slot == nullptr);
}

Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(gLiveTensors.load()));
}

// --- creation -------------------------------------------------------------------------------

Napi::Value Zeros(const Napi::CallbackInfo& info) {
  return Guard(info, "zeros", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::zeros(ArgInts(info, 0, "zeros", "shape"),
                                      Options(ArgDtype(info, 1, "zeros"), ArgDevice(info, 2, "zeros"))));
  });
}

Napi::Value Ones(const Napi::CallbackInfo& info) {
  return Guard(info, "ones", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::ones(ArgInts(info, 0, "ones", "shape"),
                                     Options(ArgDtype(info, 1, "ones"), ArgDevice(info, 2, "ones"))));
  });
}

Napi::Value Empty(const Napi::CallbackInfo& info) {
  return Guard(info, "empty", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::empty(ArgInts(info, 0, "empty", "shape"),
                                      Options(ArgDtype(info, 1, "empty"), ArgDevice(info, 2, "empty"))));
  });
}

Napi::Value Full(const Napi::CallbackInfo& info) {
  return Guard(info, "full", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::full(ArgInts(info, 0, "full", "shape"), ArgScalar(info, 1, "full", "value"),
                                     Options(ArgDtype(info, 2, "full"), ArgDevice(info, 3, "full"))));
  });
}

Napi::Value Arange(const Napi::CallbackInfo& info) {
  return Guard(info, "arange", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::arange(ArgScalar(info, 0, "arange", "start"), ArgScalar(info, 1, "arange", "end"),
                                       ArgScalar(info, 2, "arange", "step"),
                                       Options(ArgDtype(info, 3, "arange"), ArgDevice(info, 4, "arange"))));
  });
}

// randn/rand(shape, dtype, device, generator?)
Napi::Value Randn(const Napi::CallbackInfo& info) {
  return Guard(info, "randn", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::randn(ArgInts(info, 0, "randn", "shape"), ArgOptionalGenerator(info, 3, "randn"),
                                      Options(ArgDtype(info, 1, "randn"), ArgDevice(info, 2, "randn"))));
  });
}

Napi::Value Rand(const Napi::CallbackInfo& info) {
  return Guard(info, "rand", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::rand(ArgInts(info, 0, "rand", "shape"), ArgOptionalGenerator(info, 3, "rand"),
                                     Options(ArgDtype(info, 1, "rand"), ArgDevice(info, 2, "rand"))));
  });
}

// randint(low, high, shape, dtype, device, generator?)
Napi::Value Randint(const Napi::CallbackInfo& info) {
  return Guard(info, "randint", [&]() -> Napi::Value {
    return Wrap(info.Env(),
                at::randint(ArgInt(info, 0, "randint", "low"), ArgInt(info, 1, "randint", "high"),
                            ArgInts(info, 2, "randint", "shape"), ArgOptionalGenerator(info, 5, "randint"),
                            Options(ArgDtype(info, 3, "randint"), ArgDevice(info, 4, "randint"))));
  });
}

// --- conversion -----------------------------------------------------------------------------

// to(t, dtype | null, device | null)
Napi::Value To(const Napi::CallbackInfo& info) {
  return Guard(info, "to", [&]() -> Napi::Value {
    at::Tensor& tensor = ArgTensor(info, 0, "to", "tensor");
    c10::optional<at::ScalarType> dtype = ArgOptionalDtype(info, 1, "to");
    at::Device device = (info.Length() > 2 && info[2].IsString()) ? ArgDevice(info, 2, "to") : tensor.device();
    return Wrap(info.Env(), tensor.to(device, dtype.value_or(tensor.scalar_type())));
  });
}

Napi::Value Contiguous(const Napi::CallbackInfo& info) {
  return Guard(info, "contiguous", [&]() -> Napi::Value {
    return Wrap(info.Env(), ArgTensor(info, 0, "contiguous", "tensor").contiguous());
  });
}

Napi::Value Clone(const Napi::CallbackInfo& info) {
  return Guard(info, "clone", [&]() -> Napi::Value {
    return Wrap(info.Env(), ArgTensor(info, 0, "clone", "tensor").clone());
  });
}

// --- generators and runtime -----------------------------------------------------------------

Napi::Value CreateGenerator(const Napi::CallbackInfo& info) {
  return Guard(info, "createGenerator", [&]() -> Napi::Value {
    int64_t seed = ArgInt(info, 0, "createGenerator", "seed");
    auto* generator = new at::Generator(at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed)));
    auto external = Napi::External<at::Generator>::New(
        info.Env(), generator, [](Napi::Env, at::Generator* g) { delete g; });
    external.TypeTag(&kGeneratorTag);
    return external;
  });
}

// generatorState(gen | null) returns the state as a uint8 tensor; null means the default generator.
Napi::Value GeneratorState(const Napi::CallbackInfo& info) {
  return Guard(info, "generatorState", [&]() -> Napi::Value {
    c10::optional<at::Generator> generator = ArgOptionalGenerator(info, 0, "generatorState");
    at::Generator target = generator ? *generator : at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(target.mutex());
    return Wrap(info.Env(), target.get_state());
  });
}

Napi::Value SetGeneratorState(const Napi::CallbackInfo& info) {
  return Guard(info, "setGeneratorState", [&]() -> Napi::Value {
    c10::optional<at::Generator> generator = ArgOptionalGenerator(info, 0, "setGeneratorState");
    at::Tensor& state = ArgTensor(info, 1, "setGeneratorState", "state");
    at::Generator target = generator ? *generator : at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(target.mutex());
    target.set_state(state);
    return info.Env().Undefined();
  });
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  return Guard(info, "manualSeed", [&]() -> Napi::Value {
    int64_t seed = ArgInt(info, 0, "manualSeed", "seed");
    at::manual_seed(static_cast<uint64_t>(seed));
    return info.Env().Undefined();
  });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return Guard(info, "setNumThreads", [&]() -> Napi::Value {
    int64_t threads = ArgInt(info, 0, "setNumThreads", "threads");
    if (threads < 1) ThrowTypeError(info.Env(), "setNumThreads: argument 'threads' must be >= 1");
    at::set_num_threads(static_cast<int>(threads));
    return info.Env().Undefined();
  });
}

// setMallocThresholds(mmapBytes, trimBytes): glibc's mallopt(M_MMAP_THRESHOLD) and
// mallopt(M_TRIM_THRESHOLD). Returns false where the C library is not glibc (nothing changed).
Napi::Value SetMallocThresholds(const Napi::CallbackInfo& info) {
  return Guard(info, "setMallocThresholds", [&]() -> Napi::Value {
    int64_t mmapBytes = ArgInt(info, 0, "setMallocThresholds", "mmapBytes");
    int64_t trimBytes = ArgInt(info, 1, "setMallocThresholds", "trimBytes");
    if (mmapBytes < 0 || mmapBytes > (int64_t{1} << 30) || trimBytes < 0 ||
        trimBytes > (int64_t{1} << 31) - 1) {
      ThrowTypeError(info.Env(),
                     "setMallocThresholds: arguments must be in [0, 2^30] and [0, 2^31 - 1] bytes");
    }
#if defined(__GLIBC__)
    bool ok = mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmapBytes)) == 1 &&
              mallopt(M_TRIM_THRESHOLD, static_cast<int>(trimBytes)) == 1;
    return Napi::Boolean::New(info.Env(), ok);
#else
    return Napi::Boolean::New(info.Env(), false);
#endif
  });
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Guard(info, "cudaDeviceCount", [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), at::hasCUDA() ? static_cast<double>(at::detail::getCUDAHooks().getNumGPUs()) : 0);
  });
}

Napi::Value Versions(const Napi::CallbackInfo& info) {
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("libtorch", TORCH_VERSION);
  result.Set("cuda", at::hasCUDA());
  result.Set("parallel", at::get_parallel_info());
  result.Set("cpuCapability", at::globalContext().hasMKLDNN() ? "mkldnn" : "default");
  return result;
}

Napi::Value SetErrorClassFn(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    ThrowTypeError(info.Env(), "setErrorClass: argument must be a constructor");
  }
  SetErrorClass(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

void RegisterTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBytes", Napi::Function::New(env, FromBytes, "fromBytes"));
  exports.Set("toBytes", Napi::Function::New(env, ToBytes, "toBytes"));
  exports.Set("item", Napi::Function::New(env, Item, "item"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  exports.Set("shape", Napi::Function::New(env, Shape, "shape"));
  exports.Set("dtype", Napi::Function::New(env, Dtype, "dtype"));
  exports.Set("device", Napi::Function::New(env, DeviceOf, "device"));
  exports.Set("dispose", Napi::Function::New(env, Dispose, "dispose"));
  exports.Set("isDisposed", Napi::Function::New(env, IsDisposed, "isDisposed"));
  exports.Set("liveTensors", Napi::Function::New(env, LiveTensors, "liveTensors"));
  exports.Set("zeros", Napi::Function::New(env, Zeros, "zeros"));
  exports.Set("ones", Napi::Function::New(env, Ones, "ones"));
  exports.Set("empty", Napi::Function::New(env, Empty, "empty"));
  exports.Set("full", Napi::Function::New(env, Full, "full"));
  exports.Set("arange", Napi::Function::New(env, Arange, "arange"));
  exports.Set("randn", Napi::Function::New(env, Randn, "randn"));
  exports.Set("rand", Napi::Function::New(env, Rand, "rand"));
  exports.Set("randint", Napi::Function::New(env, Randint, "randint"));
  exports.Set("to", Napi::Function::New(env, To, "to"));
  exports.Set("contiguous", Napi::Function::New(env, Contiguous, "contiguous"));
  exports.Set("clone", Napi::Function::New(env, Clone, "clone"));
  exports.Set("createGenerator", Napi::Function::New(env, CreateGenerator, "createGenerator"));
  exports.Set("generatorState", Napi::Function::New(env, GeneratorState, "generatorState"));
  exports.Set("setGeneratorState", Napi::Function::New(env, SetGeneratorState, "setGeneratorState"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed, "manualSeed"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads, "getNumThreads"));
  exports.Set("setMallocThresholds",
              Napi::Function::New(env, SetMallocThresholds, "setMallocThresholds"));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount, "cudaDeviceCount"));
  exports.Set("versions", Napi::Function::New(env, Versions, "versions"));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClassFn, "setErrorClass"));
}

}  // namespace cdpo

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  cdpo::RegisterTensor(env, exports);
  cdpo::RegisterOps(env, exports);
  cdpo::RegisterAutograd(env, exports);
  cdpo::RegisterOptim(env, exports);
  return exports;
}

NODE_API_MODULE(cdpo, Init)
