# The Hugging Face tokenizer.json implementation; included into target onebit_data by
# src/onebit/data/CMakeLists.txt (paths relative to src/onebit/data).
set(ONEBIT_HF_TOKENIZER_SOURCES
  hf/added_vocabulary.cpp
  hf/bpe_model.cpp
  hf/decoders.cpp
  hf/hf_tokenizer.cpp
  hf/normalizers.cpp
  hf/pieces.cpp
  hf/post_processors.cpp
  hf/pre_tokenizers.cpp
  hf/regex.cpp
  hf/unicode.cpp)
