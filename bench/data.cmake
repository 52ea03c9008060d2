# Data pipeline throughput (Google Benchmark): JSONL reading (plain / zstd), tokenize to .tokens,
# training batches from .tokens and from streamed JSONL, opening a text file as a dataset (token cache).
if(TARGET onebit_data)
  add_executable(bench_data ${CMAKE_CURRENT_LIST_DIR}/data_pipeline_bench.cpp)
  target_link_libraries(bench_data PRIVATE onebit_data onebit_source_dir benchmark::benchmark PkgConfig::ZSTD)
endif()
