# Model benchmarks (figures for docs/benchmarks; not tests).
if(TARGET onebit_model)
  add_executable(bench_model_step ${CMAKE_CURRENT_LIST_DIR}/model_step.cpp)
  target_link_libraries(bench_model_step PRIVATE onebit_model onebit_source_dir)
  add_executable(bench_gemm_shapes ${CMAKE_CURRENT_LIST_DIR}/gemm_shapes.cpp)
  target_link_libraries(bench_gemm_shapes PRIVATE onebit_model onebit_source_dir)
  add_executable(bench_checkpoint_memory ${CMAKE_CURRENT_LIST_DIR}/model_memory.cpp)
  target_link_libraries(bench_checkpoint_memory PRIVATE onebit_model onebit_source_dir)
endif()
