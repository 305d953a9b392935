// mint/models/vit_cuda.cuh -- ViT<Cuda>: the ViT template of mint/models/vit.hpp on device tensors (nvcc only).
//
// The model's code is the one template; this header only makes the CUDA overloads of the nn ops (cuBLAS GEMMs,
// the fused bias+GELU, LayerNorm, attention with the CLS attention, patchify+gather, embedding) visible to it.
// They must be declared before the template is defined (the template calls nn::op by qualified name), so
// include this header before anything that includes mint/models/vit.hpp.
#pragma once

#if defined(MINT_MODELS_VIT_HPP_INCLUDED)
#error "include mint/models/vit_cuda.cuh before mint/models/vit.hpp (the CUDA ops must be declared first)"
#endif

#include "mint/backend/cuda.cuh"
#include "mint/models/vit.hpp"
