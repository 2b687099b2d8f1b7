#include "elf_symbols.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string_view>

namespace vgpu::sched {
namespace {

// A read-only mapping of the whole file, unmapped on scope exit.
class Mapped {
 public:
  explicit Mapped(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      err_ = errno;
      return;
    }
    struct stat st {};
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
      void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        data_ = static_cast<const unsigned char*>(p);
        size_ = static_cast<size_t>(st.st_size);
      } else {
        err_ = errno;
      }
    } else {
      err_ = st.st_size == 0 ? EINVAL : errno;
    }
    close(fd);
  }
  ~Mapped() {
    if (data_) munmap(const_cast<unsigned char*>(data_), size_);
  }
  Mapped(const Mapped&) = delete;
  Mapped& operator=(const Mapped&) = delete;
  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  int error() const { return err_; }
  // True if [off, off + len) lies inside the file.
  bool has(uint64_t off, uint64_t len) const { return off <= size_ && len <= size_ - off; }

 private:
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  int err_ = 0;
};

template <typename T>
bool read_at(const Mapped& m, uint64_t off, T* out) {
  if (!m.has(off, sizeof(T))) return false;
  std::memcpy(out, m.data() + off, sizeof(T));  // the file need not be aligned
  return true;
}

}  // namespace

Result<std::map<std::string, uint64_t>> elf_function_offsets(const std::string& path,
                                                              const std::vector<std::string>& names) {
  Mapped m(path);
  if (!m.data()) return make_error(path + ": " + std::strerror(m.error()));
  Elf64_Ehdr eh;
  if (!read_at(m, 0, &eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
    return make_error(path + ": not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return make_error(path + ": not a 64-bit little-endian ELF file");
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_phentsize != sizeof(Elf64_Phdr))
    return make_error(path + ": unexpected ELF header sizes");

  std::vector<Elf64_Phdr> loads;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    if (!read_at(m, eh.e_phoff + uint64_t{i} * sizeof ph, &ph)) return make_error(path + ": truncated program headers");
    if (ph.p_type == PT_LOAD) loads.push_back(ph);
  }
  auto file_offset = [&](uint64_t vaddr, uint64_t* off) {
    for (const Elf64_Phdr& ph : loads)
      if (vaddr >= ph.p_vaddr && vaddr - ph.p_vaddr < ph.p_filesz) {
        *off = vaddr - ph.p_vaddr + ph.p_offset;
        return true;
      }
    return false;
  };

  std::set<std::string_view> wanted(names.begin(), names.end());
  std::map<std::string, uint64_t> found;
  for (unsigned i = 0; i < eh.e_shnum && found.size() < wanted.size(); ++i) {
    Elf64_Shdr sh;
    if (!read_at(m, eh.e_shoff + uint64_t{i} * sizeof sh, &sh)) return make_error(path + ": truncated section headers");
    if ((sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB) || sh.sh_entsize != sizeof(Elf64_Sym)) continue;
    Elf64_Shdr strtab;
    if (sh.sh_link >= eh.e_shnum || !read_at(m, eh.e_shoff + uint64_t{sh.sh_link} * sizeof strtab, &strtab) ||
        !m.has(strtab.sh_offset, strtab.sh_size) || !m.has(sh.sh_offset, sh.sh_size))
      return make_error(path + ": malformed symbol table");
    const char* strings = reinterpret_cast<const char*>(m.data() + strtab.sh_offset);
    for (uint64_t k = 0; k < sh.sh_size / sizeof(Elf64_Sym); ++k) {
      Elf64_Sym sym;
      read_at(m, sh.sh_offset + k * sizeof sym, &sym);
      unsigned type = ELF64_ST_TYPE(sym.st_info);
      if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0 || (type != STT_FUNC && type != STT_GNU_IFUNC) ||
          sym.st_name >= strtab.sh_size)
        continue;
      std::string_view name(strings + sym.st_name, strnlen(strings + sym.st_name, strtab.sh_size - sym.st_name));
      if (!wanted.count(name) || found.count(std::string(name))) continue;
      uint64_t off;
      if (file_offset(sym.st_value, &off)) found.emplace(std::string(name), off);
    }
  }
  return found;
}

}  // namespace vgpu::sched
