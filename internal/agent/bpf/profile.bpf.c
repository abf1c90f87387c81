// SPDX-License-Identifier: GPL-2.0

//go:build ignore

// The build constraint keeps the go command from treating this file as
// cgo source; bpf2go compiles it (generate.go).
//
// Whole-host CPU sampling for hearth agent. User space opens one software
// CPU-clock perf event per online CPU and attaches profile_cpu to each; every
// tick records the interrupted task's user and kernel stacks (frame-pointer
// unwinding done by the kernel), with the word at the user stack pointer for
// a leaf without a frame (leaf_return), and counts the sample in a hash map.
// User space drains the maps periodically (profiler_linux.go).
//
// Every map that the program writes exists twice ("slots"). The program reads
// the active slot once per sample and writes only that slot's maps, so that
// user space can switch slots, wait for samples in flight, and then read and
// clear the other slot without racing against the program.
//
// Only uapi headers (linux-libc-dev) and libbpf's bpf_helpers.h are used, and
// no kernel structure is read, so the object carries no CO-RE relocations and
// loads without BTF on the target kernel.

#include <linux/bpf.h>
#include <asm-generic/errno-base.h>
#include <bpf/bpf_helpers.h>

// Stack depth of a stack map value: the kernel's default for
// kernel.perf_event_max_stack. User space lowers the map's value size at load
// time if that sysctl is smaller, because the kernel refuses to create a
// stack map deeper than it.
#define MAX_STACK_DEPTH 127
#define TASK_COMM_LEN 16

// Stack id recorded when a sample has no stack of that kind: a kernel thread
// has no user stack, and a task interrupted in user mode has no kernel stack.
#define NO_STACK -1

// Return values of stack_id below NO_STACK: why the sample is dropped.
#define STACK_LOST(reason) (-2 - (long)(reason))
#define LOST_REASON(ret) ((enum lost_reason)(-2 - (ret)))

// Why a sample was dropped. Indexes into the lost map, per slot.
enum lost_reason {
	// bpf_get_stackid found another stack in the hash bucket (-EEXIST).
	LOST_STACK_COLLISION = 0,
	// bpf_get_stackid failed otherwise (-ENOMEM when the map has no free
	// element, or an unexpected error).
	LOST_STACK_ERROR = 1,
	// The count map had no room for a new key.
	LOST_COUNT_MAP_FULL = 2,
	LOST_REASONS = 3,
};

// One aggregated sample. Field order leaves no padding, so the whole key is
// defined by the stores below and equal samples hash equally.
struct count_key {
	__u32 tgid;            // process
	__u32 pid;             // thread
	__s32 user_stack_id;   // NO_STACK or an id in the slot's stack map
	__s32 kernel_stack_id; // NO_STACK or an id in the slot's stack map
	__u64 leaf_return;     // the word at the user stack pointer, or 0; see leaf_return
	char comm[TASK_COMM_LEN];
};

// The process whose samples are dropped: the agent itself, set before load.
volatile const __u32 exclude_tgid = 0;

// Which slot (0 or 1) samples go to. An array map rather than a global
// variable so that user space can switch it with a map update on kernels
// without mmap-able global data.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} active_slot SEC(".maps");

// Stack maps keep the value size untyped so that user space can lower it to
// kernel.perf_event_max_stack; max_entries is set from Options at load time.
#define STACK_MAP(name)                                                        \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);                        \
		__uint(max_entries, 16384);                                    \
		__uint(key_size, sizeof(__u32));                               \
		__uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));           \
	} name SEC(".maps")

#define COUNT_MAP(name)                                                        \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 16384);                                    \
		__type(key, struct count_key);                                 \
		__type(value, __u64);                                          \
	} name SEC(".maps")

STACK_MAP(stacks0);
STACK_MAP(stacks1);
COUNT_MAP(counts0);
COUNT_MAP(counts1);

// Dropped samples, indexed by slot * LOST_REASONS + reason. Per CPU so that
// counting needs neither atomics nor shared cache lines.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2 * LOST_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

// Not inlined: it runs only for dropped samples, and as a function it keeps
// enum lost_reason in the object's BTF, from which bpf2go generates the Go
// constants.
static __noinline void count_lost(__u32 slot, enum lost_reason reason)
{
	__u32 index = slot * LOST_REASONS + reason;
	__u64 *n = bpf_map_lookup_elem(&lost, &index);

	if (n)
		*n += 1;
}

// stack_id returns a stack id, NO_STACK, or STACK_LOST(reason) when the
// sample has to be dropped.
static __always_inline long stack_id(void *ctx, void *stacks, __u64 flags)
{
	long id = bpf_get_stackid(ctx, stacks, flags);

	if (id >= 0)
		return id;
	// -EFAULT means the walk found no frame at all: no user stack for a
	// kernel thread, no kernel stack for a task interrupted in user mode.
	// That is a normal sample, not an error.
	if (id == -EFAULT)
		return NO_STACK;
	if (id == -EEXIST)
		return STACK_LOST(LOST_STACK_COLLISION);
	return STACK_LOST(LOST_STACK_ERROR);
}

// Word indexes in the perf-event context (struct bpf_perf_event_data, which
// starts with the interrupted registers) of x86-64's struct pt_regs. The
// offsets are written out because the uapi header that declares the
// registers (asm/ptrace.h) is the host's, not the target's.
#define X86_REG_IP 16
#define X86_REG_CS 17
#define X86_REG_SP 19

// The least address anything can be mapped at (vm.mmap_min_addr's default):
// a smaller word is an integer, not a return address.
#define MIN_USER_ADDR 0x10000

// leaf_return returns the word at the user stack pointer when the sample
// interrupted user code, else 0.
//
// Frame-pointer unwinding misses the caller of a leaf that has set up no
// frame of its own (Go's frameless functions, gcc's leaves even with
// -fno-omit-frame-pointer, any function before its prologue ran): the frame
// pointer still holds the caller's frame, so the walk goes from the leaf
// straight to the caller's caller. In such a leaf the caller's return
// address is the word at the stack pointer. Whether the leaf is such a
// function can only be told from its code, which user space reads, so the
// word is recorded here and judged there.
//
// In any other function the word is a local variable, and every value it
// takes would make a count key of its own. Keeping only words in the same
// 256 MiB as the interrupted instruction (a return address into the same
// binary, as a rule) keeps most of those out at the price of a leaf called
// from another binary (a libc leaf called from the program).
//
// On arm64 the return address of a frameless leaf is in the link register,
// not on the stack; that is not recorded yet, so the word is always 0.
static __always_inline __u64 leaf_return(void *ctx)
{
#if defined(__TARGET_ARCH_x86)
	__u64 *regs = ctx;
	__u64 ip, sp, word = 0;

	// Interrupted in the kernel, the registers are the kernel's, and the
	// user stack is not where the thread's user code left it.
	if ((regs[X86_REG_CS] & 3) != 3)
		return 0;
	ip = regs[X86_REG_IP];
	sp = regs[X86_REG_SP];
	if (bpf_probe_read_user(&word, sizeof(word), (void *)sp))
		return 0;
	if (word < MIN_USER_ADDR || (word >> 28) != (ip >> 28))
		return 0;
	return word;
#else
	return 0;
#endif
}

static __always_inline int record(void *ctx, __u32 slot, void *stacks,
				  void *counts, __u64 pid_tgid)
{
	struct count_key key;
	long user, kernel;
	__u64 *count, one = 1;
	long err;

	// No BPF_F_REUSE_STACKID: on a hash collision the new sample is dropped
	// and counted, instead of overwriting a stack that keys counted earlier
	// in this slot already refer to (which would silently give those
	// samples the wrong stack). See doc.go for the measurement.
	user = stack_id(ctx, stacks, BPF_F_USER_STACK);
	if (user < NO_STACK) {
		count_lost(slot, LOST_REASON(user));
		return 0;
	}
	kernel = stack_id(ctx, stacks, 0);
	if (kernel < NO_STACK) {
		count_lost(slot, LOST_REASON(kernel));
		return 0;
	}

	__builtin_memset(&key, 0, sizeof(key));
	key.tgid = pid_tgid >> 32;
	key.pid = (__u32)pid_tgid;
	key.user_stack_id = user;
	key.kernel_stack_id = kernel;
	if (user != NO_STACK)
		key.leaf_return = leaf_return(ctx);
	bpf_get_current_comm(key.comm, sizeof(key.comm));

	count = bpf_map_lookup_elem(counts, &key);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return 0;
	}
	err = bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST);
	if (err == -EEXIST) {
		// Another CPU inserted the same key between lookup and update.
		count = bpf_map_lookup_elem(counts, &key);
		if (count)
			__sync_fetch_and_add(count, 1);
		return 0;
	}
	if (err)
		count_lost(slot, LOST_COUNT_MAP_FULL);
	return 0;
}

SEC("perf_event")
int profile_cpu(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0, *slot;

	// pid 0 is the idle task of each CPU: time nobody used.
	if ((__u32)pid_tgid == 0)
		return 0;
	if ((pid_tgid >> 32) == exclude_tgid)
		return 0;

	// One lookup per sample, so the stack and count maps written below are
	// always those of the same slot.
	slot = bpf_map_lookup_elem(&active_slot, &zero);
	if (!slot)
		return 0;
	if (*slot == 0)
		return record(ctx, 0, &stacks0, &counts0, pid_tgid);
	return record(ctx, 1, &stacks1, &counts1, pid_tgid);
}

char LICENSE[] SEC("license") = "GPL";
