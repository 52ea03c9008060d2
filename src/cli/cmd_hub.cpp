// onebit hub ls | download: list a Hugging Face dataset repo and download files from it, with the
// same client that streams datasets for training (resumable, checked, retried; src/onebit/hub).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "onebit/core/error.h"
#include "onebit/core/json_util.h"
#include "onebit/core/log.h"
#include "onebit/hub/client.h"
#include "onebit/hub/download.h"
#include "onebit/hub/tree.h"

namespace onebit::cli {
namespace {

struct HubArgs {
  std::string dataset_id, revision = "main", path, token, output;
  int parallel = 4;
  bool json_out = false;
};

void add_common(CLI::App* cmd, HubArgs& a) {
  cmd->add_option("--dataset-id", a.dataset_id, "dataset repo, namespace/name (e.g. bigcode/the-stack)")->required();
  cmd->add_option("--revision", a.revision, "branch, tag or commit")->capture_default_str();
  cmd->add_option("--token", a.token,
                  "access token (else HF_TOKEN, HF_ACCESS_TOKEN, ./.env, or the huggingface_hub token file)");
}

hub::HubOptions options(const HubArgs& a) {
  return hub::hub_options_from_env(a.token, hub::process_env(), std::filesystem::current_path());
}

struct Selection {
  std::string commit;  // --revision pinned, so that the listing and every download see one version
  std::vector<hub::RepoFile> files;
};

// Files of the dataset equal to --path or under it ("" = all).
Selection select_files(const HubArgs& a) {
  hub::check_dataset_id(a.dataset_id);
  std::string prefix = a.path;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!prefix.empty()) hub::check_repo_path(prefix, "--path");
  hub::HubClient client(options(a));
  // The tree API lists folders; a file is found by listing its folder.
  const size_t slash = prefix.rfind('/');
  const std::string folder = slash == std::string::npos ? "" : prefix.substr(0, slash);
  Selection out;
  out.commit = hub::resolve_dataset_commit(client, a.dataset_id, a.revision);
  log_info("dataset ", a.dataset_id, " revision \"", printable(a.revision), "\" is commit ", out.commit);
  for (auto& f : hub::list_dataset_files(client, a.dataset_id, out.commit, folder))
    if (prefix.empty() || f.path == prefix || f.path.rfind(prefix + "/", 0) == 0) out.files.push_back(std::move(f));
  if (out.files.empty() && !prefix.empty())
    fail("--path \"", printable(prefix), "\": no such file or folder in dataset ", a.dataset_id, " at revision \"",
         printable(a.revision), "\"");
  return out;
}

void run_ls(const HubArgs& a) {
  const auto files = select_files(a).files;
  if (a.json_out) {
    json arr = json::array();
    for (const auto& f : files) {
      json e{{"path", f.path}, {"size", f.size}, {"git_oid", f.git_oid}};
      if (f.is_lfs()) e["sha256"] = f.sha256;
      arr.push_back(e);
    }
    std::printf("%s\n", arr.dump(1).c_str());
    return;
  }
  for (const auto& f : files)
    std::printf("%llu\t%s\t%s\n", static_cast<unsigned long long>(f.size),
                f.is_lfs() ? ("sha256:" + f.sha256).c_str() : ("git:" + f.git_oid).c_str(), printable(f.path).c_str());
}

void run_download(const HubArgs& a) {
  const auto [commit, files] = select_files(a);
  hub::download_files(options(a), a.dataset_id, commit, files, a.output,
                      hub::DownloadOptions{.max_parallel = a.parallel, .progress = true});
  uint64_t bytes = 0;
  for (const auto& f : files) bytes += f.size;
  std::printf("downloaded %zu files (%llu bytes) to %s\n", files.size(), static_cast<unsigned long long>(bytes),
              a.output.c_str());
}

}  // namespace

void add_hub_command(CLI::App& app) {
  auto* hub_app = app.add_subcommand("hub", "list and download files of a Hugging Face dataset repo");
  hub_app->require_subcommand(1);
  auto args = std::make_shared<HubArgs>();

  auto* ls = hub_app->add_subcommand("ls", "list the files of a dataset (size, sha256 or git id, path)");
  add_common(ls, *args);
  ls->add_option("--path", args->path, "only this file or folder");
  ls->add_flag("--json", args->json_out, "print a JSON array");
  ls->callback([args] { run_ls(*args); });

  auto* dl = hub_app->add_subcommand("download", "download files (resumable, checked against the Hub's sha256)");
  add_common(dl, *args);
  dl->add_option("--path", args->path, "file or folder to download (omit for the whole dataset)");
  dl->add_option("--output", args->output, "directory the files go to, under their repo paths")->required();
  dl->add_option("--parallel", args->parallel, "files downloaded at once")->capture_default_str();
  dl->callback([args] { run_download(*args); });
}

}  // namespace onebit::cli
