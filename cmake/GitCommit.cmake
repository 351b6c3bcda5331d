# Run at build time (cmake -P) by the rvt_git_commit target: writes OUT, a header defining
# RVT_GIT_COMMIT as `git describe` of SOURCE_DIR now, rewriting it only when that changed, so
# every build records the commit it was built from (not the one CMake last configured at).
execute_process(
  COMMAND git describe --always --dirty --abbrev=12
  WORKING_DIRECTORY "${SOURCE_DIR}"
  OUTPUT_VARIABLE commit
  OUTPUT_STRIP_TRAILING_WHITESPACE
  ERROR_QUIET)
if(NOT commit)
  set(commit "unknown")
endif()
file(WRITE "${OUT}.tmp" "#define RVT_GIT_COMMIT \"${commit}\"\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
