package priority

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFake(share float64) (*Governor, *fakeClock) {
	c := &fakeClock{t: time.Unix(1_000_000, 0)}
	g := New(share)
	g.now = c.now
	return g, c
}

func TestChargeIdleRunsFree(t *testing.T) {
	g, c := newFake(0.25)
	for range 100 {
		c.add(10 * time.Millisecond)
		if w := g.charge(10*time.Millisecond, c.now()); w != 0 {
			t.Fatalf("wait %v with no foreground work; want 0", w)
		}
	}
}

// TestChargeBusyHoldsShare runs a query that would take the whole CPU for
// a second while writes keep arriving, and checks that its waits hold it
// to its share.
func TestChargeBusyHoldsShare(t *testing.T) {
	g, c := newFake(0.25)
	rate := 0.25 * float64(runtime.GOMAXPROCS(0))
	start := c.now()
	var worked time.Duration
	for worked < time.Second {
		g.Mark()
		c.add(time.Millisecond)
		worked += time.Millisecond
		if w := g.charge(time.Millisecond, c.now()); w > 0 {
			c.add(w)
		}
	}
	elapsed := c.now().Sub(start)
	got := float64(worked) / float64(elapsed)
	if got > rate*1.1 || got < rate*0.9 {
		t.Fatalf("query had %.3f of the CPU while writes arrived; want about %.3f", got, rate)
	}
}

func TestChargeBusyAfterIdleStartsWithBurst(t *testing.T) {
	g, c := newFake(0.25)
	c.add(time.Hour)
	g.Mark()
	if w := g.charge(g.burst, c.now()); w != 0 {
		t.Fatalf("first %v of work after an idle hour waited %v; want the burst free", g.burst, w)
	}
	if w := g.charge(10*time.Millisecond, c.now()); w == 0 {
		t.Fatal("work past the burst while busy did not wait")
	}
}

func TestStepWithoutGovernor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := Step(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := Step(ctx); err != context.Canceled {
		t.Fatalf("Step on a cancelled context = %v; want context.Canceled", err)
	}
	if With(ctx, New(1)) != ctx {
		t.Error("a share of the whole machine still governs")
	}
}

func TestStepWaitsAndCancels(t *testing.T) {
	g := New(0.01)
	g.Mark()
	ctx, cancel := context.WithCancel(With(context.Background(), g))
	time.Sleep(g.burst + 20*time.Millisecond) // work past the burst
	g.Mark()
	done := make(chan error, 1)
	go func() { done <- Step(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("Step returned %v at once; want it to wait for the budget", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if err != context.Canceled {
			t.Fatalf("Step = %v after cancel; want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Step still waiting after its context was cancelled")
	}
}
