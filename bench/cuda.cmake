# CUDA kernel micro-benchmarks (built with the CUDA backend; run on a GPU by scripts/gpu-check.sh).
if(TARGET onebit_kernels_cuda)
  add_executable(bench_cuda_kernels ${CMAKE_CURRENT_LIST_DIR}/cuda_kernels_bench.cpp)
  target_link_libraries(bench_cuda_kernels PRIVATE onebit_kernels_cuda onebit_train_base onebit_model onebit_core
    onebit_source_dir CUDA::cudart)
endif()
