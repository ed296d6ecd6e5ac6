// The libFuzzer entry points every target in tests/fuzz defines, declared once
// so the targets and the corpus replay driver (replay_main.cc) agree.
//
// A target must accept any bytes without crashing, hanging, leaking or
// invoking undefined behaviour, and must not touch the network. Built two
// ways (tests/fuzz/CMakeLists.txt): with clang's -fsanitize=fuzzer in the
// `fuzz` preset, and with replay_main.cc in every other build, where ctest
// runs each target over its checked-in corpus (label `fuzz`).
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
