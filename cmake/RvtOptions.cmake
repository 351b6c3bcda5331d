# Project-wide warning and sanitizer settings, applied through an interface target
# (target-based: no global flags).
add_library(rvt_options INTERFACE)
target_compile_options(rvt_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion)
# -Wno-restrict is GCC's: clang (the fuzz build) warned on every file that it does not know it.
target_compile_options(rvt_options INTERFACE $<$<CXX_COMPILER_ID:GNU>:-Wno-restrict>)
if(RVT_SANITIZE)
  target_compile_options(rvt_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(rvt_options INTERFACE -fsanitize=address,undefined)
endif()
if(RVT_FUZZ)
  # Coverage for libFuzzer plus ASan+UBSan on everything; the targets add -fsanitize=fuzzer.
  target_compile_options(rvt_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(rvt_options INTERFACE -fsanitize=address,undefined)
endif()

