#include "onebit/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "onebit/core/error.h"
#include "onebit/core/log.h"
#include "onebit/formats/safetensors.h"
#include "onebit/modeldir/model_dir.h"
#include "onebit/modeldir/weights.h"

namespace onebit::train {

namespace {

void write_optimizer(const fs::path& path, model::Transformer& model, AdamW& opt) {
  formats::SafetensorsWriter w;
  auto m = opt.exp_avg();
  auto v = opt.exp_avg_sq();
  for (const auto& p : model.params_info()) {
    w.add_f32(p.name + ".exp_avg", p.shape, m.data() + p.offset);
    w.add_f32(p.name + ".exp_avg_sq", p.shape, v.data() + p.offset);
  }
  w.set_metadata("optimizer", "adamw");
  w.set_metadata("step", std::to_string(opt.steps_taken()));
  w.write(path);
}

void read_optimizer(const fs::path& path, model::Transformer& model, AdamW& opt) {
  formats::SafetensorsFile f(path);
  auto m = opt.exp_avg();
  auto v = opt.exp_avg_sq();
  for (const auto& p : model.params_info()) {
    const std::pair<const char*, std::span<float>> slots[] = {{".exp_avg", m}, {".exp_avg_sq", v}};
    for (const auto& [suffix, arena] : slots) {
      std::string name = p.name + suffix;
      if (!f.contains(name)) fail(path.string(), ": tensor \"", name, "\" is missing");
      f.read_f32(name, p.shape, arena.subspan(p.offset, p.numel));
    }
  }
}

bool is_step_dir(const std::string& name) {
  return name.size() > 5 && name.compare(0, 5, "step-") == 0 &&
         std::all_of(name.begin() + 5, name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%06lld", static_cast<long long>(step));
  return buf;
}

fs::path save_checkpoint(const fs::path& output_dir, int64_t step, model::Transformer& model, AdamW& opt,
                         const json& trainer_state, const std::string& tokenizer_json, int keep) {
  const fs::path root = output_dir / "checkpoints";
  fs::create_directories(root);
  const std::string name = checkpoint_name(step);
  const fs::path final_dir = root / name;
  const fs::path tmp = root / cat(".tmp-", name, "-", ::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    modeldir::save_model_dir(tmp, model, tokenizer_json);
    write_optimizer(tmp / "optimizer.safetensors", model, opt);
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

  if (keep > 0) {
    std::vector<std::string> steps;
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory() && is_step_dir(e.path().filename().string())) steps.push_back(e.path().filename().string());
    std::sort(steps.begin(), steps.end());
    for (size_t i = 0; i + static_cast<size_t>(keep) < steps.size(); ++i)
      if (steps[i] != name) fs::remove_all(root / steps[i]);
  }
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

json load_checkpoint(const fs::path& dir, model::Transformer& model, AdamW& opt) {
  if (!fs::is_directory(dir)) fail(dir.string(), ": checkpoint dir not found");
  for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"})
    if (!fs::exists(dir / f)) fail((dir / f).string(), ": missing from the checkpoint");
  modeldir::check_same_config(dir, model.config());
  const fs::path sp = dir / "trainer_state.json";
  json state = read_json_file(sp);
  if (!state.is_object()) fail(sp.string(), ": not a JSON object");
  json_get<int64_t>(state, "step", sp.string());
  modeldir::load_weights(dir / "model.safetensors", model);
  read_optimizer(dir / "optimizer.safetensors", model, opt);
  const json adam = json_get<json>(state, "optimizer", sp.string());
  opt.set_steps_taken(json_get<int64_t>(adam, "t", sp.string() + ": optimizer"));
  return state;
}

}  // namespace onebit::train
