#include "onebit/data/tokenize_files.h"

#include <unistd.h>

#include <chrono>
#include <cmath>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/core/progress.h"
#include "onebit/data/parallel_tokenizer.h"
#include "onebit/data/token_file.h"

namespace onebit::data {

fs::path val_tokens_path(const fs::path& tokens_path) {
  fs::path p = tokens_path;
  std::string stem = p.extension() == ".tokens" ? p.stem().string() : p.filename().string();
  return p.replace_filename(stem + ".val.tokens");
}

void check_output_dir(const fs::path& output, const std::string& flag) {
  const fs::path dir = output.parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec))
    fail(flag, " ", output.string(), ": directory ", dir.string(), fs::exists(dir, ec) ? " is not a directory" : " does not exist");
}

std::string input_name(const std::string& input) { return input == "-" ? "<stdin>" : input; }

namespace {

uint64_t total_input_bytes(const std::vector<fs::path>& files) {
  uint64_t total = 0;
  for (const auto& f : files) {
    std::error_code ec;
    if (f == "-") return 0;  // unknown
    auto n = fs::file_size(f, ec);
    if (!ec) total += n;
  }
  return total;
}

void copy_range(const TokenFile& src, uint64_t begin, uint64_t end, TokenFileWriter& dst) {
  std::vector<int32_t> buf(1 << 18);
  for (uint64_t s = begin; s < end; s += buf.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - s));
    src.read(s, n, buf.data());
    dst.append(std::span<const int32_t>(buf.data(), n));
  }
}

}  // namespace

TokenizeResult tokenize_files(const TokenizeOptions& opts, const Tokenizer& tok) {
  if (opts.output.empty()) fail("tokenize: --output is required");
  if (opts.inputs.empty()) fail("tokenize: no --input given");
  if (!(opts.val_fraction >= 0.0 && opts.val_fraction < 1.0))
    fail("tokenize: --val-fraction must be in [0, 1), got ", opts.val_fraction);
  check_output_dir(opts.output, "--output");
  auto files = expand_inputs(opts.inputs);
  const auto t0 = std::chrono::steady_clock::now();
  const std::optional<int32_t> eos = tok.eos_id();
  if (!eos) log_warn("tokenizer has no end-of-text token: documents are concatenated without a separator");

  const bool split = opts.val_fraction > 0.0;
  // With a split, everything goes to a scratch file first: where the split falls is known only at the end.
  fs::path first_path = opts.output;
  if (split) first_path += cat(".all-", ::getpid());
  TokenizeResult res;
  std::vector<uint64_t> doc_ends;  // token count after each document (split candidates)
  {
    TokenFileWriter w(first_path, static_cast<uint32_t>(tok.vocab_size()), tok.hash());
    ReadOptions ro;
    ro.text_field = opts.text_field;
    ro.skip_bad_lines = opts.skip_bad_lines;
    ro.split_text = tok.encodes_line_start_cuts_independently();
    ParallelTokenizer pt(open_documents(files, ro), tok, opts.threads);
    const uint64_t total = total_input_bytes(files);
    ProgressBar bar("tokenize", total, "MB/s", 1e-6);
    std::vector<TokenizedDoc> batch;
    while (pt.next(batch)) {
      for (auto& d : batch) {
        w.append(d.ids);
        res.input_bytes += d.text_bytes;
        if (d.ends_document) {
          if (eos) w.append(std::span<const int32_t>(&*eos, 1));
          ++res.documents;
          if (split) doc_ends.push_back(w.count());
        }
      }
      if (opts.progress) bar.update(pt.raw_bytes_read(), cat(res.documents, " docs, ", w.count(), " tokens"));
    }
    res.read = pt.stats();
    res.tokens = w.count();
    if (opts.progress) bar.finish(cat(res.documents, " docs, ", res.tokens, " tokens"));
    if (res.tokens == 0)
      fail(opts.inputs.size() == 1 ? input_name(opts.inputs[0]) : std::string("tokenize inputs"),
           ": no text found (empty files, or every line skipped)");
    if (split && res.documents < 2)
      fail("tokenize: --val-fraction needs at least 2 documents, but the input has ", res.documents,
           " (a .txt file is one document; pass several files or JSONL)");
    w.commit();
  }
  res.train_path = opts.output;
  if (!split) {
    res.train_tokens = res.tokens;
  } else {
    struct Remove {
      fs::path p;
      ~Remove() {
        std::error_code ec;
        fs::remove(p, ec);
      }
    } cleanup{first_path};
    // The document boundary closest to the requested split, keeping >= 1 document on each side.
    const double want = (1.0 - opts.val_fraction) * static_cast<double>(res.tokens);
    size_t best = 0;
    for (size_t i = 0; i + 1 < doc_ends.size(); ++i)
      if (std::abs(static_cast<double>(doc_ends[i]) - want) < std::abs(static_cast<double>(doc_ends[best]) - want))
        best = i;
    const uint64_t cut = doc_ends[best];
    TokenFile all(first_path);
    res.val_path = val_tokens_path(opts.output);
    TokenFileWriter tw(opts.output, static_cast<uint32_t>(tok.vocab_size()), tok.hash());
    copy_range(all, 0, cut, tw);
    TokenFileWriter vw(res.val_path, static_cast<uint32_t>(tok.vocab_size()), tok.hash());
    copy_range(all, cut, res.tokens, vw);
    // The validation file first: should either commit fail, no train file claims a split it lacks.
    vw.commit();
    tw.commit();
    res.train_tokens = cut;
    res.val_tokens = res.tokens - cut;
    res.val_documents = doc_ends.size() - (best + 1);
    const double got = static_cast<double>(res.val_tokens) / static_cast<double>(res.tokens);
    if (std::abs(got - opts.val_fraction) > 0.5 * opts.val_fraction)
      log_warn("tokenize: the validation split holds ", 100.0 * got, "% of the tokens (asked for ",
               100.0 * opts.val_fraction, "%): the split falls between documents and there are only ",
               res.documents, " of them");
  }
  if (res.read.bad_lines) log_warn("skipped ", res.read.bad_lines, " bad lines (--skip-bad-lines)");
  if (res.read.replaced_utf8)
    log_warn("replaced ", res.read.replaced_utf8, " invalid UTF-8 sequences with U+FFFD (--skip-bad-lines)");
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace onebit::data
