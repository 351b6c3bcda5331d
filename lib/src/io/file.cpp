#include "rvt/io/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "rvt/core/error.hpp"

namespace rvt::io {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Closes a descriptor on scope exit; the atomic writer also unlinks its temp file
// unless told the rename succeeded.
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

void write_all(int fd, const std::uint8_t* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io(path + ": write failed: " + errno_text(errno));
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::uint8_t> read_file(const std::string& path, std::uint64_t max_bytes) {
  FdGuard guard{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (guard.fd < 0) throw_io(path + ": cannot open: " + errno_text(errno));
  struct stat st {};
  if (::fstat(guard.fd, &st) != 0) throw_io(path + ": cannot stat: " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) throw_io(path + ": is a directory, not a file");
  if (!S_ISREG(st.st_mode)) throw_io(path + ": not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > max_bytes) {
    throw_io(path + ": file is " + std::to_string(size) + " bytes, more than the limit of " +
             std::to_string(max_bytes));
  }
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(guard.fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io(path + ": read failed: " + errno_text(errno));
    }
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes,
                       bool overwrite) {
  if (path.empty()) throw_io("output path is empty");
  if (!overwrite && path_exists(path)) {
    throw_io(path + ": exists (use --force to overwrite)");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw_io(path + ": is a directory");
  }
  std::string tmpl = path + ".tmp.XXXXXX";
  FdGuard guard{::mkstemp(tmpl.data())};
  if (guard.fd < 0) throw_io(path + ": cannot create temp file: " + errno_text(errno));
  const std::string tmp = tmpl;
  try {
    write_all(guard.fd, bytes.data(), bytes.size(), path);
    if (::fsync(guard.fd) != 0) throw_io(path + ": flush failed: " + errno_text(errno));
    // mkstemp creates 0600; give the file the usual permissions (umask applies).
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(guard.fd, 0666 & ~mask);
    const int fd = guard.fd;
    guard.fd = -1;
    if (::close(fd) != 0) throw_io(path + ": close failed: " + errno_text(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      throw_io(path + ": cannot rename temp file into place: " + errno_text(errno));
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

void write_file_atomic(const std::string& path, const std::string& text, bool overwrite) {
  write_file_atomic(path,
                    std::span<const std::uint8_t>(
                        reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                    overwrite);
}

}  // namespace rvt::io
