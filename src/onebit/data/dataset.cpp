#include "onebit/data/dataset.h"

#include <cmath>
#include <cstdlib>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/data/documents.h"
#include "onebit/data/jsonl_stream.h"
#include "onebit/data/tokenize_files.h"

namespace onebit::data {

fs::path default_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "onebit" / "tokens";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache" / "onebit" / "tokens";
  return fs::temp_directory_path() / "onebit-tokens";
}

void check_token_file_matches(const TokenFile& file, const Tokenizer& tok) {
  const auto& h = file.header();
  if (h.tokenizer_hash != tok.hash())
    fail(file.path().string(), " was made with tokenizer hash ", hash_hex(h.tokenizer_hash),
         ", but the model's tokenizer has hash ", hash_hex(tok.hash()),
         "; re-tokenize with onebit tokenize --tokenizer <the model's tokenizer>");
  if (h.vocab_size != static_cast<uint32_t>(tok.vocab_size()))
    fail(file.path().string(), ": vocab size ", h.vocab_size, " differs from the tokenizer's ", tok.vocab_size());
}

fs::path cached_tokens_for_text(const fs::path& path, const Tokenizer& tok, const fs::path& cache_dir, int threads) {
  auto files = expand_inputs({path.string()});
  // Identity of the input: tokenizer + each file's path, size and mtime (cheap; no reread on a hit).
  // "text2": caches from before text pieces were cut only where the tokenizer allows it may hold
  // other ids than encoding the whole file, so they must not be found.
  std::string key = "text2|" + hash_hex(tok.hash());
  for (const auto& f : files) {
    std::error_code ec;
    auto size = fs::file_size(f, ec);
    auto mtime = fs::last_write_time(f, ec).time_since_epoch().count();
    key += cat("|", fs::absolute(f).string(), "|", size, "|", mtime);
  }
  fs::path dir = cache_dir.empty() ? default_cache_dir() : cache_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir.string(), ": cannot create the token cache directory: ", ec.message());
  std::string stem = fs::is_directory(path) ? fs::absolute(path).lexically_normal().filename().string() : path.stem().string();
  if (stem.empty()) stem = "data";
  fs::path cached = dir / cat(stem, "-", hash_hex(fnv1a64(key)), ".tokens");
  if (fs::exists(cached)) {
    try {
      TokenFile f(cached);
      check_token_file_matches(f, tok);
      log_info("data: using cached ", cached.string(), " (", f.size(), " tokens)");
      return cached;
    } catch (const Error& e) {
      log_warn("data: rebuilding the cache: ", e.what());
    }
  }
  TokenizeOptions o;
  o.inputs = {path.string()};
  o.output = cached;
  o.threads = threads;
  auto r = tokenize_files(o, tok);
  log_info("data: tokenized ", path.string(), " → ", cached.string(), " (", r.tokens, " tokens, ", r.seconds, " s)");
  return cached;
}

namespace {

Dataset open_tokens(const fs::path& path, const DataOptions& opts, const Tokenizer& tok, const std::string& shown) {
  auto file = std::make_shared<TokenFile>(path);
  check_token_file_matches(*file, tok);
  Dataset ds;
  fs::path val_path = val_tokens_path(path);
  const uint64_t n = file->size();
  if (opts.val_fraction > 0 && fs::exists(val_path)) {
    auto vfile = std::make_shared<TokenFile>(val_path);
    check_token_file_matches(*vfile, tok);
    ds.train_tokens = n;
    ds.val_tokens = vfile->size();
    ds.train = std::make_unique<RandomWindowSource>(std::make_shared<TokenFileSlice>(file, 0, n), opts.seed,
                                                    cat(shown, " (train, ", n, " tokens)"));
    ds.val = std::make_unique<ValSource>(std::make_shared<TokenFileSlice>(vfile, 0, vfile->size()), tok,
                                         cat(val_path.string(), " (val, ", vfile->size(), " tokens)"));
  } else {
    if (!(opts.val_fraction >= 0 && opts.val_fraction < 1))
      fail("--val-fraction must be in [0, 1), got ", opts.val_fraction);
    uint64_t cut = n - static_cast<uint64_t>(std::llround(opts.val_fraction * static_cast<double>(n)));
    ds.train_tokens = cut;
    ds.val_tokens = n - cut;
    ds.train = std::make_unique<RandomWindowSource>(std::make_shared<TokenFileSlice>(file, 0, cut), opts.seed,
                                                    cat(shown, " (train: first ", cut, " of ", n, " tokens)"));
    if (cut < n)
      ds.val = std::make_unique<ValSource>(std::make_shared<TokenFileSlice>(file, cut, n), tok,
                                           cat(shown, " (val: last ", n - cut, " tokens)"));
  }
  ds.description = ds.train->describe();
  return ds;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Dataset open_dataset(const DataOptions& opts, const Tokenizer& tok) {
  if (opts.path.empty()) fail("--data: no training data given");
  fs::path p(opts.path);
  std::error_code ec;
  if (!fs::exists(p, ec)) fail(opts.path, ": no such file or directory");
  if (!(opts.val_fraction >= 0 && opts.val_fraction < 1))
    fail("--val-fraction must be in [0, 1), got ", opts.val_fraction);
  if (ends_with(opts.path, ".tokens")) return open_tokens(p, opts, tok, opts.path);
  if (!fs::is_directory(p) && input_format_of(p) == InputFormat::Jsonl) return open_jsonl_stream(opts, tok);
  fs::path cached = cached_tokens_for_text(p, tok, opts.cache_dir, opts.threads);
  return open_tokens(cached, opts, tok, opts.path);
}

Dataset open_dataset(const DataOptions& opts) {
  if (!opts.tokenizer) fail("open_dataset: DataOptions::tokenizer is not set");
  return open_dataset(opts, *opts.tokenizer);
}

}  // namespace onebit::data
