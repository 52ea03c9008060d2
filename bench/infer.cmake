# Inference runtime benchmarks: kernel rates per path and layout; the model-level figures come from
# `onebit bench` (bench/infer_bench.sh).
if(TARGET onebit_infer)
  add_executable(bench_infer_kernels ${CMAKE_CURRENT_LIST_DIR}/infer_kernels.cpp)
  target_link_libraries(bench_infer_kernels PRIVATE onebit_infer)
endif()
