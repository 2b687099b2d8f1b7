# Build-time helpers for the spin_ns PTX, run with `cmake -P`:
#   -DMODE=embed      -DPTX=<in.ptx> -DOUT=<out.inc>   C++ string literal of the PTX
#   -DMODE=normalize  -DPTX=<in.ptx> -DOUT=<out.ptx>   nvcc output -> committed form
#   -DMODE=check      -DPTX=<committed> -DGEN=<nvcc output>  fail if they differ
#
# Why normalize: the toolkit on our machines (CUDA 13) emits `.version 9.0`,
# which drivers older than 13.0 refuse to load. The kernel uses no newer PTX
# feature, so the committed file declares `.version 8.0` (CUDA 12.0) and loads
# on every 12.x/13.x driver. Comments differ between toolkits, so the check
# compares only the PTX statements.

function(ptx_statements path out_var)
  file(STRINGS "${path}" lines)
  set(body "")
  foreach(line IN LISTS lines)
    string(STRIP "${line}" s)
    if(s STREQUAL "" OR s MATCHES "^//")
      continue()
    endif()
    if(s MATCHES "^\\.version ")
      set(s ".version 8.0")
    endif()
    string(APPEND body "${s}\n")
  endforeach()
  set(${out_var} "${body}" PARENT_SCOPE)
endfunction()

if(MODE STREQUAL "embed")
  file(READ "${PTX}" text)
  file(WRITE "${OUT}.tmp" "// Generated from spin_ns.ptx by ptx_tool.cmake. Do not edit.\n"
       "static const char kSpinNsPtx[] = R\"ptx(${text})ptx\";\n")
  file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
elseif(MODE STREQUAL "normalize")
  file(READ "${PTX}" text)
  string(REGEX REPLACE "\n\\.version [0-9]+\\.[0-9]+" "\n.version 8.0" text "${text}")
  string(REPLACE "// Based on" "// (.version lowered to 8.0 by ptx_tool.cmake: the kernel uses nothing newer,\n// and 8.0 loads on every CUDA 12.x and 13.x driver)\n// Based on" text "${text}")
  file(WRITE "${OUT}" "${text}")
elseif(MODE STREQUAL "check")
  ptx_statements("${PTX}" committed)
  ptx_statements("${GEN}" generated)
  if(NOT committed STREQUAL generated)
    message(FATAL_ERROR "${PTX} is stale: it no longer matches spin_ns.cu. "
                        "Run `make -C build regenerate-spin-ptx` and commit the result.")
  endif()
else()
  message(FATAL_ERROR "ptx_tool.cmake: unknown MODE '${MODE}'")
endif()
