/* burn keeps one CPU busy in known functions on a known call path, for the
 * agent's end-to-end test: main -> c_burn_outer -> c_burn_inner. Built with
 * -fno-omit-frame-pointer so that the agent can unwind it. */
#include <stdint.h>

volatile uint64_t sink;

__attribute__((noinline)) uint64_t c_burn_inner(uint64_t n) {
	uint64_t x = n;
	for (int i = 0; i < 1000000; i++)
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
	return x;
}

__attribute__((noinline)) uint64_t c_burn_outer(uint64_t n) {
	return c_burn_inner(n) ^ n;
}

int main(void) {
	for (uint64_t n = 0;; n++)
		sink += c_burn_outer(n);
}
