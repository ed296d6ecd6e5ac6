# Compile options every target of ours gets: warnings on, optional sanitizers.
add_library(polar_options INTERFACE)
target_compile_options(polar_options INTERFACE -Wall -Wextra -Wpedantic)
target_include_directories(polar_options INTERFACE ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
# __FILE__ relative to the source root ("daemon/service/app.cc"), not the build machine's checkout:
# the journal shows it as CODE_FILE of every log entry (daemon/service/logging.h), and a path is no
# business of the binary's.
target_compile_options(polar_options INTERFACE -fmacro-prefix-map=${PROJECT_SOURCE_DIR}/=)
# The sanitizer build is linked as a fixed-address (non-PIE) executable: built as PIE, the
# instrumented unit_tests carries 3 million relative relocations that every start applies (0.13 s
# and 207 MB against 0.07 s and 134 MB), and the suite starts it 545 times. Nothing tested there
# depends on where the binary is loaded; the shipped build stays PIE.
if(POLAR_SANITIZE)
  target_compile_options(polar_options INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                 -fno-sanitize-recover=undefined -fno-pie)
  target_link_options(polar_options INTERFACE -fsanitize=address,undefined -no-pie)
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
# Debian's hardening flags (what dpkg-buildflags gives a package build), in the optimised builds the
# .deb is made from: fortified libc calls, a stack protector, a GOT made read-only after start-up
# (full RELRO; lintian reports their absence). PIE is already GCC's default on Debian. Not under the
# sanitizers, which intercept the same libc calls, nor at -O0, where _FORTIFY_SOURCE does nothing.
if(NOT POLAR_SANITIZE AND NOT POLAR_FUZZ)
  target_compile_options(polar_options INTERFACE
    $<$<CONFIG:Release,RelWithDebInfo,MinSizeRel>:-U_FORTIFY_SOURCE>
    $<$<CONFIG:Release,RelWithDebInfo,MinSizeRel>:-D_FORTIFY_SOURCE=2>
    -fstack-protector-strong)
  target_link_options(polar_options INTERFACE -Wl,-z,relro -Wl,-z,now)
endif()
