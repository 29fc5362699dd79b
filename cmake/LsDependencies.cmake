# Finds every external dependency once, the standard way, and decides whether the CUDA/NCCL
# paths are built. Torch comes from the pip wheel (CMAKE_PREFIX_PATH = torch.utils.cmake_prefix_path).

# CUDA first: a CUDA build of torch wants the toolkit before TorchConfig runs.
set(LS_CUDA_ENABLED OFF)
if(NOT LS_WITH_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # H100/H200 (sm_90); add 89 for the RTX 4090 when building for it.
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(CMAKE_CUDA_EXTENSIONS OFF)
    find_package(CUDAToolkit REQUIRED)
  elseif(LS_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "LS_WITH_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()

# Torch's CMake would otherwise compile and run a program to detect local GPUs (none in CI).
if(CMAKE_CUDA_COMPILER AND NOT DEFINED TORCH_CUDA_ARCH_LIST AND NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST})
  set(TORCH_CUDA_ARCH_LIST "9.0")
endif()
# Torch warns about CMAKE_CUDA_ARCHITECTURES (it uses TORCH_CUDA_ARCH_LIST): hide ours meanwhile.
set(_ls_cuda_archs ${CMAKE_CUDA_ARCHITECTURES})
unset(CMAKE_CUDA_ARCHITECTURES)
find_package(Torch REQUIRED)
if(_ls_cuda_archs)
  set(CMAKE_CUDA_ARCHITECTURES ${_ls_cuda_archs})
endif()
# TorchConfig puts its flags (ABI define) in TORCH_CXX_FLAGS; the imported targets carry the rest.
if(TORCH_CUDA_LIBRARIES AND CMAKE_CUDA_COMPILER)
  set(LS_CUDA_ENABLED ON)
elseif(LS_WITH_CUDA STREQUAL "ON")
  message(FATAL_ERROR "LS_WITH_CUDA=ON but this torch build has no CUDA")
endif()

if(LS_CUDA_ENABLED)
  # NCCL: prefer the copy torch itself loads (pip nvidia-nccl), so one process has one NCCL.
  execute_process(COMMAND ${LS_PYTHON} -c "import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) if nvidia.nccl.__file__ else list(nvidia.nccl.__path__)[0])"
                  OUTPUT_VARIABLE _ls_pip_nccl OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${_ls_pip_nccl}/include ${CUDAToolkit_INCLUDE_DIRS} /usr/include)
  find_library(NCCL_LIBRARY NAMES libnccl.so.2 nccl NAMES_PER_DIR HINTS ${_ls_pip_nccl}/lib ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu)
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "CUDA build: NCCL not found (nccl.h / libnccl). Install NCCL or configure with -DLS_WITH_CUDA=OFF")
  endif()
  add_library(LS::nccl UNKNOWN IMPORTED)
  set_target_properties(LS::nccl PROPERTIES IMPORTED_LOCATION ${NCCL_LIBRARY}
                        INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
  message(STATUS "ls-train: NCCL ${NCCL_LIBRARY}")
endif()

find_package(MPI REQUIRED COMPONENTS CXX)
find_package(yaml-cpp REQUIRED)
if(NOT TARGET yaml-cpp::yaml-cpp)  # yaml-cpp 0.7 (Debian 12) names its target plain yaml-cpp
  add_library(yaml-cpp::yaml-cpp ALIAS yaml-cpp)
endif()
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Threads REQUIRED)
find_package(CLI11 REQUIRED)

# sentencepiece ships a pkg-config file, not a CMake package.
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)

# tokenizer.json support (data/tokenizer/hf/): PCRE2 for the pre-tokenizer regexes, utf8proc
# for NFC. Optional: a build without them reads sentencepiece models only, and a tokenizer.json
# is one clear error.
set(LS_HF_TOKENIZER_ENABLED OFF)
if(NOT LS_WITH_HF_TOKENIZER STREQUAL "OFF")
  pkg_check_modules(PCRE2 IMPORTED_TARGET libpcre2-8)
  pkg_check_modules(UTF8PROC IMPORTED_TARGET libutf8proc)
  if(PCRE2_FOUND AND UTF8PROC_FOUND)
    set(LS_HF_TOKENIZER_ENABLED ON)
  elseif(LS_WITH_HF_TOKENIZER STREQUAL "ON")
    message(FATAL_ERROR "LS_WITH_HF_TOKENIZER=ON but PCRE2 (libpcre2-8) or utf8proc (libutf8proc) "
                        "was not found by pkg-config: run tools/setup.sh")
  endif()
endif()

# ls_serve (launch/ls_serve.cpp): Boost.Beast on Boost.Asio, header-only (Debian's libboost-dev;
# docs/SERVE.md says why). Optional: without it every other program builds.
set(LS_SERVE_ENABLED OFF)
if(NOT LS_WITH_SERVE STREQUAL "OFF")
  find_package(Boost 1.70 QUIET)
  if(Boost_FOUND AND EXISTS "${Boost_INCLUDE_DIRS}/boost/beast.hpp")
    set(LS_SERVE_ENABLED ON)
    message(STATUS "ls-train: ls_serve: on (Boost.Beast ${Boost_VERSION})")
  elseif(LS_WITH_SERVE STREQUAL "ON")
    message(FATAL_ERROR "LS_WITH_SERVE=ON but Boost.Beast (libboost-dev) was not found: run tools/setup.sh")
  else()
    message(STATUS "ls-train: ls_serve: off (Boost.Beast not found)")
  endif()
else()
  message(STATUS "ls-train: ls_serve: off (LS_WITH_SERVE=OFF)")
endif()

if(LS_BUILD_TESTS)
  find_package(GTest REQUIRED)
  if(NOT LS_PYTHON)
    find_program(LS_PYTHON_FOUND NAMES python3)
    set(LS_PYTHON ${LS_PYTHON_FOUND} CACHE FILEPATH "" FORCE)
  endif()
endif()
