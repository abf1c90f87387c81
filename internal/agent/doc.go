// Package agent is the core of `hearth agent`: whole-host CPU profiling. It
// drains stacks from a kernel sampler every few seconds, labels each process
// from /proc (service name, PID, comm, executable, cgroup, container ID),
// symbolizes the addresses, builds one pprof profile per process and
// interval, and pushes the profiles to a Hearth server over
// push.v1.PusherService/Push, buffering them in memory while the server is
// away.
//
// The kernel side and symbolization live in internal/agent/bpf and
// internal/agent/symbolize; this package only knows them through the
// Sampler and Symbolizer interfaces, so that it builds and is tested
// without eBPF, root or a particular kernel:
//
//	err := agent.Run(ctx, agent.DefaultConfig(), sampler, symbolizer, logger)
//
// Run owns the loop: it is the only caller of the sampler and the
// symbolizer, so neither needs to be safe for concurrent use. The sampler
// is the caller's to close once Run has returned.
//
// Memory is bounded: the processes tracked at once, the distinct stacks of
// one interval and the bytes of profiles waiting to be pushed each have a
// cap, and what a cap turns away is counted in Stats and logged rather than
// kept.
package agent
