# onebit_infer_simd_sources(<out> <processor>): the runtime's SIMD kernel files for a target processor
# (CMAKE_SYSTEM_PROCESSOR), each given the instruction-set flags it is compiled with. Only these files
# get them: kernels/dot.cpp picks a path at run time, so the binary runs on any CPU of the
# architecture. One list for every build of the kernels (src/onebit/infer, the fuzz build, the aarch64
# cross build of the kernel test in tests/infer/aarch64). Source file properties belong to a
# directory: call this from the directory whose targets compile the files.
function(onebit_infer_simd_sources out processor)
  set(dir ${CMAKE_CURRENT_FUNCTION_LIST_DIR})
  set(files "")
  if(processor MATCHES "x86_64|AMD64")
    set(files ${dir}/dot_avx2.cpp ${dir}/dot_avx512.cpp ${dir}/gemm_amx.cpp)
    set_source_files_properties(${dir}/dot_avx2.cpp PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mf16c")
    set_source_files_properties(${dir}/dot_avx512.cpp PROPERTIES
      COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni")
    set_source_files_properties(${dir}/gemm_amx.cpp PROPERTIES
      COMPILE_OPTIONS "-mavx2;-mfma;-mf16c;-mavx512f;-mavx512bw;-mavx512vl;-mavx512vnni;-mamx-tile;-mamx-int8")
  elseif(processor MATCHES "aarch64|arm64|ARM64")
    set(files ${dir}/dot_neon.cpp)
    set_source_files_properties(${dir}/dot_neon.cpp PROPERTIES COMPILE_OPTIONS "-march=armv8.2-a+dotprod")
  endif()
  set(${out} ${files} PARENT_SCOPE)
endfunction()
