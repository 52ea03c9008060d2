# The GGUF reader and writer (relative to src/onebit/formats); the fuzz harness compiles them again.
set(ONEBIT_GGUF_SOURCES
  gguf/types.cpp
  gguf/half.cpp
  gguf/value.cpp
  gguf/ternary_blocks.cpp
  gguf/dequantize.cpp
  gguf/writer.cpp
  gguf/reader.cpp)
