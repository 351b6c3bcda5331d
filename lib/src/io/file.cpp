#include "rvt/io/file.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

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

// A file's parts, written one after the other.
using Parts = std::span<const std::span<const std::uint8_t>>;
void write_parts(int fd, Parts parts, const std::string& path) {
  for (const std::span<const std::uint8_t> part : parts) write_all(fd, part.data(), part.size(), path);
}

// The temp file being written, for remove_temp_files_on_signals' handler: a fixed buffer it
// can read without allocating. One write at a time (the commands write from one thread).
char g_temp_path[PATH_MAX];
std::atomic<bool> g_temp_set{false};  // lock-free, so the handler may read it
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void remove_temp_and_reraise(int sig) {
  if (g_temp_set.load(std::memory_order_acquire)) ::unlink(g_temp_path);  // async-signal-safe, as are the calls below
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  ::raise(sig);  // delivered on return, with the default action: the exit status still says which signal
}

// Registers the temp file for the handler while it exists.
class TempRegistration {
 public:
  explicit TempRegistration(const std::string& path) {
    if (path.empty() || path.size() >= sizeof g_temp_path) return;  // no file, or mkstemp would have failed
    std::memcpy(g_temp_path, path.c_str(), path.size() + 1);
    g_temp_set.store(true, std::memory_order_release);  // the handler sees the whole path once the flag is set
  }
  ~TempRegistration() { g_temp_set.store(false, std::memory_order_release); }
  TempRegistration(const TempRegistration&) = delete;
  TempRegistration& operator=(const TempRegistration&) = delete;
};

// What the C and C++ streams still hold goes out first: a device or descriptor written
// here may be the one they write to (--out /dev/stdout), and the bytes must come in order.
void flush_own_streams() {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
}

// Writes straight into a device or a pipe: it holds no earlier contents to keep.
void write_stream(const std::string& path, Parts parts) {
  flush_own_streams();
  FdGuard guard{::open(path.c_str(), O_WRONLY | O_CLOEXEC)};
  if (guard.fd < 0) throw_io(path + ": cannot open for writing: " + errno_text(errno));
  write_parts(guard.fd, parts, path);
  const int fd = guard.fd;
  guard.fd = -1;
  if (::close(fd) != 0) throw_io(path + ": close failed: " + errno_text(errno));
}

// The descriptor a path names when it is one of this process's own: an entry of its procfs fd
// directory (/proc/self/fd/N, /proc/thread-self/fd/N, and so /dev/fd/N, /dev/stdout and any
// other way there). Through them a redirected stdout (`--out /dev/stdout >> log`) is a regular
// file that must be written at the descriptor's offset (and O_APPEND), not replaced.
std::optional<int> own_descriptor(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::weakly_canonical(std::filesystem::absolute(path, ec).parent_path(), ec);
  if (ec) return std::nullopt;
  for (const char* own : {"/proc/self/fd", "/proc/thread-self/fd"}) {
    if (dir == std::filesystem::weakly_canonical(own, ec)) return std::stoi(name);
  }
  return std::nullopt;
}

// Where `path` leads through symbolic links (the path itself when it is none; a dangling link
// leads to the file it would create), or the descriptor of this process it names on the way.
struct LinkEnd {
  std::filesystem::path target;
  std::optional<int> descriptor;
};
LinkEnd follow_links(const std::string& path) {
  constexpr int kMaxHops = 40;  // Linux's own limit on links followed in one lookup
  std::filesystem::path target = path;
  std::error_code ec;
  for (int hop = 0; hop <= kMaxHops; ++hop) {
    if (const std::optional<int> fd = own_descriptor(target)) return {target, fd};
    if (!std::filesystem::is_symlink(target, ec)) return {target, std::nullopt};
    const std::filesystem::path next = std::filesystem::read_symlink(target, ec);
    if (ec) return {target, std::nullopt};
    target = next.is_absolute() ? next : target.parent_path() / next;
  }
  throw_io(path + ": too many levels of symbolic links");
}

// Writes into one of this process's descriptors that is a regular file, after what the C and
// C++ streams still hold, so that the bytes come in order. Not over earlier contents unless
// `overwrite` (blob init without --force, `>> existing`).
void write_descriptor(int fd, Parts parts, const std::string& path, bool overwrite) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_io(path + ": " + errno_text(errno));
  if (!overwrite && st.st_size > 0) throw_io(path + ": exists (use --force to overwrite)");
  flush_own_streams();
  write_parts(fd, parts, path);
}

// Whether a descriptor of this process is open on a regular file.
bool regular_descriptor(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

constexpr std::size_t kMaxTempStem = 240;

}  // namespace

void remove_temp_files_on_signals() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGXFSZ}) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;  // ignored (nohup) or taken
    struct sigaction sa {};
    sa.sa_handler = remove_temp_and_reraise;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
}

bool names_stdout(const std::string& path) noexcept {
  try {
    return !path.empty() && follow_links(path).descriptor == 1;
  } catch (...) {
    return false;  // a link loop
  }
}

bool same_file(const std::string& a, const std::string& b) noexcept {
  try {
    if (a.empty() || b.empty()) return false;  // names no file
    const LinkEnd ea = follow_links(a), eb = follow_links(b);
    // Writing one of this process's descriptors writes at the descriptor: nothing is replaced.
    // `b` may be one (an input read through /dev/stdin < q.npy): stat finds the file it is open on.
    if (ea.descriptor) return false;
    struct stat sa {}, sb {};
    const bool a_exists = ::stat(a.c_str(), &sa) == 0, b_exists = ::stat(b.c_str(), &sb) == 0;
    if (a_exists && b_exists) return S_ISREG(sa.st_mode) && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (a_exists || b_exists) return false;
    // Neither exists yet: compare where writing them would create a file (a dangling link
    // creates its target), normalised.
    std::error_code ca, cb;
    const auto pa = std::filesystem::weakly_canonical(std::filesystem::absolute(ea.target, ca), ca);
    const auto pb = std::filesystem::weakly_canonical(std::filesystem::absolute(eb.target, cb), cb);
    return !ca && !cb && pa == pb;
  } catch (...) {
    return false;  // a link loop: no file to share, and writing it fails on its own
  }
}

namespace {

// A regular file opened for reading (the caller owns the descriptor), and its size; kIo
// errors naming the path.
int open_regular(const std::string& path, std::uint64_t& size) {
  // O_NONBLOCK: a FIFO with no writer would block the open itself, before fstat can refuse it.
  FdGuard guard{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (guard.fd < 0) throw_io(path + ": cannot open: " + errno_text(errno));
  struct stat st {};
  if (::fstat(guard.fd, &st) != 0) throw_io(path + ": cannot stat: " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) throw_io(path + ": is a directory, not a file");
  if (!S_ISREG(st.st_mode)) throw_io(path + ": not a regular file");
  size = static_cast<std::uint64_t>(st.st_size);
  const int fd = guard.fd;
  guard.fd = -1;
  return fd;
}

// Reads up to bytes.size() bytes from the start; the vector is cut to what was read.
void read_into(int fd, const std::string& path, std::vector<std::uint8_t>& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io(path + ": read failed: " + errno_text(errno));
    }
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
}

}  // namespace

std::vector<std::uint8_t> read_file(const std::string& path, std::uint64_t max_bytes) {
  std::uint64_t size = 0;
  const FdGuard guard{open_regular(path, size)};
  if (size > max_bytes) {
    throw_io(path + ": file is " + std::to_string(size) + " bytes, more than the limit of " +
             std::to_string(max_bytes));
  }
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(size));
  read_into(guard.fd, path, bytes);
  return bytes;
}

void read_chunks(const std::string& path, std::uint64_t offset, std::uint64_t count, std::size_t chunk,
                 const std::function<void(std::uint64_t, std::span<const std::uint8_t>)>& sink) {
  std::uint64_t size = 0;
  const FdGuard guard{open_regular(path, size)};
  if (::lseek(guard.fd, static_cast<off_t>(offset), SEEK_SET) < 0) throw_io(path + ": seek failed: " + errno_text(errno));
  std::vector<std::uint8_t> buffer;
  for (std::uint64_t done = 0; done < count;) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, count - done));
    buffer.resize(want);
    read_into(guard.fd, path, buffer);
    if (buffer.size() < want) throw_io(path + ": the file shrank while it was read");
    sink(done, buffer);
    done += want;
  }
}

FileHead read_head(const std::string& path, std::size_t count) {
  FileHead head;
  const FdGuard guard{open_regular(path, head.file_bytes)};
  head.bytes.resize(static_cast<std::size_t>(std::min<std::uint64_t>(count, head.file_bytes)));
  read_into(guard.fd, path, head.bytes);
  return head;
}

namespace {

// Where writing `path` goes: into one of this process's descriptors open on a regular file, into
// a device or pipe (nothing to replace), or to a regular file replaced through a temp file in
// its directory. Throws the io error a write would meet first.
enum class OutputKind { kDescriptor, kStream, kFile };
struct Output {
  OutputKind kind;
  LinkEnd end;  // a link stays a link: the file it leads to is replaced, in that file's directory
  bool exists = false;
  struct stat st {};
};
Output classify_output(const std::string& path) {
  if (path.empty()) throw_io("output path is empty");
  Output out{OutputKind::kFile, follow_links(path)};
  if (out.end.descriptor && regular_descriptor(*out.end.descriptor)) {
    out.kind = OutputKind::kDescriptor;
    return out;
  }  // a pipe or a terminal: opened again, a description of our own (a caller's may be non-blocking)
  out.exists = ::stat(path.c_str(), &out.st) == 0;  // through links
  if (out.exists && S_ISDIR(out.st.st_mode)) throw_io(path + ": is a directory");
  if (out.exists && (S_ISCHR(out.st.st_mode) || S_ISFIFO(out.st.st_mode))) {
    out.kind = OutputKind::kStream;  // /dev/null, /dev/stdout, a pipe
    return out;
  }
  if (out.exists && !S_ISREG(out.st.st_mode)) throw_io(path + ": not a regular file, a character device or a pipe");
  return out;
}

// mkstemp's template for a temp file beside `target`.
std::string temp_template(const std::filesystem::path& target) {
  std::string name = target.filename().string();
  if (name.size() > kMaxTempStem) name.resize(kMaxTempStem);  // NAME_MAX is 255: leave room for the suffix
  return (target.parent_path() / (name + ".tmp.XXXXXX")).string();
}

// Renames tmp to a target that must not exist, in one step: another process that created it
// since the check above (two `blob init` at once) is not replaced. RENAME_NOREPLACE where the
// file system has it, else a hard link, which also fails on an existing name.
void publish_new(const std::string& tmp, const std::filesystem::path& target, const std::string& path) {
  int rc = ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_NOREPLACE);
  if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
    rc = ::link(tmp.c_str(), target.c_str());
    if (rc == 0) ::unlink(tmp.c_str());
  }
  if (rc != 0 && (errno == EPERM || errno == ENOTSUP || errno == ENOSYS)) {
    // No hard links either (some FUSE file systems): the check before, then a plain rename.
    struct stat st {};
    if (::lstat(target.c_str(), &st) == 0) errno = EEXIST;
    else rc = ::rename(tmp.c_str(), target.c_str());
  }
  if (rc != 0 && errno == EEXIST) throw_io(path + ": exists (use --force to overwrite)");
  if (rc != 0) throw_io(path + ": cannot rename temp file into place: " + errno_text(errno));
}

[[noreturn]] void throw_no_temp(const std::string& path, const std::filesystem::path& target, int err) {
  const std::string dir = target.parent_path().empty() ? "." : target.parent_path().string();
  throw_io(path + ": cannot create temp file in " + dir + ": " + errno_text(err));
}

}  // namespace

bool replaces_file(const std::string& path) noexcept {
  try {
    return classify_output(path).kind == OutputKind::kFile;
  } catch (...) {
    return false;
  }
}

void check_writable(const std::string& path) {
  const Output out = classify_output(path);
  if (out.kind != OutputKind::kFile) return;
  std::string tmpl = temp_template(out.end.target);
  FdGuard guard{::mkstemp(tmpl.data())};
  const TempRegistration registration(guard.fd >= 0 ? tmpl : std::string());  // a signal now removes it too
  if (guard.fd < 0) throw_no_temp(path, out.end.target, errno);
  ::unlink(tmpl.c_str());
}

void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes, bool overwrite) {
  write_file_atomic(path, {bytes}, overwrite);
}

void write_file_atomic(const std::string& path, std::initializer_list<std::span<const std::uint8_t>> part_list,
                       bool overwrite) {
  const Parts parts(part_list.begin(), part_list.size());
  const Output out = classify_output(path);
  if (out.kind == OutputKind::kDescriptor) {
    write_descriptor(*out.end.descriptor, parts, path, overwrite);
    return;
  }
  if (out.kind == OutputKind::kStream) {
    write_stream(path, parts);
    return;
  }
  const bool exists = out.exists;
  const struct stat& st = out.st;
  struct stat link_st {};
  if (!overwrite && (exists || ::lstat(path.c_str(), &link_st) == 0)) {
    throw_io(path + ": exists (use --force to overwrite)");
  }
  const std::filesystem::path& target = out.end.target;
  std::string tmpl = temp_template(target);
  FdGuard guard{::mkstemp(tmpl.data())};
  const TempRegistration registration(guard.fd >= 0 ? tmpl : std::string());  // first: a signal from here on removes it
  if (guard.fd < 0) throw_no_temp(path, target, errno);
  const std::string tmp = tmpl;
  try {
    write_parts(guard.fd, parts, path);
    if (::fsync(guard.fd) != 0) throw_io(path + ": flush failed: " + errno_text(errno));
    // mkstemp creates 0600: a replaced file keeps its permission bits (not setuid/setgid:
    // the contents are new), a new one gets the usual ones (umask applies).
    mode_t mode = 0;
    if (exists) {
      mode = st.st_mode & 0777;
    } else {
      const mode_t mask = ::umask(0);
      ::umask(mask);
      mode = 0666 & ~mask;
    }
    ::fchmod(guard.fd, mode);
    const int fd = guard.fd;
    guard.fd = -1;
    if (::close(fd) != 0) throw_io(path + ": close failed: " + errno_text(errno));
    if (overwrite) {
      if (::rename(tmp.c_str(), target.c_str()) != 0) throw_io(path + ": cannot rename temp file into place: " + errno_text(errno));
    } else {
      publish_new(tmp, target, path);
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
