# The Parquet reader's sources (relative to src/onebit/formats) and the codec libraries it links; the
# fuzz harness (tests/fuzz) compiles onebit_formats' sources again with sanitizers and links these.
set(ONEBIT_PARQUET_SOURCES
  parquet/thrift_compact.cpp
  parquet/metadata.cpp
  parquet/codecs.cpp
  parquet/level_decoder.cpp
  parquet/plain_values.cpp
  parquet/delta_values.cpp
  parquet/column_reader.cpp
  parquet/file_reader.cpp)
set(ONEBIT_PARQUET_LIBS PkgConfig::SNAPPY PkgConfig::LZ4 PkgConfig::BROTLIDEC PkgConfig::ZSTD ZLIB::ZLIB)
