// Package symbolize names the addresses of stacks that the agent samples
// with eBPF: user-space return addresses per process, and kernel
// addresses.
//
// User-space addresses are found in /proc/PID/maps, the mapped file is
// opened through /proc/PID/root (so a container's files are reached from
// the host) or /proc/PID/map_files, and the address is converted to a file
// offset and then to an ELF address through the file's PT_LOAD segments,
// which handles PIE, shared libraries and ASLR alike. Code is named from:
//
//   - Go's pclntab, with file, line and inlined frames. The table is there
//     even in binaries built with -ldflags='-s -w', and is found by its
//     magic number when the section headers are gone too.
//   - the ELF symbol table (.symtab, else .dynsym) for native code,
//     without demangling and without file or line: DWARF is not read.
//   - /proc/kallsyms for the kernel.
//
// A frame that cannot be named keeps a stable "module+0xoffset" name and
// a Reason, and Stats counts both kinds.
//
// Symbol tables are cached by build ID, so that fifty processes running
// one binary read it once, within Options.MaxCacheBytes (least recently
// used out). Mappings are kept per process until Forget.
//
// Usage:
//
//	s := symbolize.New(symbolize.Options{})
//	for _, st := range stacks {
//		user := s.User(st.TGID, st.UserAddrs) // leaf first
//		kernel := s.Kernel(st.KernelAddrs)
//		...
//	}
//	s.Forget(exitedPID)
//
// A Symbolizer is safe for concurrent use; calls are serialized, and a
// call that meets a binary for the first time reads it from disk.
package symbolize
