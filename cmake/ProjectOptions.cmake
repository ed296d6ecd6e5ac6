# Compile options every target of ours gets: warnings on, optional sanitizers.
add_library(polar_options INTERFACE)
target_compile_options(polar_options INTERFACE -Wall -Wextra -Wpedantic)
target_include_directories(polar_options INTERFACE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
if(POLAR_SANITIZE)
  target_compile_options(polar_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                 -fno-sanitize-recover=undefined)
  target_link_options(polar_options INTERFACE -fsanitize=address,undefined)
endif()
if(POLAR_FUZZ)
  # Every library gets libFuzzer's coverage instrumentation; only the fuzz targets link its main.
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "POLAR_FUZZ needs clang (cmake --preset fuzz)")
  endif()
  target_compile_options(polar_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                                                 -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(polar_options INTERFACE -fsanitize=address,undefined)
endif()
