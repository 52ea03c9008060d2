// How many tokens per second the stack-stream pipeline can feed a trainer: shards downloaded from
// a Hub (bench/stream_throughput.sh serves the hub fixture with tests/hub/fake_hub.py on
// localhost), decoded, tokenized and cut into B x T batches, with nothing training in between.
// Every epoch downloads the shards again (the budget holds two), so downloads are in the figure.
//   bench_stream <dataset-id> <tokenizer> <tokens> [threads] [B] [T]
// HF_ENDPOINT and HF_TOKEN name the Hub. Prints one JSON line.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/log.h"
#include "onebit/hub/client.h"
#include "onebit/hub/tree.h"
#include "onebit/stream/stream_source.h"

int main(int argc, char** argv) {
  using namespace onebit;
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_stream <dataset-id> <tokenizer> <tokens> [threads] [B] [T]\n");
    return 2;
  }
  try {
    set_log_level(LogLevel::Warn);
    const std::string repo = argv[1];
    const auto tok = data::load_tokenizer(argv[2]);
    const uint64_t want = std::stoull(argv[3]);
    const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
    const int B = argc > 5 ? std::atoi(argv[5]) : 16, T = argc > 6 ? std::atoi(argv[6]) : 1024;

    const hub::HubOptions hub_opts = hub::hub_options_from_env("", hub::process_env(), fs::current_path());
    hub::HubClient client(hub_opts);
    const std::string commit = hub::resolve_dataset_commit(client, repo, "main");
    stream::StreamConfig c;
    c.manifest = stream::manifest_from_listing(hub::list_dataset_files(client, repo, commit));
    uint64_t shard_bytes = 0, largest = 0, second = 0;
    for (const auto& s : c.manifest.shards) {
      shard_bytes += s.size;
      if (s.size > largest)
        std::swap(largest, second), largest = s.size;
      else if (s.size > second)
        second = s.size;
    }
    c.weights = stream::weights_by_bytes(c.manifest);
    c.local_root = fs::temp_directory_path() / cat("onebit-bench-stream-", ::getpid());
    c.budget_bytes = largest + second;
    c.download = stream::DownloaderOptions{hub_opts, repo, commit, 2};
    c.loop_epochs = true;
    c.threads = threads;
    c.seed = 1;

    std::vector<int32_t> in(static_cast<size_t>(B) * T), tg(in.size());
    uint64_t tokens = 0;
    double wait_ms = 0;
    const auto t0 = std::chrono::steady_clock::now();
    json last;
    {
      stream::StreamSource src(c, *tok);
      while (tokens < want) {
        src.next_batch(B, T, in.data(), tg.data());
        tokens += static_cast<uint64_t>(B) * T;
        last = src.step_metrics();
        wait_ms += last["data_wait_ms"].get<double>();
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fs::remove_all(c.local_root);
    std::printf("%s\n", json{{"tokenizer", argv[2]},
                             {"threads", threads},
                             {"batch", {B, T}},
                             {"tokens", tokens},
                             {"seconds", s},
                             {"tokens_per_s", static_cast<double>(tokens) / s},
                             {"epochs_started", last["epoch"].get<uint64_t>() + 1},
                             {"shard_bytes_per_epoch", shard_bytes},
                             {"budget_bytes", c.budget_bytes}}
                            .dump()
                            .c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_stream: %s\n", e.what());
    return 1;
  }
}
