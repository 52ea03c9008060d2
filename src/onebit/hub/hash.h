#pragma once
// Content checks for downloaded files (OpenSSL libcrypto): the sha256 that the Hub's tree API
// reports for LFS files, and the git blob id it reports for files stored in git itself.
#include <filesystem>
#include <string>

namespace onebit::hub {

std::string sha256_file_hex(const std::filesystem::path& path);
// sha1("blob <size>\0" + content): the `oid` of a non-LFS file in the tree API.
std::string git_blob_sha1_file_hex(const std::filesystem::path& path);

}  // namespace onebit::hub
