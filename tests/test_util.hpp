// Shared test helpers: a REQUIRE that prints a CloseReport's message (max difference and where).
#pragma once

#include <catch2/catch.hpp>

#include "mint/testing/check.hpp"

#define MINT_REQUIRE_CLOSE(report_expr)   \
  do {                                    \
    const auto mint_report_ = (report_expr); \
    INFO(mint_report_.message);           \
    CAPTURE(mint_report_.max_abs);        \
    REQUIRE(mint_report_.ok);             \
  } while (0)
