// cprog is run by the symbolize tests: it prints the address of its own
// function work, of libc's getpid and of a return address in main, then
// keeps a CPU busy in work until killed. work is a leaf that sets up no
// frame even with -fno-omit-frame-pointer, as gcc builds leaves.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

volatile long sink;

__attribute__((noinline)) long work(long n) {
	long s = 0;
	for (long i = 0; i < n; i++)
		s += i * i;
	return s;
}

// ret_addr returns the address it returns to: the instruction after a call
// in main.
__attribute__((noinline)) void *ret_addr(void) {
	return __builtin_return_address(0);
}

int main(void) {
	void *ret = ret_addr();
	printf("%lx %lx %lx\n", (unsigned long)&work, (unsigned long)dlsym(RTLD_DEFAULT, "getpid"), (unsigned long)ret);
	fflush(stdout);
	for (;;) {
		sink += work(100000);
		usleep(1000); // leave the CPUs to the tests' own builds
	}
}
