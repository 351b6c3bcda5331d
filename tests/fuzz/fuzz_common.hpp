// Shared by the libFuzzer targets: anything but rvt::Error escaping a parser is a finding.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "rvt/core/error.hpp"

#define RVT_FUZZ_ONLY_RVT_ERROR(body)                                               \
  do {                                                                              \
    try {                                                                           \
      body;                                                                         \
    } catch (const rvt::Error&) {                                                   \
    } catch (const std::exception& e) {                                             \
      std::fprintf(stderr, "fuzz: non-rvt::Error exception escaped: %s\n", e.what()); \
      std::abort();                                                                 \
    } catch (...) {                                                                 \
      std::fprintf(stderr, "fuzz: unknown exception escaped\n");                    \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)
