// Tensor operations: each entry maps one JavaScript function onto one libtorch call.
//
// Conventions: argument 0 is the input tensor; optional arguments are `null` or absent; lists of
// tensors come back as JavaScript arrays of handles. Argument checking beyond types is left to
// libtorch, whose c10::Error becomes a CdpoError naming the op.
#include "common.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace cdpo {
namespace {

Napi::Env EnvOf(const Napi::CallbackInfo& info) { return info.Env(); }

#define INPUT(op) ArgTensor(info, 0, op, "input")

// Unary ops: f(input).
#define UNARY(NAME, EXPR)                                           \
  Napi::Value Op_##NAME(const Napi::CallbackInfo& info) {           \
    return Guard(info, #NAME, [&]() -> Napi::Value {                \
      at::Tensor& a = INPUT(#NAME);                                 \
      return Wrap(EnvOf(info), EXPR);                               \
    });                                                             \
  }

UNARY(neg, at::neg(a))
UNARY(abs, at::abs(a))
UNARY(exp, at::exp(a))
UNARY(log, at::log(a))
UNARY(log1p, at::log1p(a))
UNARY(sqrt, at::sqrt(a))
UNARY(rsqrt, at::rsqrt(a))
UNARY(square, at::square(a))
UNARY(reciprocal, at::reciprocal(a))
UNARY(tanh, at::tanh(a))
UNARY(sigmoid, at::sigmoid(a))
UNARY(logsigmoid, at::log_sigmoid(a))
UNARY(silu, at::silu(a))
UNARY(relu, at::relu(a))
UNARY(sin, at::sin(a))
UNARY(cos, at::cos(a))
UNARY(erf, at::erf(a))
UNARY(sign, at::sign(a))
UNARY(floor, at::floor(a))
UNARY(ceil, at::ceil(a))
UNARY(round, at::round(a))
UNARY(logicalNot, at::logical_not(a))
UNARY(isnan, at::isnan(a))
UNARY(isfinite, at::isfinite(a))
UNARY(detach, a.detach())
UNARY(nonzero, at::nonzero(a))

// Binary ops: NAME(input, other tensor) and NAMEScalar(input, other number). Handles are numbers
// too, so the caller picks the variant instead of the addon guessing from the value.
#define BINARY(NAME, FN)                                                       \
  Napi::Value Op_##NAME(const Napi::CallbackInfo& info) {                      \
    return Guard(info, #NAME, [&]() -> Napi::Value {                           \
      at::Tensor& a = INPUT(#NAME);                                            \
      return Wrap(EnvOf(info), FN(a, ArgTensor(info, 1, #NAME, "other")));     \
    });                                                                        \
  }                                                                            \
  Napi::Value Op_##NAME##Scalar(const Napi::CallbackInfo& info) {              \
    return Guard(info, #NAME "Scalar", [&]() -> Napi::Value {                  \
      at::Tensor& a = INPUT(#NAME "Scalar");                                   \
      return Wrap(EnvOf(info), FN(a, ArgScalar(info, 1, #NAME "Scalar", "other"))); \
    });                                                                        \
  }

BINARY(add, at::add)
BINARY(sub, at::sub)
BINARY(mul, at::mul)
BINARY(div, at::div)
BINARY(pow, at::pow)
BINARY(remainder, at::remainder)
BINARY(eq, at::eq)
BINARY(ne, at::ne)
BINARY(lt, at::lt)
BINARY(le, at::le)
BINARY(gt, at::gt)
BINARY(ge, at::ge)

// Binary ops on two tensors.
#define BINARY_TENSORS(NAME, EXPR)                                   \
  Napi::Value Op_##NAME(const Napi::CallbackInfo& info) {            \
    return Guard(info, #NAME, [&]() -> Napi::Value {                 \
      at::Tensor& a = INPUT(#NAME);                                  \
      at::Tensor& b = ArgTensor(info, 1, #NAME, "other");            \
      return Wrap(EnvOf(info), EXPR);                                \
    });                                                              \
  }

BINARY_TENSORS(maximum, at::maximum(a, b))
BINARY_TENSORS(minimum, at::minimum(a, b))
BINARY_TENSORS(logicalAnd, at::logical_and(a, b))
BINARY_TENSORS(logicalOr, at::logical_or(a, b))
BINARY_TENSORS(matmul, at::matmul(a, b))
BINARY_TENSORS(mm, at::mm(a, b))
BINARY_TENSORS(bmm, at::bmm(a, b))

Napi::Value Op_gelu(const Napi::CallbackInfo& info) {
  return Guard(info, "gelu", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("gelu");
    std::string approximate = info.Length() > 1 && info[1].IsString() ? ArgString(info, 1, "gelu", "approximate") : "none";
    return Wrap(info.Env(), at::gelu(a, approximate));
  });
}

// clamp(input, min | null, max | null)
Napi::Value Op_clamp(const Napi::CallbackInfo& info) {
  return Guard(info, "clamp", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("clamp");
    c10::optional<at::Scalar> low, high;
    if (info.Length() > 1 && info[1].IsNumber()) low = ArgScalar(info, 1, "clamp", "min");
    if (info.Length() > 2 && info[2].IsNumber()) high = ArgScalar(info, 2, "clamp", "max");
    return Wrap(info.Env(), at::clamp(a, low, high));
  });
}

// Whether linear() should run as a matrix-vector product: a single input row of a float32 or
// float64 CPU tensor (batch-1 decoding) and a weight that is not small. libtorch 1.13 sends a
// one-row linear to a BLAS gemm. Unless the weight fits OpenBLAS's small-matrix kernel, that gemm
// packs the whole weight matrix on every call, while a matrix-vector product reads it once. Measured against PyTorch's F.linear (`npm run bench -- tensor`, linear-row-*, 2 threads):
// [8192, 512] 49 against 9.8 GFLOP/s and [1408, 512] 19.6 against 10.2, but [512, 512] 8.9
// against 34 when it also took gemv. In a sweep of shapes on 1 and 2 threads the gemm won only
// with at most 512 outputs and under 2^20 weights, so those keep it. Under autocast the gemm
// stays too: autocast casts linear's inputs to bfloat16 and would leave mv's alone.
bool UseMatrixVector(const at::Tensor& a, const at::Tensor& weight,
                     const c10::optional<at::Tensor>& bias) {
  at::ScalarType dtype = a.scalar_type();
  return a.dim() >= 1 && weight.dim() == 2 && weight.size(1) > 0 &&
         a.numel() == weight.size(1) &&
         (weight.size(0) > 512 || weight.numel() >= (int64_t{1} << 20)) &&
         a.device().is_cpu() && weight.device().is_cpu() &&
         (dtype == at::kFloat || dtype == at::kDouble) && weight.scalar_type() == dtype &&
         (!bias.has_value() || (bias->dim() == 1 && bias->scalar_type() == dtype &&
                                bias->device().is_cpu())) &&
         !at::autocast::is_cpu_enabled();
}

// linear(input, weight, bias | null): input @ weight.T + bias
Napi::Value Op_linear(const Napi::CallbackInfo& info) {
  return Guard(info, "linear", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("linear");
    at::Tensor& weight = ArgTensor(info, 1, "linear", "weight");
    c10::optional<at::Tensor> bias = ArgOptionalTensor(info, 2, "linear", "bias");
    if (UseMatrixVector(a, weight, bias)) {
      at::Tensor row = a.reshape({-1});
      at::Tensor out = bias.has_value() ? at::addmv(*bias, weight, row) : at::mv(weight, row);
      std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end() - 1);
      shape.push_back(weight.size(0));
      return Wrap(info.Env(), out.view(shape));
    }
    return Wrap(info.Env(), at::linear(a, weight, bias));
  });
}

// --- reductions -----------------------------------------------------------------------------

// sum(input, dims | null, keepdim, dtype | null)
Napi::Value Op_sum(const Napi::CallbackInfo& info) {
  return Guard(info, "sum", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("sum");
    auto dims = ArgOptionalInts(info, 1, "sum", "dim");
    bool keepdim = info.Length() > 2 && info[2].IsBoolean() && ArgBool(info, 2, "sum", "keepdim");
    auto dtype = ArgOptionalDtype(info, 3, "sum");
    if (!dims) return Wrap(info.Env(), at::sum(a, dtype));
    return Wrap(info.Env(), at::sum(a, *dims, keepdim, dtype));
  });
}

// mean(input, dims | null, keepdim)
Napi::Value Op_mean(const Napi::CallbackInfo& info) {
  return Guard(info, "mean", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("mean");
    auto dims = ArgOptionalInts(info, 1, "mean", "dim");
    bool keepdim = info.Length() > 2 && info[2].IsBoolean() && ArgBool(info, 2, "mean", "keepdim");
    if (!dims) return Wrap(info.Env(), at::mean(a));
    return Wrap(info.Env(), at::mean(a, *dims, keepdim));
  });
}

#define REDUCE_DIMS(NAME, FN)                                                                   \
  Napi::Value Op_##NAME(const Napi::CallbackInfo& info) {                                       \
    return Guard(info, #NAME, [&]() -> Napi::Value {                                            \
      at::Tensor& a = INPUT(#NAME);                                                             \
      auto dims = ArgOptionalInts(info, 1, #NAME, "dim");                                       \
      bool keepdim = info.Length() > 2 && info[2].IsBoolean() && ArgBool(info, 2, #NAME, "keepdim"); \
      return Wrap(EnvOf(info), FN(a, dims.value_or(std::vector<int64_t>{}), keepdim));          \
    });                                                                                         \
  }

REDUCE_DIMS(amax, at::amax)
REDUCE_DIMS(amin, at::amin)
REDUCE_DIMS(logsumexp, at::logsumexp)

// var(input, dims | null, correction, keepdim) and std with the same arguments.
#define REDUCE_VAR(NAME, FN)                                                                    \
  Napi::Value Op_##NAME(const Napi::CallbackInfo& info) {                                       \
    return Guard(info, #NAME, [&]() -> Napi::Value {                                            \
      at::Tensor& a = INPUT(#NAME);                                                             \
      auto dims = ArgOptionalInts(info, 1, #NAME, "dim");                                       \
      int64_t correction = info.Length() > 2 && info[2].IsNumber() ? ArgInt(info, 2, #NAME, "correction") : 1; \
      bool keepdim = info.Length() > 3 && info[3].IsBoolean() && ArgBool(info, 3, #NAME, "keepdim"); \
      return Wrap(EnvOf(info), FN(a, at::OptionalIntArrayRef(dims ? c10::IntArrayRef(*dims) : c10::OptionalIntArrayRef()), \
                                  c10::optional<int64_t>(correction), keepdim));                \
    });                                                                                         \
  }

REDUCE_VAR(var, at::var)
REDUCE_VAR(std, at::std)

// max(input) over all elements, or max(input, dim, keepdim) returning [values, indices].
#define REDUCE_MINMAX(NAME, FN)                                                             \
  Napi::Value Op_##NAME(const Napi::CallbackInfo& info) {                                   \
    return Guard(info, #NAME, [&]() -> Napi::Value {                                        \
      at::Tensor& a = INPUT(#NAME);                                                         \
      auto dim = ArgOptionalInt(info, 1, #NAME, "dim");                                     \
      if (!dim) return Wrap(EnvOf(info), FN(a));                                            \
      bool keepdim = info.Length() > 2 && info[2].IsBoolean() && ArgBool(info, 2, #NAME, "keepdim"); \
      auto result = FN(a, *dim, keepdim);                                                   \
      return WrapList(EnvOf(info), {std::get<0>(result), std::get<1>(result)});             \
    });                                                                                     \
  }

REDUCE_MINMAX(max, at::max)
REDUCE_MINMAX(min, at::min)

// argmax(input, dim | null, keepdim)
#define REDUCE_ARG(NAME, FN)                                                                \
  Napi::Value Op_##NAME(const Napi::CallbackInfo& info) {                                   \
    return Guard(info, #NAME, [&]() -> Napi::Value {                                        \
      at::Tensor& a = INPUT(#NAME);                                                         \
      auto dim = ArgOptionalInt(info, 1, #NAME, "dim");                                     \
      bool keepdim = info.Length() > 2 && info[2].IsBoolean() && ArgBool(info, 2, #NAME, "keepdim"); \
      return Wrap(EnvOf(info), FN(a, dim, keepdim));                                        \
    });                                                                                     \
  }

REDUCE_ARG(argmax, at::argmax)
REDUCE_ARG(argmin, at::argmin)

// norm(input, p, dims | null, keepdim)
Napi::Value Op_norm(const Napi::CallbackInfo& info) {
  return Guard(info, "norm", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("norm");
    at::Scalar p = ArgScalar(info, 1, "norm", "p");
    auto dims = ArgOptionalInts(info, 2, "norm", "dim");
    bool keepdim = info.Length() > 3 && info[3].IsBoolean() && ArgBool(info, 3, "norm", "keepdim");
    if (!dims) return Wrap(info.Env(), at::norm(a, p));
    return Wrap(info.Env(), at::norm(a, p, *dims, keepdim));
  });
}

// --- softmax and losses ---------------------------------------------------------------------

// softmax(input, dim, dtype | null) and logSoftmax with the same arguments.
Napi::Value Op_softmax(const Napi::CallbackInfo& info) {
  return Guard(info, "softmax", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::softmax(INPUT("softmax"), ArgInt(info, 1, "softmax", "dim"),
                                        ArgOptionalDtype(info, 2, "softmax")));
  });
}

Napi::Value Op_logSoftmax(const Napi::CallbackInfo& info) {
  return Guard(info, "logSoftmax", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::log_softmax(INPUT("logSoftmax"), ArgInt(info, 1, "logSoftmax", "dim"),
                                            ArgOptionalDtype(info, 2, "logSoftmax")));
  });
}

int64_t ParseReduction(const Napi::CallbackInfo& info, size_t index, const char* op) {
  std::string reduction = info.Length() > index && info[index].IsString() ? ArgString(info, index, op, "reduction") : "mean";
  if (reduction == "mean") return at::Reduction::Mean;
  if (reduction == "sum") return at::Reduction::Sum;
  if (reduction == "none") return at::Reduction::None;
  ThrowTypeError(info.Env(), std::string(op) + ": argument 'reduction' must be 'mean', 'sum' or 'none', received '" + reduction + "'");
}

// crossEntropy(logits [N, C], target [N] int64, ignoreIndex, reduction, labelSmoothing, weight | null)
Napi::Value Op_crossEntropy(const Napi::CallbackInfo& info) {
  return Guard(info, "crossEntropy", [&]() -> Napi::Value {
    at::Tensor& logits = INPUT("crossEntropy");
    at::Tensor& target = ArgTensor(info, 1, "crossEntropy", "target");
    int64_t ignoreIndex = info.Length() > 2 && info[2].IsNumber() ? ArgInt(info, 2, "crossEntropy", "ignoreIndex") : -100;
    int64_t reduction = ParseReduction(info, 3, "crossEntropy");
    double smoothing = info.Length() > 4 && info[4].IsNumber() ? ArgDouble(info, 4, "crossEntropy", "labelSmoothing") : 0.0;
    c10::optional<at::Tensor> weight = ArgOptionalTensor(info, 5, "crossEntropy", "weight");
    return Wrap(info.Env(), at::cross_entropy_loss(logits, target, weight, reduction, ignoreIndex, smoothing));
  });
}

// --- indexing -------------------------------------------------------------------------------

Napi::Value Op_gather(const Napi::CallbackInfo& info) {
  return Guard(info, "gather", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::gather(INPUT("gather"), ArgInt(info, 1, "gather", "dim"),
                                       ArgTensor(info, 2, "gather", "index")));
  });
}

Napi::Value Op_indexSelect(const Napi::CallbackInfo& info) {
  return Guard(info, "indexSelect", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::index_select(INPUT("indexSelect"), ArgInt(info, 1, "indexSelect", "dim"),
                                             ArgTensor(info, 2, "indexSelect", "index")));
  });
}

// embedding(weight [V, D], indices, paddingIdx | null)
Napi::Value Op_embedding(const Napi::CallbackInfo& info) {
  return Guard(info, "embedding", [&]() -> Napi::Value {
    at::Tensor& weight = ArgTensor(info, 0, "embedding", "weight");
    at::Tensor& indices = ArgTensor(info, 1, "embedding", "indices");
    int64_t paddingIdx = ArgOptionalInt(info, 2, "embedding", "paddingIdx").value_or(-1);
    return Wrap(info.Env(), at::embedding(weight, indices, paddingIdx));
  });
}

// scatter(input, dim, index, src), scatterScalar(input, dim, index, value) and scatterAdd, all
// out of place.
Napi::Value Op_scatter(const Napi::CallbackInfo& info) {
  return Guard(info, "scatter", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::scatter(INPUT("scatter"), ArgInt(info, 1, "scatter", "dim"),
                                        ArgTensor(info, 2, "scatter", "index"), ArgTensor(info, 3, "scatter", "src")));
  });
}

Napi::Value Op_scatterScalar(const Napi::CallbackInfo& info) {
  return Guard(info, "scatterScalar", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::scatter(INPUT("scatterScalar"), ArgInt(info, 1, "scatterScalar", "dim"),
                                        ArgTensor(info, 2, "scatterScalar", "index"),
                                        ArgScalar(info, 3, "scatterScalar", "value")));
  });
}

Napi::Value Op_scatterAdd(const Napi::CallbackInfo& info) {
  return Guard(info, "scatterAdd", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::scatter_add(INPUT("scatterAdd"), ArgInt(info, 1, "scatterAdd", "dim"),
                                            ArgTensor(info, 2, "scatterAdd", "index"),
                                            ArgTensor(info, 3, "scatterAdd", "src")));
  });
}

// index(input, indices: (tensor | null)[]): advanced indexing, input[i0, i1, ...].
Napi::Value Op_index(const Napi::CallbackInfo& info) {
  return Guard(info, "index", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("index");
    if (info.Length() < 2 || !info[1].IsArray()) ThrowTypeError(info.Env(), "index: argument 'indices' must be an array");
    Napi::Array list = info[1].As<Napi::Array>();
    c10::List<c10::optional<at::Tensor>> indices;
    for (uint32_t i = 0; i < list.Length(); i++) {
      Napi::Value item = list.Get(i);
      if (item.IsNull() || item.IsUndefined()) {
        indices.push_back(c10::nullopt);
      } else {
        at::Tensor* tensor = TensorFromValue(item);
        if (tensor == nullptr) ThrowTypeError(info.Env(), "index: each index must be a tensor handle or null");
        indices.push_back(*tensor);
      }
    }
    return Wrap(info.Env(), at::index(a, indices));
  });
}

// --- shapes ---------------------------------------------------------------------------------

#define SHAPE_OP(NAME, EXPR)                                                 \
  Napi::Value Op_##NAME(const Napi::CallbackInfo& info) {                    \
    return Guard(info, #NAME, [&]() -> Napi::Value {                         \
      at::Tensor& a = INPUT(#NAME);                                          \
      return Wrap(EnvOf(info), EXPR);                                        \
    });                                                                      \
  }

SHAPE_OP(view, a.view(ArgInts(info, 1, "view", "shape")))
SHAPE_OP(reshape, a.reshape(ArgInts(info, 1, "reshape", "shape")))
SHAPE_OP(transpose, a.transpose(ArgInt(info, 1, "transpose", "dim0"), ArgInt(info, 2, "transpose", "dim1")))
SHAPE_OP(permute, a.permute(ArgInts(info, 1, "permute", "dims")))
SHAPE_OP(expand, a.expand(ArgInts(info, 1, "expand", "shape")))
SHAPE_OP(narrow, a.narrow(ArgInt(info, 1, "narrow", "dim"), ArgInt(info, 2, "narrow", "start"), ArgInt(info, 3, "narrow", "length")))
SHAPE_OP(select, a.select(ArgInt(info, 1, "select", "dim"), ArgInt(info, 2, "select", "index")))
SHAPE_OP(unsqueeze, a.unsqueeze(ArgInt(info, 1, "unsqueeze", "dim")))
SHAPE_OP(flatten, a.flatten(ArgInt(info, 1, "flatten", "startDim"), ArgInt(info, 2, "flatten", "endDim")))
SHAPE_OP(repeat, a.repeat(ArgInts(info, 1, "repeat", "repeats")))
SHAPE_OP(repeatInterleave, a.repeat_interleave(ArgInt(info, 1, "repeatInterleave", "repeats"), ArgInt(info, 2, "repeatInterleave", "dim")))
SHAPE_OP(flip, a.flip(ArgInts(info, 1, "flip", "dims")))
SHAPE_OP(triu, at::triu(a, ArgInt(info, 1, "triu", "diagonal")))
SHAPE_OP(tril, at::tril(a, ArgInt(info, 1, "tril", "diagonal")))
SHAPE_OP(cumsum, at::cumsum(a, ArgInt(info, 1, "cumsum", "dim"), ArgOptionalDtype(info, 2, "cumsum")))
SHAPE_OP(pad, at::constant_pad_nd(a, ArgInts(info, 1, "pad", "pad"), ArgScalar(info, 2, "pad", "value")))

// squeeze(input, dim | null)
Napi::Value Op_squeeze(const Napi::CallbackInfo& info) {
  return Guard(info, "squeeze", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("squeeze");
    auto dim = ArgOptionalInt(info, 1, "squeeze", "dim");
    return Wrap(info.Env(), dim ? a.squeeze(*dim) : a.squeeze());
  });
}

// slice(input, dim, start | null, end | null, step)
Napi::Value Op_slice(const Napi::CallbackInfo& info) {
  return Guard(info, "slice", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("slice");
    int64_t dim = ArgInt(info, 1, "slice", "dim");
    auto start = ArgOptionalInt(info, 2, "slice", "start");
    auto end = ArgOptionalInt(info, 3, "slice", "end");
    int64_t step = info.Length() > 4 && info[4].IsNumber() ? ArgInt(info, 4, "slice", "step") : 1;
    return Wrap(info.Env(), a.slice(dim, start, end, step));
  });
}

Napi::Value Op_cat(const Napi::CallbackInfo& info) {
  return Guard(info, "cat", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::cat(ArgTensorList(info, 0, "cat", "tensors"), ArgInt(info, 1, "cat", "dim")));
  });
}

Napi::Value Op_stack(const Napi::CallbackInfo& info) {
  return Guard(info, "stack", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::stack(ArgTensorList(info, 0, "stack", "tensors"), ArgInt(info, 1, "stack", "dim")));
  });
}

// split(input, size | sizes, dim)
Napi::Value Op_split(const Napi::CallbackInfo& info) {
  return Guard(info, "split", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("split");
    int64_t dim = ArgInt(info, 2, "split", "dim");
    if (info.Length() > 1 && info[1].IsArray()) {
      return WrapList(info.Env(), a.split_with_sizes(ArgInts(info, 1, "split", "sizes"), dim));
    }
    return WrapList(info.Env(), a.split(ArgInt(info, 1, "split", "size"), dim));
  });
}

Napi::Value Op_chunk(const Napi::CallbackInfo& info) {
  return Guard(info, "chunk", [&]() -> Napi::Value {
    return WrapList(info.Env(), INPUT("chunk").chunk(ArgInt(info, 1, "chunk", "chunks"), ArgInt(info, 2, "chunk", "dim")));
  });
}

// where(condition, input, other, inputIsScalar, otherIsScalar): each branch is a tensor handle or,
// when its flag is true, a number.
Napi::Value Op_where(const Napi::CallbackInfo& info) {
  return Guard(info, "where", [&]() -> Napi::Value {
    at::Tensor& condition = ArgTensor(info, 0, "where", "condition");
    bool scalarA = info.Length() > 3 && info[3].IsBoolean() && ArgBool(info, 3, "where", "inputIsScalar");
    bool scalarB = info.Length() > 4 && info[4].IsBoolean() && ArgBool(info, 4, "where", "otherIsScalar");
    if (!scalarA && !scalarB) return Wrap(info.Env(), at::where(condition, ArgTensor(info, 1, "where", "input"), ArgTensor(info, 2, "where", "other")));
    if (!scalarA) return Wrap(info.Env(), at::where(condition, ArgTensor(info, 1, "where", "input"), ArgScalar(info, 2, "where", "other")));
    if (!scalarB) return Wrap(info.Env(), at::where(condition, ArgScalar(info, 1, "where", "input"), ArgTensor(info, 2, "where", "other")));
    return Wrap(info.Env(), at::where(condition, ArgScalar(info, 1, "where", "input"), ArgScalar(info, 2, "where", "other")));
  });
}

// maskedFill(input, mask, value tensor) and maskedFillScalar(input, mask, value number)
Napi::Value Op_maskedFill(const Napi::CallbackInfo& info) {
  return Guard(info, "maskedFill", [&]() -> Napi::Value {
    return Wrap(info.Env(), INPUT("maskedFill").masked_fill(ArgTensor(info, 1, "maskedFill", "mask"),
                                                            ArgTensor(info, 2, "maskedFill", "value")));
  });
}

Napi::Value Op_maskedFillScalar(const Napi::CallbackInfo& info) {
  return Guard(info, "maskedFillScalar", [&]() -> Napi::Value {
    return Wrap(info.Env(), INPUT("maskedFillScalar").masked_fill(ArgTensor(info, 1, "maskedFillScalar", "mask"),
                                                                  ArgScalar(info, 2, "maskedFillScalar", "value")));
  });
}

// topk(input, k, dim, largest, sorted) -> [values, indices]
Napi::Value Op_topk(const Napi::CallbackInfo& info) {
  return Guard(info, "topk", [&]() -> Napi::Value {
    auto result = at::topk(INPUT("topk"), ArgInt(info, 1, "topk", "k"), ArgInt(info, 2, "topk", "dim"),
                           ArgBool(info, 3, "topk", "largest"), ArgBool(info, 4, "topk", "sorted"));
    return WrapList(info.Env(), {std::get<0>(result), std::get<1>(result)});
  });
}

// sort(input, dim, descending, stable) -> [values, indices]
Napi::Value Op_sort(const Napi::CallbackInfo& info) {
  return Guard(info, "sort", [&]() -> Napi::Value {
    auto result = at::sort(INPUT("sort"), c10::optional<bool>(ArgBool(info, 3, "sort", "stable")),
                           ArgInt(info, 1, "sort", "dim"), ArgBool(info, 2, "sort", "descending"));
    return WrapList(info.Env(), {std::get<0>(result), std::get<1>(result)});
  });
}

// multinomial(probs, numSamples, replacement, generator | null)
Napi::Value Op_multinomial(const Napi::CallbackInfo& info) {
  return Guard(info, "multinomial", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::multinomial(INPUT("multinomial"), ArgInt(info, 1, "multinomial", "numSamples"),
                                            ArgBool(info, 2, "multinomial", "replacement"),
                                            ArgOptionalGenerator(info, 3, "multinomial")));
  });
}

// dropout(input, p, train)
Napi::Value Op_dropout(const Napi::CallbackInfo& info) {
  return Guard(info, "dropout", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::dropout(INPUT("dropout"), ArgDouble(info, 1, "dropout", "p"), ArgBool(info, 2, "dropout", "train")));
  });
}

// layerNorm(input, normalizedShape, weight | null, bias | null, eps)
Napi::Value Op_layerNorm(const Napi::CallbackInfo& info) {
  return Guard(info, "layerNorm", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::layer_norm(INPUT("layerNorm"), ArgInts(info, 1, "layerNorm", "normalizedShape"),
                                           ArgOptionalTensor(info, 2, "layerNorm", "weight"),
                                           ArgOptionalTensor(info, 3, "layerNorm", "bias"),
                                           ArgDouble(info, 4, "layerNorm", "eps")));
  });
}

Napi::Value Op_einsum(const Napi::CallbackInfo& info) {
  return Guard(info, "einsum", [&]() -> Napi::Value {
    return Wrap(info.Env(), at::einsum(ArgString(info, 0, "einsum", "equation"), ArgTensorList(info, 1, "einsum", "operands")));
  });
}

// scaledDotProductAttention(q, k, v, mask | null, dropoutP, isCausal): libtorch >= 2.0 only.
Napi::Value Op_scaledDotProductAttention(const Napi::CallbackInfo& info) {
  return Guard(info, "scaledDotProductAttention", [&]() -> Napi::Value {
#if TORCH_VERSION_MAJOR >= 2
    return Wrap(info.Env(), at::scaled_dot_product_attention(
        ArgTensor(info, 0, "scaledDotProductAttention", "query"), ArgTensor(info, 1, "scaledDotProductAttention", "key"),
        ArgTensor(info, 2, "scaledDotProductAttention", "value"), ArgOptionalTensor(info, 3, "scaledDotProductAttention", "mask"),
        ArgDouble(info, 4, "scaledDotProductAttention", "dropoutP"), ArgBool(info, 5, "scaledDotProductAttention", "isCausal")));
#else
    ThrowTorchError(info.Env(), "scaledDotProductAttention", "not available in libtorch " TORCH_VERSION " (it needs 2.0 or later)");
#endif
  });
}

// --- in-place ops (parameter updates, initialisation, caches) -------------------------------

Napi::Value Op_copy_(const Napi::CallbackInfo& info) {
  return Guard(info, "copy_", [&]() -> Napi::Value {
    INPUT("copy_").copy_(ArgTensor(info, 1, "copy_", "src"));
    return info[0];
  });
}

Napi::Value Op_fill_(const Napi::CallbackInfo& info) {
  return Guard(info, "fill_", [&]() -> Napi::Value {
    INPUT("fill_").fill_(ArgScalar(info, 1, "fill_", "value"));
    return info[0];
  });
}

Napi::Value Op_zero_(const Napi::CallbackInfo& info) {
  return Guard(info, "zero_", [&]() -> Napi::Value {
    INPUT("zero_").zero_();
    return info[0];
  });
}

// add_(input, other, alpha): input += alpha * other; addScalar_(input, number, alpha).
Napi::Value Op_add_(const Napi::CallbackInfo& info) {
  return Guard(info, "add_", [&]() -> Napi::Value {
    at::Scalar alpha = info.Length() > 2 && info[2].IsNumber() ? ArgScalar(info, 2, "add_", "alpha") : at::Scalar(1);
    INPUT("add_").add_(ArgTensor(info, 1, "add_", "other"), alpha);
    return info[0];
  });
}

Napi::Value Op_addScalar_(const Napi::CallbackInfo& info) {
  return Guard(info, "addScalar_", [&]() -> Napi::Value {
    at::Scalar alpha = info.Length() > 2 && info[2].IsNumber() ? ArgScalar(info, 2, "addScalar_", "alpha") : at::Scalar(1);
    INPUT("addScalar_").add_(ArgScalar(info, 1, "addScalar_", "other"), alpha);
    return info[0];
  });
}

Napi::Value Op_mul_(const Napi::CallbackInfo& info) {
  return Guard(info, "mul_", [&]() -> Napi::Value {
    INPUT("mul_").mul_(ArgTensor(info, 1, "mul_", "other"));
    return info[0];
  });
}

Napi::Value Op_mulScalar_(const Napi::CallbackInfo& info) {
  return Guard(info, "mulScalar_", [&]() -> Napi::Value {
    INPUT("mulScalar_").mul_(ArgScalar(info, 1, "mulScalar_", "other"));
    return info[0];
  });
}

// normal_(input, mean, std, generator | null) and uniform_(input, from, to, generator | null)
Napi::Value Op_normal_(const Napi::CallbackInfo& info) {
  return Guard(info, "normal_", [&]() -> Napi::Value {
    INPUT("normal_").normal_(ArgDouble(info, 1, "normal_", "mean"), ArgDouble(info, 2, "normal_", "std"),
                             ArgOptionalGenerator(info, 3, "normal_"));
    return info[0];
  });
}

Napi::Value Op_uniform_(const Napi::CallbackInfo& info) {
  return Guard(info, "uniform_", [&]() -> Napi::Value {
    INPUT("uniform_").uniform_(ArgDouble(info, 1, "uniform_", "from"), ArgDouble(info, 2, "uniform_", "to"),
                               ArgOptionalGenerator(info, 3, "uniform_"));
    return info[0];
  });
}

// equal(a, b): same shape and elements.
Napi::Value Op_equal(const Napi::CallbackInfo& info) {
  return Guard(info, "equal", [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), at::equal(INPUT("equal"), ArgTensor(info, 1, "equal", "other")));
  });
}

// sameStorage(a, b): whether two handles point into the same storage (aliasing check).
Napi::Value Op_sameStorage(const Napi::CallbackInfo& info) {
  return Guard(info, "sameStorage", [&]() -> Napi::Value {
    at::Tensor& a = INPUT("sameStorage");
    at::Tensor& b = ArgTensor(info, 1, "sameStorage", "other");
    return Napi::Boolean::New(info.Env(), a.has_storage() && b.has_storage() && a.storage().is_alias_of(b.storage()));
  });
}

}  // namespace

void RegisterOps(Napi::Env env, Napi::Object exports) {
  struct Entry {
    const char* name;
    Napi::Value (*fn)(const Napi::CallbackInfo&);
  };
#define E(NAME) {#NAME, Op_##NAME}
  static const Entry entries[] = {
      E(neg), E(abs), E(exp), E(log), E(log1p), E(sqrt), E(rsqrt), E(square), E(reciprocal), E(tanh),
      E(sigmoid), E(logsigmoid), E(silu), E(relu), E(sin), E(cos), E(erf), E(sign), E(floor), E(ceil),
      E(round), E(logicalNot), E(isnan), E(isfinite), E(detach), E(nonzero),
      E(add), E(sub), E(mul), E(div), E(pow), E(remainder), E(eq), E(ne), E(lt), E(le), E(gt), E(ge),
      E(addScalar), E(subScalar), E(mulScalar), E(divScalar), E(powScalar), E(remainderScalar),
      E(eqScalar), E(neScalar), E(ltScalar), E(leScalar), E(gtScalar), E(geScalar),
      E(maximum), E(minimum), E(logicalAnd), E(logicalOr), E(matmul), E(mm), E(bmm),
      E(gelu), E(clamp), E(linear),
      E(sum), E(mean), E(amax), E(amin), E(logsumexp), E(var), E(std), E(max), E(min), E(argmax),
      E(argmin), E(norm),
      E(softmax), E(logSoftmax), E(crossEntropy),
      E(gather), E(indexSelect), E(embedding), E(scatter), E(scatterScalar), E(scatterAdd), E(index),
      E(view), E(reshape), E(transpose), E(permute), E(expand), E(narrow), E(select), E(unsqueeze),
      E(flatten), E(repeat), E(repeatInterleave), E(flip), E(triu), E(tril), E(cumsum), E(pad),
      E(squeeze), E(slice), E(cat), E(stack), E(split), E(chunk), E(where), E(maskedFill),
      E(maskedFillScalar),
      E(topk), E(sort), E(multinomial), E(dropout), E(layerNorm), E(einsum),
      E(scaledDotProductAttention),
      E(copy_), E(fill_), E(zero_), E(add_), E(addScalar_), E(mul_), E(mulScalar_), E(normal_), E(uniform_), E(equal), E(sameStorage),
  };
#undef E
  for (const Entry& entry : entries) exports.Set(entry.name, Napi::Function::New(env, entry.fn, entry.name));
  exports.Set("hasScaledDotProductAttention", Napi::Boolean::New(env, TORCH_VERSION_MAJOR >= 2));
}

}  // namespace cdpo
