# stack-stream data throughput: bench/stream_throughput.sh runs this against tests/hub/fake_hub.py.
if(TARGET onebit_stream)
  add_executable(bench_stream ${CMAKE_CURRENT_LIST_DIR}/stream_throughput.cpp)
  target_link_libraries(bench_stream PRIVATE onebit_stream onebit_data onebit_hub onebit_core)
endif()
