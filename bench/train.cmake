# End-to-end training benchmarks are scripts (they run the onebit binary and a PyTorch peer).
# `ninja bench_train_throughput` runs bench/train_throughput.sh with this build's binary.
if(TARGET onebit)
  add_custom_target(bench_train_throughput
    COMMAND ${CMAKE_COMMAND} -E env ONEBIT_BINARY=$<TARGET_FILE:onebit> ${CMAKE_CURRENT_SOURCE_DIR}/train_throughput.sh
    DEPENDS onebit
    USES_TERMINAL
    COMMENT "CPU training throughput: onebit vs PyTorch eager and torch.compile (bench/results/train_throughput_<cpu>.json)")
endif()
