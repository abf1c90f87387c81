//go:build ignore

// burn keeps one CPU busy in known functions on a known call path, for the
// agent's end-to-end test: main.main → main.burnOuter → main.burnInner.
package main

import "os"

var sink uint64

//go:noinline
func burnInner(n uint64) uint64 {
	x := n
	for i := 0; i < 1_000_000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

//go:noinline
func burnOuter(n uint64) uint64 { return burnInner(n) ^ n }

func main() {
	for n := uint64(0); ; n++ {
		sink += burnOuter(n)
		if sink == 42 {
			os.Exit(3)
		}
	}
}
