// Fuzzes JSONL training data: the document reader (data/documents, strict and --skip-bad-lines)
// and the streaming dataset (data/jsonl_stream) with the byte tokenizer, a few batches deep.
#include "fuzz_engine.h"
#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/data/byte_tokenizer.h"
#include "onebit/data/documents.h"
#include "onebit/data/jsonl_stream.h"

int main(int argc, char** argv) {
  using namespace onebit;
  set_log_level(LogLevel::Warn);  // every small input wraps around many epochs; their log lines are noise
  auto tok = data::make_byte_tokenizer();
  fuzz::Target t;
  t.name = "jsonl";
  t.input_name = "train.jsonl";
  t.run = [&tok](const fs::path& input) {
    data::DataOptions o;
    o.path = input.string();
    o.val_documents = 1;
    o.threads = 2;
    o.skip_bad_lines = true;
    data::Dataset ds = data::open_jsonl_stream(o, *tok);
    std::vector<int32_t> in(2 * 16), tg(2 * 16);
    for (int b = 0; b < 3; ++b) {
      ds.train->next_batch(2, 16, in.data(), tg.data());
      for (int32_t id : in)
        if (id < 0 || id >= tok->vocab_size()) throw std::logic_error(cat("batch holds id ", id, " outside the vocab"));
    }
    ds.train->restore(ds.train->state());
    // The readers after the stream: the strict one rejects most mutated files.
    for (bool skip : {true, false}) {
      data::ReadOptions ro;
      ro.skip_bad_lines = skip;
      auto r = data::open_documents(input, ro);
      data::Document d;
      uint64_t last = 0;
      while (r->next(d)) {
        if (d.next_offset <= d.offset || d.offset < last) throw std::logic_error("document offsets go backwards");
        last = d.next_offset;
      }
    }
  };
  return fuzz::fuzz_main(argc, argv, t);
}
