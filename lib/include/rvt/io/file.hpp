// Whole-file reads that never allocate more than the file holds, and atomic writes.
//
// Atomic write: the bytes go to a temp file in the destination's directory, which is
// flushed (fsync) and then renamed over the destination. On any failure the temp file
// is removed and the previous destination file, if any, is left untouched. A link's target
// is what gets replaced; devices, pipes and the process's own descriptors (/dev/stdout) are
// written into instead (docs/hardening.md, "What is never written partially").
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace rvt::io {

// Reads a regular file. Throws rvt::Error(kIo) naming the path for a missing,
// unreadable or non-regular file (a directory, say). max_bytes guards against
// reading something huge by mistake.
std::vector<std::uint8_t> read_file(const std::string& path,
                                    std::uint64_t max_bytes = std::uint64_t{1} << 36);

// The first `count` bytes of a regular file (fewer if it is shorter) and its whole size, with
// read_file's errors: for deciding about a file from its header before reading all of it.
struct FileHead {
  std::vector<std::uint8_t> bytes;
  std::uint64_t file_bytes = 0;
};
FileHead read_head(const std::string& path, std::size_t count);

// Reads `count` bytes from `offset` in chunks of up to `chunk` bytes, handing each to `sink`
// with its offset from `offset`; read_file's errors, and kIo where the file ends early.
void read_chunks(const std::string& path, std::uint64_t offset, std::uint64_t count, std::size_t chunk,
                 const std::function<void(std::uint64_t, std::span<const std::uint8_t>)>& sink);

// Writes bytes atomically (see above). If overwrite is false and path exists,
// throws rvt::Error(kIo) without touching anything.
void write_file_atomic(const std::string& path, std::span<const std::uint8_t> bytes,
                       bool overwrite = true);
void write_file_atomic(const std::string& path, const std::string& text, bool overwrite = true);
// The same for a file made of several parts, written one after the other.
void write_file_atomic(const std::string& path, std::initializer_list<std::span<const std::uint8_t>> parts,
                       bool overwrite = true);

// Makes SIGINT, SIGTERM, SIGHUP and SIGXFSZ (a file-size limit) remove the temp file of a write
// in progress before the process ends by the signal as usual (Ctrl-C during a large --out
// left NAME.tmp.XXXXXX behind). Signals that are ignored or already handled are left alone.
// For a process's main(): it installs signal handlers.
void remove_temp_files_on_signals();

// Throws the io error (exit 4) that writing `path` with write_file_atomic would meet in its
// directory (missing, not a directory, not writable: a temp file is made there and removed),
// so a command can refuse an output before its work instead of after. Devices, pipes and
// this process's descriptors pass. A full disk still shows only when written.
void check_writable(const std::string& path);

// Whether write_file_atomic replaces `path` through a temp file (a regular file or a new one),
// rather than writing into a descriptor, device or pipe. Never throws (false where it would).
bool replaces_file(const std::string& path) noexcept;

// Whether writing `path` writes this process's stdout (/dev/stdout, /dev/fd/1, ...). Never throws.
bool names_stdout(const std::string& path) noexcept;

// Whether writing `a` would overwrite the regular file `b` names: the same inode when both
// exist, else the same absolute, normalised path where writing would create the file (links
// followed, a dangling one to its target).
// Devices, pipes, and `a` as one of this process's descriptors (/dev/null, /dev/stdout) never
// count: writing them destroys nothing. `b` as a descriptor counts as the file it is open on
// (`--q /dev/stdin < q.npy --out q.npy`). Never throws (a link loop is "not the same").
bool same_file(const std::string& a, const std::string& b) noexcept;

}  // namespace rvt::io
