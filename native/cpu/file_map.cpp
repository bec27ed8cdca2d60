// FileMapping (file_map.h): a read-only private mapping of a whole file, followed by one anonymous
// zero page: a tensor at the very end of the file then has readable slack past its last byte, as the
// buffers from CpuEngine::alloc() have (64 bytes), so a vector load running a few bytes over reads zeros.
#include "file_map.h"

#include <cerrno>
#include <cstring>
#include <new>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define TM_HAVE_MMAP 1
#endif

namespace tmill { namespace cpu {

#if defined(TM_HAVE_MMAP)

bool file_mapping_supported() { return true; }

Status FileMapping::open(const char* path, int64_t expected_bytes, std::shared_ptr<FileMapping>* out) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  TM_CHECK_ARG(fd >= 0, "mapFile: cannot open %s: %s", path, std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
    ::close(fd);
    TM_CHECK_ARG(false, "mapFile: %s is not a non-empty regular file", path);
  }
  const int64_t size = static_cast<int64_t>(st.st_size);
  if (expected_bytes >= 0 && size != expected_bytes) {
    ::close(fd);
    TM_CHECK_RANGE(false, "mapFile: %s has %lld bytes, its header was read from %lld (changed since)", path,
                   static_cast<long long>(size), static_cast<long long>(expected_bytes));
  }
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t file_span = (static_cast<size_t>(size) + page - 1) / page * page;
  const size_t reserved = file_span + page;
  // Reserve the span plus a zero page, then map the file over its start (MAP_FIXED inside our own reservation).
  void* base = mmap(nullptr, reserved, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    ::close(fd);
    TM_CHECK(false, kOutOfMemory, "mapFile: cannot reserve %zu bytes of address space: %s", reserved, std::strerror(errno));
  }
  void* mapped = mmap(base, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file referenced
  if (mapped == MAP_FAILED) {
    munmap(base, reserved);
    TM_CHECK(false, kOutOfMemory, "mapFile: cannot map %s: %s", path, std::strerror(map_errno));
  }
#if defined(MADV_WILLNEED)
  // Start reading the file in now (asynchronous readahead): every weight is read by the first forward pass.
  (void)madvise(base, static_cast<size_t>(size), MADV_WILLNEED);
#endif
  FileMapping* m = new (std::nothrow) FileMapping(static_cast<char*>(base), size, reserved);
  if (m == nullptr) {
    munmap(base, reserved);
    TM_CHECK(false, kOutOfMemory, "mapFile: out of memory");
  }
  *out = std::shared_ptr<FileMapping>(m);
  return Status::Ok();
}

FileMapping::~FileMapping() { munmap(base_, reserved_); }

#else

bool file_mapping_supported() { return false; }

Status FileMapping::open(const char*, int64_t, std::shared_ptr<FileMapping>*) {
  TM_CHECK_ARG(false, "mapFile: memory-mapped files are not supported on this platform");
}

FileMapping::~FileMapping() {}

#endif

}}  // namespace tmill::cpu
