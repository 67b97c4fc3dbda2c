// The bundled model's bytes, assembled in with .incbin (GNU as, ELF targets): the build
// passes the file's path as MBZ_BUNDLED_MODEL_FILE and rebuilds this file when it changes.
#include "model/bundled.h"

#ifndef MBZ_BUNDLED_MODEL_FILE
#error "MBZ_BUNDLED_MODEL_FILE must name the bundled model file"
#endif

asm(".section .rodata\n"
    ".balign 64\n"
    ".hidden mbz_bundled_model_begin\n"
    ".hidden mbz_bundled_model_end\n"
    ".global mbz_bundled_model_begin\n"
    ".global mbz_bundled_model_end\n"
    "mbz_bundled_model_begin:\n"
    ".incbin \"" MBZ_BUNDLED_MODEL_FILE "\"\n"
    "mbz_bundled_model_end:\n"
    ".previous\n");

extern "C" const uint8_t mbz_bundled_model_begin[];
extern "C" const uint8_t mbz_bundled_model_end[];

namespace mbz::model {

std::span<const uint8_t> bundled_model_bytes() {
  return {mbz_bundled_model_begin, mbz_bundled_model_end};
}

}  // namespace mbz::model
