#pragma once
// The Hugging Face access token: where it comes from, and keeping it out of every message.
// Resolution order (first non-empty wins): --token, HF_TOKEN, HF_ACCESS_TOKEN, HF_TOKEN or
// HF_ACCESS_TOKEN in a `.env` file in the working directory, then the token file that the
// `huggingface_hub` CLI writes (`hf auth login`): $HF_TOKEN_PATH, else $HF_HOME/token, else
// $XDG_CACHE_HOME/huggingface/token, else ~/.cache/huggingface/token.
// The value is never printed or logged: only its source ("HF_TOKEN", "/path/.env") may be.
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace onebit::hub {

struct HubToken {
  std::string value;
  std::string source;  // where it was found, safe to print
};

// Looks a variable up in the environment; injectable so tests need not touch the real one.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_env();

// `flag` is the --token value ("" when not given); `working_dir` is where `.env` is looked for.
std::optional<HubToken> resolve_token(const std::string& flag, const EnvLookup& env,
                                      const std::filesystem::path& working_dir);

// The token file path that huggingface_hub uses under `env` (even if it does not exist).
std::filesystem::path hf_token_file_path(const EnvLookup& env);

// Replaces every occurrence of `secret` in `text` with "***" (no-op for an empty secret).
std::string redact(std::string_view text, std::string_view secret);

}  // namespace onebit::hub
