// cprog is run by the symbolize tests: it prints the address of its own
// function work and of libc's getpid, then keeps a CPU busy in work until
// killed.
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

int main(void) {
	printf("%lx %lx\n", (unsigned long)&work, (unsigned long)dlsym(RTLD_DEFAULT, "getpid"));
	fflush(stdout);
	for (;;) {
		sink += work(100000);
		usleep(1000); // leave the CPUs to the tests' own builds
	}
}
