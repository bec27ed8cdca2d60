// A whole file mapped read-only (PROT_READ, MAP_PRIVATE) for weights that are used as stored (GGUF):
// the pages are the kernel's page cache, shared with every process mapping the file and never copied
// into the heap. Owned through shared_ptr: the JS handle, every engine buffer over it and every
// ArrayBuffer view hold one, and the last to go unmaps.
//
// SIGBUS: a page of a mapping whose file was truncated after mapping faults with SIGBUS on access,
// which no check here can turn into an error. open() checks the size the caller parsed against the
// file's size at mapping time; a file truncated later (while a model runs from it) kills the process,
// as it would llama.cpp's. Replace model files by rename, never by rewriting them in place.
#pragma once
#include <cstdint>
#include <memory>

#include "../common/status.h"

namespace tmill { namespace cpu {

class FileMapping {
 public:
  // Maps `path` whole. expected_bytes >= 0: the size the caller validated the file's header against
  // (out_of_range when the file's size differs now); -1: no expectation.
  static Status open(const char* path, int64_t expected_bytes, std::shared_ptr<FileMapping>* out);
  ~FileMapping();
  FileMapping(const FileMapping&) = delete;
  FileMapping& operator=(const FileMapping&) = delete;

  const char* data() const { return base_; }
  int64_t size() const { return size_; }
  // [offset, offset + bytes) lies inside the file.
  bool contains(int64_t offset, int64_t bytes) const { return offset >= 0 && bytes >= 0 && offset <= size_ - bytes; }

 private:
  FileMapping(char* base, int64_t size, size_t reserved) : base_(base), size_(size), reserved_(reserved) {}
  char* base_;
  int64_t size_;
  size_t reserved_;  // bytes of address space reserved (the file rounded up to pages, plus one zero page)
};

// True where open() can map files (POSIX mmap); elsewhere it fails and callers read the file instead.
bool file_mapping_supported();

}}  // namespace tmill::cpu
