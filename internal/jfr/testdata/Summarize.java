// Summarize reads a recording of HearthJfrDemo with the JDK's own JFR reader
// (jdk.jfr.consumer) and prints the totals that internal/jfr's tests expect
// Hearth to find in it: an independent reading of the same file.
//
// Usage: java Summarize.java demo.jfr > demo.summary.txt
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordedFrame;
import jdk.jfr.consumer.RecordingFile;

public final class Summarize {
    public static void main(String[] args) throws Exception {
        Map<String, Long> out = new TreeMap<>();
        for (RecordedEvent e : RecordingFile.readAllEvents(Path.of(args[0]))) {
            String name = e.getEventType().getName();
            switch (name) {
                case "jdk.ExecutionSample":
                    add(out, "cpu.samples", 1);
                    if (onPath(e, "cpuMain", "burnOuter", "burnMiddle", "burnLeaf")) {
                        add(out, "cpu.samples.burnLeaf", 1);
                    }
                    break;
                case "jdk.ObjectAllocationSample":
                    add(out, "alloc.samples", 1);
                    add(out, "alloc.weight", e.getLong("weight"));
                    if (onPath(e, "allocMain", "allocOuter", "allocLeaf")) {
                        add(out, "alloc.samples.allocLeaf", 1);
                        add(out, "alloc.weight.allocLeaf", e.getLong("weight"));
                    }
                    break;
                case "jdk.JavaMonitorEnter":
                    add(out, "monitor.events", 1);
                    add(out, "monitor.nanos", e.getDuration().toNanos());
                    if (onPath(e, "lockMain", "lockedWork")) {
                        add(out, "monitor.events.lockedWork", 1);
                    }
                    break;
                case "jdk.ThreadPark":
                    add(out, "park.events", 1);
                    add(out, "park.nanos", e.getDuration().toNanos());
                    if (onPath(e, "parkMain", "parkLeaf")) {
                        add(out, "park.events.parkLeaf", 1);
                    }
                    break;
                default:
            }
        }
        out.forEach((k, v) -> System.out.println(k + " " + v));
    }

    static void add(Map<String, Long> m, String k, long v) {
        m.merge(k, v, Long::sum);
    }

    // onPath says whether the stack holds HearthJfrDemo's methods, callers
    // first, one calling the next.
    static boolean onPath(RecordedEvent e, String... methods) {
        if (e.getStackTrace() == null) {
            return false;
        }
        List<RecordedFrame> frames = e.getStackTrace().getFrames();
        // frames.get(0) is the innermost; walk from the outermost.
        int want = 0;
        for (int i = frames.size() - 1; i >= 0 && want < methods.length; i--) {
            RecordedFrame f = frames.get(i);
            boolean match = f.getMethod().getType().getName().equals("HearthJfrDemo")
                && f.getMethod().getName().equals(methods[want]);
            if (match) {
                want++;
            } else if (want > 0) {
                return false;
            }
        }
        return want == methods.length;
    }
}
