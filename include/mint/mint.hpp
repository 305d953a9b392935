// mint/mint.hpp -- the umbrella header: everything a user of the CPU library needs.
#pragma once

#include "mint/core/device.hpp"
#include "mint/core/error.hpp"
#include "mint/core/rng.hpp"
#include "mint/core/shape.hpp"
#include "mint/core/tensor.hpp"
#include "mint/core/xview.hpp"
