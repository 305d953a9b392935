// mint/backend/cuda.cuh -- the CUDA backend in one include, for .cu files compiled by nvcc: Tensor<Cuda>
// storage and copies, cuBLAS GEMM, and the nn ops' Tensor<Cuda> overloads. Plain C++ code that only owns and
// copies device tensors can include mint/backend/cuda/tensor.hpp and gemm.hpp with g++ instead.
#pragma once

#include "mint/backend/cuda/activation.cuh"
#include "mint/backend/cuda/adam.cuh"
#include "mint/backend/cuda/attention.cuh"
#include "mint/backend/cuda/batchnorm.cuh"
#include "mint/backend/cuda/conv.cuh"
#include "mint/backend/cuda/elementwise.cuh"
#include "mint/backend/cuda/fused.cuh"
#include "mint/backend/cuda/gemm.hpp"
#include "mint/backend/cuda/image_priors.cuh"
#include "mint/backend/cuda/layernorm.cuh"
#include "mint/backend/cuda/linear.cuh"
#include "mint/backend/cuda/losses.cuh"
#include "mint/backend/cuda/pool.cuh"
#include "mint/backend/cuda/softmax.cuh"
#include "mint/backend/cuda/tensor.hpp"
#include "mint/backend/cuda/tokens.cuh"
