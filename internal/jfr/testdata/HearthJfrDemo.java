// HearthJfrDemo is the program whose recording internal/jfr tests read
// (demo.jfr.gz). Each kind of work runs on its own thread, in methods with
// known names on known call paths, so that the tests can look for them in the
// flame graphs Hearth builds from the recording:
//
//   cpu:    HearthJfrDemo.cpuMain -> HearthJfrDemo.burnOuter -> HearthJfrDemo.burnMiddle -> HearthJfrDemo.burnLeaf
//   alloc:  HearthJfrDemo.allocMain -> HearthJfrDemo.allocOuter -> HearthJfrDemo.allocLeaf
//   mutex:  HearthJfrDemo.lockMain -> HearthJfrDemo.lockedWork (synchronized, contended)
//   block:  HearthJfrDemo.parkMain -> HearthJfrDemo.parkLeaf (LockSupport.parkNanos)
//
// Regenerate the recording with testdata/record.sh.
public final class HearthJfrDemo {
    private static final Object MONITOR = new Object();
    private static volatile long sink;
    private static volatile boolean stop;

    public static void main(String[] args) throws Exception {
        long millis = args.length > 0 ? Long.parseLong(args[0]) : 4000;
        Thread[] threads = {
            new Thread(HearthJfrDemo::cpuMain, "hearth-cpu"),
            new Thread(HearthJfrDemo::allocMain, "hearth-alloc"),
            new Thread(HearthJfrDemo::lockMain, "hearth-lock-1"),
            new Thread(HearthJfrDemo::lockMain, "hearth-lock-2"),
            new Thread(HearthJfrDemo::parkMain, "hearth-park"),
        };
        for (Thread t : threads) {
            t.start();
        }
        Thread.sleep(millis);
        stop = true;
        for (Thread t : threads) {
            t.join();
        }
        System.out.println("done " + sink);
    }

    static void cpuMain() {
        while (!stop) {
            sink += burnOuter(200_000);
        }
    }

    static long burnOuter(int n) {
        return burnMiddle(n) + 1;
    }

    static long burnMiddle(int n) {
        return burnLeaf(n) * 3;
    }

    static long burnLeaf(int n) {
        long h = 1125899906842597L;
        for (int i = 0; i < n; i++) {
            h = 31 * h + (i ^ (h >>> 7));
        }
        return h;
    }

    static void allocMain() {
        while (!stop) {
            sink += allocOuter();
        }
    }

    static long allocOuter() {
        long total = 0;
        for (int i = 0; i < 64; i++) {
            total += allocLeaf(i).length;
        }
        return total;
    }

    static byte[] allocLeaf(int i) {
        return new byte[4096 + i * 512];
    }

    static void lockMain() {
        while (!stop) {
            lockedWork();
        }
    }

    static void lockedWork() {
        synchronized (MONITOR) {
            long until = System.nanoTime() + 25_000_000L;
            while (System.nanoTime() < until) {
                sink++;
            }
        }
    }

    static void parkMain() {
        while (!stop) {
            parkLeaf();
        }
    }

    static void parkLeaf() {
        java.util.concurrent.locks.LockSupport.parkNanos(30_000_000L);
    }
}
