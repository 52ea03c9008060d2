#include "onebit/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/formats/safetensors.h"
#include "onebit/modeldir/model_dir.h"
#include "onebit/modeldir/weights.h"

namespace onebit::train {

namespace {

void write_optimizer(const fs::path& path, model::Transformer& model, const OptimizerMoments& s) {
  OB_CHECK(s.m.size() == model.num_params() && s.v.size() == model.num_params(), "optimizer state of ", s.m.size(),
           " values for ", model.num_params(), " parameters");
  formats::SafetensorsWriter w;
  for (const auto& p : model.params_info()) {
    w.add_f32(p.name + ".exp_avg", p.shape, s.m.data() + p.offset);
    w.add_f32(p.name + ".exp_avg_sq", p.shape, s.v.data() + p.offset);
  }
  w.set_metadata("optimizer", "adamw");
  w.set_metadata("step", std::to_string(s.t));
  w.write(path);
}

void read_optimizer(const fs::path& path, model::Transformer& model, AdamW& opt) {
  formats::SafetensorsFile f(path);
  std::vector<float> m(model.num_params(), 0.0f), v(model.num_params(), 0.0f);
  for (const auto& p : model.params_info()) {
    const std::pair<const char*, std::span<float>> slots[] = {{".exp_avg", m}, {".exp_avg_sq", v}};
    for (const auto& [suffix, arena] : slots) {
      std::string name = p.name + suffix;
      if (!f.contains(name)) fail(path.string(), ": tensor \"", name, "\" is missing");
      f.read_f32(name, p.shape, arena.subspan(p.offset, p.numel));
    }
  }
  opt.upload_state(m, v);  // only once every tensor was read: a bad file leaves the optimizer as it was
}

bool is_step_dir(const std::string& name) {
  return name.size() > 5 && name.size() <= 5 + 19 && name.compare(0, 5, "step-") == 0 &&
         std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "step-000500" -> 500 (names that passed is_step_dir).
int64_t step_of(const std::string& name) { return std::stoll(name.substr(5)); }

// The checkpoints beyond the newest `keep`, by step number: names sort as strings only while
// steps have six digits ("step-1000000" < "step-999999").
void prune_checkpoints(const fs::path& root, const std::string& just_saved, int keep) {
  std::vector<std::pair<int64_t, std::string>> steps;
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && is_step_dir(name)) steps.emplace_back(step_of(name), name);
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < steps.size(); ++i)
    if (steps[i].second != just_saved) fs::remove_all(root / steps[i].second);
}

// A key of the parsed trainer_state.json, type- and range-checked; `where` names the file.
const json& field(const json& obj, const char* key, const std::string& where, const std::string& path = "") {
  auto it = obj.find(key);
  if (it == obj.end()) fail(where, ": missing key \"", path, key, "\"");
  return *it;
}

[[noreturn]] void wrong_type(const json& v, const std::string& key, const char* expected, const std::string& where) {
  fail(where, ": key \"", key, "\" has the wrong type (got ", v.type_name(), ", expected ", expected, ")");
}

int64_t int_in(const json& v, const std::string& key, int64_t lo, int64_t hi, const std::string& where) {
  if (!v.is_number_integer()) wrong_type(v, key, "an integer", where);
  const bool too_big = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi);
  if (too_big || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    fail(where, ": key \"", key, "\" must be in [", lo, ", ", hi, "] (got ", v.dump(), ")");
  return v.get<int64_t>();
}

uint64_t unsigned_of(const json& v, const std::string& key, const std::string& where) {
  if (!v.is_number_integer()) wrong_type(v, key, "an unsigned integer", where);
  if (!v.is_number_unsigned() && v.get<int64_t>() < 0) fail(where, ": key \"", key, "\" must be >= 0 (got ", v.dump(), ")");
  return v.get<uint64_t>();
}

const json& object_of(const json& v, const std::string& key, const std::string& where) {
  if (!v.is_object()) wrong_type(v, key, "an object", where);
  return v;
}

std::string string_of(const json& v, const std::string& key, const std::string& where) {
  if (!v.is_string()) wrong_type(v, key, "a string", where);
  return v.get<std::string>();
}

double finite_of(const json& v, const std::string& key, double lo, const std::string& where) {
  if (!v.is_number()) wrong_type(v, key, "a number", where);
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo) fail(where, ": key \"", key, "\" must be a finite number >= ", lo, " (got ", v.dump(), ")");
  return d;
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%06lld", static_cast<long long>(step));
  return buf;
}

fs::path save_checkpoint(const fs::path& output_dir, int64_t step, model::Transformer& model, AdamW& opt,
                         const json& trainer_state, const std::string& tokenizer_json, int keep) {
  OB_CHECK(opt.shard_count() == opt.num_params(), "save_checkpoint: the AdamW holds a shard of ", opt.shard_count(),
           " of ", opt.num_params(), " values; gather the moments first (DataParallel::gather_moments)");
  OptimizerMoments moments;
  opt.download_state(moments.m, moments.v);
  moments.t = opt.steps_taken();
  return save_checkpoint(output_dir, step, model, moments, trainer_state, tokenizer_json, keep);
}

fs::path save_checkpoint(const fs::path& output_dir, int64_t step, model::Transformer& model,
                         const OptimizerMoments& moments, const json& trainer_state, const std::string& tokenizer_json,
                         int keep) {
  const fs::path root = output_dir / "checkpoints";
  fs::create_directories(root);
  const std::string name = checkpoint_name(step);
  const fs::path final_dir = root / name;
  const fs::path tmp = root / cat(".tmp-", name, "-", ::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    modeldir::save_model_dir(tmp, model, tokenizer_json);
    write_optimizer(tmp / "optimizer.safetensors", model, moments);
    write_json_atomic(tmp / "trainer_state.json", trainer_state);
    sync_directory(tmp);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
  // A dir of the same name exists only when a resumed run passes this step again; `latest` never
  // points at it at this moment (it points at an older step), so replacing it is safe.
  if (fs::exists(final_dir)) fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  sync_directory(root);
  write_file_atomic(root / "latest", name + "\n");

  if (keep > 0) prune_checkpoints(root, name, keep);
  return final_dir;
}

std::optional<fs::path> find_latest_checkpoint(const fs::path& output_dir) {
  const fs::path latest = output_dir / "checkpoints" / "latest";
  if (!fs::exists(latest)) return std::nullopt;
  std::string name = read_file(latest);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  if (!is_step_dir(name)) fail(latest.string(), ": corrupt (expected a checkpoint dir name like step-000500)");
  fs::path dir = output_dir / "checkpoints" / name;
  if (!fs::is_directory(dir)) fail(latest.string(), ": names ", name, " but ", dir.string(), " does not exist");
  return dir;
}

TrainerState parse_trainer_state(const json& state, const std::string& where) {
  if (!state.is_object()) fail(where, ": not a JSON object");
  TrainerState s;
  s.step = int_in(field(state, "step", where), "step", 0, kMaxSteps, where);
  s.tokens_seen = unsigned_of(field(state, "tokens_seen", where), "tokens_seen", where);
  s.data = object_of(field(state, "data", where), "data", where);
  const json& rng = object_of(field(state, "rng", where), "rng", where);
  s.dropout_rng = string_of(field(rng, "dropout", where, "rng."), "rng.dropout", where);
  const bool hex = s.dropout_rng.size() == 64 &&
                   std::all_of(s.dropout_rng.begin(), s.dropout_rng.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  if (!hex || s.dropout_rng.find_first_not_of('0') == std::string::npos)
    fail(where, ": key \"rng.dropout\" must be 64 hex digits, not all zero (got \"", printable(s.dropout_rng, 80), "\")");
  const json& quant = object_of(field(state, "quant", where), "quant", where);
  const std::string phase = string_of(field(quant, "phase", where, "quant."), "quant.phase", where);
  if (phase != "fp" && phase != "soft" && phase != "hard")
    fail(where, ": key \"quant.phase\" must be fp, soft or hard (got \"", printable(phase), "\")");
  finite_of(field(quant, "k", where, "quant."), "quant.k", 0, where);
  finite_of(field(state, "lr", where), "lr", 0, where);
  s.config_hash = unsigned_of(field(state, "config_hash", where), "config_hash", where);
  s.tokenizer_hash = unsigned_of(field(state, "tokenizer_hash", where), "tokenizer_hash", where);
  if (state.contains("threads") && !state["threads"].is_null())
    s.threads = static_cast<int>(int_in(state["threads"], "threads", 1, kMaxThreads, where));
  const json& adam = object_of(field(state, "optimizer", where), "optimizer", where);
  const std::string name = string_of(field(adam, "name", where, "optimizer."), "optimizer.name", where);
  if (name != "adamw") fail(where, ": key \"optimizer.name\" must be \"adamw\" (got \"", printable(name), "\")");
  s.optimizer_steps = int_in(field(adam, "t", where, "optimizer."), "optimizer.t", 0, kMaxSteps, where);
  // AdamW takes exactly one step per optimizer step; another t would skew its bias correction.
  if (s.optimizer_steps != s.step)
    fail(where, ": key \"optimizer.t\" is ", s.optimizer_steps, " but \"step\" is ", s.step, "; they must be equal");
  if (state.contains("world_size"))
    s.world_size = static_cast<int>(int_in(state["world_size"], "world_size", 1, 1 << 20, where));
  s.run = run_options_from_json(field(state, "run", where), where);
  return s;
}

json load_checkpoint(const fs::path& dir, model::Transformer& model, AdamW& opt) {
  if (!fs::is_directory(dir)) fail(dir.string(), ": checkpoint dir not found");
  for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"})
    if (!fs::exists(dir / f)) fail((dir / f).string(), ": missing from the checkpoint");
  modeldir::check_same_config(dir, model.config());
  const fs::path sp = dir / "trainer_state.json";
  json state = read_json_file(sp);
  const TrainerState parsed = parse_trainer_state(state, sp.string());
  modeldir::load_weights(dir / "model.safetensors", model);
  read_optimizer(dir / "optimizer.safetensors", model, opt);
  opt.set_steps_taken(parsed.optimizer_steps);
  return state;
}

}  // namespace onebit::train
