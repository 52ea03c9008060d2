# Tokenizer throughput: bench/tokenizer_speed.py runs this binary and HF `tokenizers` on the same text.
if(TARGET onebit_data)
  add_executable(bench_tokenizer ${CMAKE_CURRENT_LIST_DIR}/tokenizer_bench.cpp)
  target_link_libraries(bench_tokenizer PRIVATE onebit_data OpenMP::OpenMP_CXX)
endif()
