// mint/backend/cuda.cuh -- the CUDA backend in one include, for .cu files compiled by nvcc: Tensor<Cuda>
// storage and copies, cuBLAS GEMM, and the nn ops' Tensor<Cuda> overloads. Plain C++ code that only owns and
// copies device tensors can include mint/backend/cuda/tensor.hpp and gemm.hpp with g++ instead.
//
// The CNN ops (conv.cuh, batchnorm.cuh, pool.cuh) are not included here: every .cu file that includes a kernel
// header compiles its kernels, and the ViT and engine files do not need them. mint/models/resnet_cuda.cuh
// includes them (with the other ops ResNet calls); the losses (cross-entropy, KL) are in losses.cuh.
#pragma once

#include "mint/backend/cuda/activation.cuh"
#include "mint/backend/cuda/adam.cuh"
#include "mint/backend/cuda/attention.cuh"
#include "mint/backend/cuda/elementwise.cuh"
#include "mint/backend/cuda/fused.cuh"
#include "mint/backend/cuda/gemm.hpp"
#include "mint/backend/cuda/image_priors.cuh"
#include "mint/backend/cuda/layernorm.cuh"
#include "mint/backend/cuda/linear.cuh"
#include "mint/backend/cuda/softmax.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/backend/cuda/tokens.cuh"
