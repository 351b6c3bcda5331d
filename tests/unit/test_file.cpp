// Whole-file writes (rvt/io/file.hpp): what a destination that is not a plain new file gets.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "rvt/io/file.hpp"
#include "test_support.hpp"

using namespace rvt;
using rvt::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  const auto bytes = io::read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

bool has_temp_files(const TempDir& dir) {
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("same_file: one inode or one normalised path, never a device") {
  TempDir dir;
  io::write_file_atomic(dir.file("a"), std::string("a"));
  fs::create_directory(dir.path / "sub");
  fs::create_hard_link(dir.path / "a", dir.path / "hard");
  CHECK(io::same_file(dir.file("a"), dir.file("a")));
  CHECK(io::same_file(dir.file("a"), dir.file("sub/../a")));
  CHECK(io::same_file(dir.file("a"), dir.file("hard")));
  CHECK_FALSE(io::same_file(dir.file("a"), dir.file("b")));
  CHECK(io::same_file(dir.file("new"), dir.file("sub/../new")));  // neither exists yet
  CHECK_FALSE(io::same_file(dir.file("new"), dir.file("other")));
  CHECK_FALSE(io::same_file("/dev/null", "/dev/null"));
  CHECK_FALSE(io::same_file("/dev/stdout", "/dev/fd/1"));  // written at the descriptor, in turn
  fs::create_symlink("loop", dir.path / "loop");
  CHECK_FALSE(io::same_file(dir.file("loop"), dir.file("loop")));  // and no throw
  fs::create_symlink("target-to-be", dir.path / "dangling");  // writing it creates target-to-be
  CHECK(io::same_file(dir.file("dangling"), dir.file("target-to-be")));
}

TEST_CASE("write_file_atomic: a link stays a link, its target is replaced") {
  TempDir dir;
  io::write_file_atomic(dir.file("target"), std::string("old"));
  fs::create_symlink("target", dir.path / "link");
  fs::create_symlink("absent", dir.path / "dangling");
  io::write_file_atomic(dir.file("link"), std::string("new"));
  io::write_file_atomic(dir.file("dangling"), std::string("made"));
  CHECK(fs::is_symlink(dir.path / "link"));
  CHECK(read_text(dir.file("target")) == "new");
  CHECK(fs::is_symlink(dir.path / "dangling"));
  CHECK(read_text(dir.file("absent")) == "made");
  CHECK_FALSE(has_temp_files(dir));
  // Without overwrite a link counts as existing, dangling or not.
  fs::create_symlink("nothing", dir.path / "still-dangling");
  REQUIRE_THROWS_WITH(io::write_file_atomic(dir.file("still-dangling"), std::string("x"), false),
                      Catch::Contains("exists (use --force to overwrite)"));
  CHECK_FALSE(fs::exists(dir.path / "nothing"));
  // A loop is an error, and stays a loop.
  fs::create_symlink("loop-b", dir.path / "loop-a");
  fs::create_symlink("loop-a", dir.path / "loop-b");
  REQUIRE_THROWS_WITH(io::write_file_atomic(dir.file("loop-a"), std::string("x")),
                      Catch::Contains("too many levels of symbolic links"));
  CHECK(fs::is_symlink(dir.path / "loop-a"));
}

TEST_CASE("write_file_atomic: a pipe is written into, not replaced") {
  TempDir dir;
  const std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opened for reading (non-blocking) first, so the writer's open does not wait.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);
  io::write_file_atomic(fifo, std::string("through"));
  char buf[16] = {};
  const ssize_t n = ::read(reader, buf, sizeof buf);
  ::close(reader);
  CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "through");
  struct stat st {};
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
}

TEST_CASE("write_file_atomic: replaced files keep their mode, and 255-byte names work") {
  TempDir dir;
  const std::string path = dir.file("kept");
  io::write_file_atomic(path, std::string("old"));
  REQUIRE(::chmod(path.c_str(), 0604) == 0);  // no umask gives this: a new file would not get it
  io::write_file_atomic(path, std::string("new"));
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0604);

  const std::string longest = dir.file(std::string(255, 'n'));
  io::write_file_atomic(longest, std::string("long"));
  CHECK(read_text(longest) == "long");
  CHECK_FALSE(has_temp_files(dir));
}
