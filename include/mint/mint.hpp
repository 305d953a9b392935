// mint/mint.hpp -- the umbrella header: everything a user of the CPU library needs.
#pragma once

#include "mint/core/device.hpp"
#include "mint/core/error.hpp"
#include "mint/core/normalization.hpp"
#include "mint/core/rng.hpp"
#include "mint/core/shape.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/xview.hpp"

#include "mint/backend/cpu/gemm.hpp"
#include "mint/backend/cpu/parallel.hpp"
#include "mint/backend/functors.hpp"

#include "mint/autodiff/backward.hpp"

#include "mint/nn/activation.hpp"
#include "mint/nn/attention.hpp"
#include "mint/nn/batchnorm.hpp"
#include "mint/nn/conv.hpp"
#include "mint/nn/elementwise.hpp"
#include "mint/nn/image_priors.hpp"
#include "mint/nn/layernorm.hpp"
#include "mint/nn/linear.hpp"
#include "mint/nn/losses.hpp"
#include "mint/nn/matmul.hpp"
#include "mint/nn/pool.hpp"
#include "mint/nn/softmax.hpp"
#include "mint/nn/tokens.hpp"

#include "mint/models/init.hpp"
#include "mint/models/resnet.hpp"
#include "mint/models/vit.hpp"
#include "mint/models/vit_config.hpp"

#include "mint/optim/adam.hpp"
#include "mint/optim/sgd.hpp"

#include "mint/io/atomic_file.hpp"
#include "mint/io/idx.hpp"
#include "mint/io/image.hpp"
#include "mint/io/safetensors.hpp"

#include "mint/inversion/augmentation.hpp"
#include "mint/inversion/bn_prior.hpp"
#include "mint/inversion/concepts.hpp"
#include "mint/inversion/inverter.hpp"
#include "mint/inversion/objectives.hpp"
#include "mint/inversion/regularizers.hpp"
#include "mint/inversion/schedules.hpp"
#include "mint/inversion/selectors.hpp"
#include "mint/inversion/sparse_image.hpp"
#include "mint/inversion/cost.hpp"

#include "mint/tasks/distill.hpp"
#include "mint/tasks/evaluate.hpp"
#include "mint/tasks/metrics.hpp"
#include "mint/tasks/quantize.hpp"
