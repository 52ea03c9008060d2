#include "onebit/hub/token.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "onebit/core/error.h"

namespace onebit::hub {

namespace {

std::string trim(std::string_view s) {
  const char* ws = " \t\r\n";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(ws);
  return std::string(s.substr(b, e - b + 1));
}

// A token goes into an HTTP header: anything but visible ASCII would let a bad file inject headers.
void check_token_chars(const std::string& token, const std::string& source) {
  for (unsigned char c : token)
    if (c <= 0x20 || c >= 0x7F)
      fail("Hugging Face token from ", printable(source),
           " contains spaces or control characters (the value is not shown)");
}

std::optional<std::string> read_dotenv_token(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  // KEY=VALUE lines with optional `export `, quotes and `#` comments, as python-dotenv reads them.
  std::optional<std::string> hf_token, hf_access_token;
  std::string line;
  while (std::getline(in, line)) {
    std::string l = trim(line);
    if (l.empty() || l[0] == '#') continue;
    if (l.rfind("export ", 0) == 0) l = trim(std::string_view(l).substr(7));
    const size_t eq = l.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = trim(std::string_view(l).substr(0, eq));
    std::string value = trim(std::string_view(l).substr(eq + 1));
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0]) {
      value = value.substr(1, value.size() - 2);
    } else {
      const size_t hash = value.find(" #");
      if (hash != std::string::npos) value = trim(std::string_view(value).substr(0, hash));
    }
    if (key == "HF_TOKEN") hf_token = value;
    if (key == "HF_ACCESS_TOKEN") hf_access_token = value;
  }
  if (hf_token && !hf_token->empty()) return hf_token;
  if (hf_access_token && !hf_access_token->empty()) return hf_access_token;
  return std::nullopt;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

std::filesystem::path hf_token_file_path(const EnvLookup& env) {
  auto nonempty = [&](const char* name) -> std::optional<std::string> {
    auto v = env(name);
    if (v && !v->empty()) return v;
    return std::nullopt;
  };
  if (auto p = nonempty("HF_TOKEN_PATH")) return *p;
  if (auto home = nonempty("HF_HOME")) return std::filesystem::path(*home) / "token";
  if (auto xdg = nonempty("XDG_CACHE_HOME")) return std::filesystem::path(*xdg) / "huggingface" / "token";
  const std::string home = nonempty("HOME").value_or("");
  return std::filesystem::path(home) / ".cache" / "huggingface" / "token";
}

std::optional<HubToken> resolve_token(const std::string& flag, const EnvLookup& env,
                                      const std::filesystem::path& working_dir) {
  std::optional<HubToken> found;
  auto take = [&](std::string value, std::string source) {
    value = trim(value);
    if (found || value.empty()) return;
    check_token_chars(value, source);
    found = HubToken{std::move(value), std::move(source)};
  };
  take(flag, "--token");
  for (const char* name : {"HF_TOKEN", "HF_ACCESS_TOKEN"})
    if (auto v = env(name)) take(*v, name);
  if (!found) {
    const auto dotenv = working_dir / ".env";
    if (auto v = read_dotenv_token(dotenv)) take(*v, dotenv.string());
  }
  if (!found) {
    const auto file = hf_token_file_path(env);
    std::ifstream in(file);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      take(ss.str(), file.string());
    }
  }
  return found;
}

std::string redact(std::string_view text, std::string_view secret) {
  std::string out(text);
  if (secret.empty()) return out;
  size_t pos = 0;
  while ((pos = out.find(secret, pos)) != std::string::npos) {
    out.replace(pos, secret.size(), "***");
    pos += 3;
  }
  return out;
}

}  // namespace onebit::hub
