// mint/models/resnet_cuda.cuh -- ResNet<Cuda>: the ResNet template of mint/models/resnet.hpp on device tensors
// (nvcc only).
//
// The model's code is the one template; this header only makes the CUDA overloads of the nn ops (conv2d by
// im2col + cuBLAS, batch norm and the channel statistics, ReLU, residual add, global average pooling, linear)
// visible to it. They must be declared before the template is defined (the template calls nn::op by qualified
// name), so include this header before anything that includes mint/models/resnet.hpp.
#pragma once

#if defined(MINT_MODELS_RESNET_HPP_INCLUDED)
#error "include mint/models/resnet_cuda.cuh before mint/models/resnet.hpp (the CUDA ops must be declared first)"
#endif

// Only the ops ResNet calls (not all of mint/backend/cuda.cuh): each .cu file that includes a kernel header
// compiles its kernels, and nvcc time is CI time.
#include "mint/backend/cuda/activation.cuh"
#include "mint/backend/cuda/batchnorm.cuh"
#include "mint/backend/cuda/conv.cuh"
#include "mint/backend/cuda/elementwise.cuh"
#include "mint/backend/cuda/linear.cuh"
#include "mint/backend/cuda/pool.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/models/resnet.hpp"
