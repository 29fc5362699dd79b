# Helpers every target uses: warnings, sanitizers, and the torch precompiled header.

# Warnings: -Wall -Wextra clean for our code; torch headers are system includes (imported target).
function(ls_set_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
endfunction()

function(ls_set_sanitizers target)
  if(LS_SANITIZE)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer>)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# ls_target(name) = warnings + sanitizers + torch's compile flags.
function(ls_target target)
  ls_set_warnings(${target})
  ls_set_sanitizers(${target})
endfunction()

# One precompiled <torch/torch.h>, reused by the translation units that need the full frontend.
# Light files include <ATen/core/Tensor.h> or <ATen/ATen.h> instead and must not use it: the PCH
# makes a light file slower than its own includes would.
add_library(ls_torch_pch STATIC ${CMAKE_SOURCE_DIR}/cmake/pch_anchor.cpp)
target_link_libraries(ls_torch_pch PUBLIC torch)
target_precompile_headers(ls_torch_pch PUBLIC <torch/torch.h>)
ls_target(ls_torch_pch)

function(ls_use_torch_pch target)
  target_precompile_headers(${target} REUSE_FROM ls_torch_pch)
endfunction()

# ls_add_program(NAME SOURCE LIBS...): a program in BUILD_DIR/bin with the project's warnings
# and sanitizers, linked against LIBS.
function(ls_add_program name source)
  add_executable(${name} ${source})
  target_link_libraries(${name} PRIVATE ${ARGN})
  ls_target(${name})
endfunction()
