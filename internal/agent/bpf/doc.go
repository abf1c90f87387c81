// Package bpf is the kernel side of hearth agent: whole-host CPU sampling
// with a perf-event BPF program, and its loader.
//
// Open attaches the program (profile.bpf.c) to a software CPU-clock event on
// every online CPU. On every tick of a CPU that is not idle, the program
// records the running thread's user and kernel stacks, which the kernel
// unwinds by frame pointers (bpf_get_stackid), and counts the sample under
// the key (process, thread, user stack id, kernel stack id, thread name).
// Drain returns the counts since the previous Drain, with the stacks as
// addresses, and clears them; symbolizing the addresses is left to the
// caller.
//
//	p, err := bpf.Open(bpf.Options{}) // 19 Hz, the calling process excluded
//	if err != nil {
//		return fmt.Errorf("%w\n%v", err, bpf.Check())
//	}
//	defer p.Close()
//	for range time.Tick(10 * time.Second) {
//		samples, stats, err := p.Drain()
//		...
//	}
//
// The compiled object is committed (profile_*_bpfel.o, embedded by the
// bpf2go bindings), so building Hearth needs no clang; see generate.go for
// rebuilding it, and TestObjectUpToDate for the check that it matches its
// sources. The program reads no kernel structure, so it has no CO-RE
// relocations and needs neither BTF nor a particular kernel layout; it needs
// Linux 5.2 (read-only global data), 5.6 for the batched read of the count
// map (older kernels fall back to one entry at a time) and 5.8 for
// Options.RunStats.
//
// # Draining without racing the program
//
// The maps the program writes exist twice, as slot 0 and slot 1, and the
// program reads the active slot number once per sample. Drain points the
// program at the other slot, waits until every sample that may have read the
// old number has finished, and only then reads and empties the old slot. That
// wait is an update of an otherwise unused ARRAY_OF_MAPS, which the kernel
// completes only after an RCU grace period (maybe_wait_bpf_programs; the
// kernel's own selftests use the same trick to wait for programs), and a
// perf-event program runs inside an RCU read-side section. It cost 0.1 ms on
// the test machine (expedited RCU) and takes a few milliseconds elsewhere.
//
// The alternative, batch lookup-and-delete on a single live count map, was
// rejected: an increment landing between the kernel's copy and its delete is
// lost, and, worse, the stacks could not be deleted safely, because a sample
// recorded after the read may refer to a stack id that Drain is about to
// delete. With two slots nothing writes to the slot being read, so Drain may
// delete every stack in it, including stacks of samples that were dropped
// after their stack was stored, which would otherwise fill the map.
//
// # Stack id collisions: no BPF_F_REUSE_STACKID
//
// A stack map is a hash table with one stack per bucket. When a new stack
// hashes to an occupied bucket, bpf_get_stackid either fails with -EEXIST
// (the default, used here: the sample is dropped and counted as
// stack_collision) or, with BPF_F_REUSE_STACKID, overwrites the bucket, so
// that every count recorded earlier in the interval with that id silently
// gets the new stack. Measured with two threads of one process running
// disjoint recursive functions at random depths (99 Hz, 2 CPUs, 1 s
// intervals, so that nearly every sample is a new stack), counting as
// "wrong" a sample whose stack holds the other thread's functions or
// addresses of the wrong space (which undercounts, as a swap between two
// stacks of the same thread goes unseen):
//
//	stack map entries   256     1024    4096    16384
//	lost, default       27.2%   8.8%    3.0%    0.5%
//	wrong, REUSE        11.1%   3.9%    1.2%    0.3%
//
// REUSE trades a visible, counted loss for a smaller but silent and
// unbounded error (one overwrite can reassign the counts of a hot stack), so
// the default is kept, and Stats.Lost lets the agent report the loss.
//
// # Sizes
//
// Collisions grow with the number of distinct stacks (user and kernel share
// one map) seen between two Drains: with k of them in a map of n entries,
// about k/2n of the new stacks collide. The agent controls that with both
// the map size and the Drain interval; Drain costs little (a few syscalls per
// distinct stack), so draining every few seconds is fine. The default,
// 16384 entries of 127 frames, takes 16.3 MiB of kernel memory per slot,
// 33 MiB in all; the count maps take 1.6 MiB each.
//
// # Cost
//
// The in-kernel cost per sample is almost all the kernel's frame-pointer
// walk of the user stack, which reads user memory frame by frame. On the test
// machine, a nested virtual machine where a getpid system call takes 1.2 µs
// (some ten times bare metal), Stats' ProgRunTimeNs/ProgRunCount with both
// CPUs busy was 13-45 µs per sample, varying with the load of the shared
// machine. In one run of variants of the program: returning at once
// 0.6 µs, taking only the kernel stack 2.4 µs, only the user stack 13 µs,
// everything 16 µs. At 19 Hz that is under 0.1% of each CPU there, and far
// less on bare metal.
//
// # Leaves without a frame
//
// A function that has not set up a frame at the sampled instruction (a leaf
// that needs none: Go gives small leaves none, gcc none to leaves even with
// -fno-omit-frame-pointer; or any function before its prologue) leaves the
// frame pointer at its caller's frame, so the kernel's walk goes from the
// leaf to the caller's caller. Its caller's return address is then the word
// at the stack pointer, which the program records as Sample.LeafReturn when
// the sample interrupted user code and the word lies in the same 256 MiB as
// the leaf (a return address into the same binary). Whether the leaf really
// has no frame is for user space to tell from its code
// (symbolize.Symbolizer.LeafFrameless); the filter only keeps the locals of
// other functions from multiplying count keys. On arm64 the return address
// of such a leaf is in the link register, which is not recorded yet.
//
// # Limits
//
//   - Frame-pointer unwinding: code built without frame pointers (much of a
//     distribution's C libraries) gives short or wrong user stacks. Go
//     binaries keep frame pointers on amd64 and arm64.
//   - A leaf without a frame keeps its caller only on x86-64 and only when
//     the caller is in the same 256 MiB (a libc leaf such as memcpy, called
//     from the program, still loses it).
//   - CPUs brought online after Open are not sampled.
//   - Process ids are those of the initial PID namespace; ExcludeTGID's
//     default, the caller's pid, is right only when the agent shares it.
//   - A stack deeper than kernel.perf_event_max_stack (127 by default) is
//     cut to its leaf-most frames.
package bpf
