# Parquet decode throughput: bench/parquet_bench.py runs this next to pyarrow on the same files.
if(TARGET onebit_formats)
  add_executable(bench_parquet_decode ${CMAKE_CURRENT_LIST_DIR}/parquet_decode_bench.cpp)
  target_link_libraries(bench_parquet_decode PRIVATE onebit_formats)
endif()
