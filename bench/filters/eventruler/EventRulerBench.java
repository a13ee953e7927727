import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import software.amazon.event.ruler.Machine;

/**
 * AWS event-ruler on bench/filters' events and patterns, driven line by line from stdin so
 * the Python bench can interleave its own timed passes with these (one JVM, JIT kept warm):
 *
 *   load NAME EVENTS PATTERNS MATCHED  one event per line and one pattern per line (UTF-8);
 *                                      builds a Machine, warms the JIT, writes one character
 *                                      per event to MATCHED ('1' when any pattern matched);
 *                                      answers "ok COUNT"
 *   time NAME                          one timed pass over all events; answers the seconds
 *                                      of wall-clock time and of this thread's CPU time
 *   quit
 *
 * Each event goes through rulesForJSONEvent(String): parse included, array consistency on,
 * one thread (the caller's).
 */
public final class EventRulerBench {
    private static final class Case {
        final Machine machine;
        final String[] events;

        Case(Machine machine, String[] events) {
            this.machine = machine;
            this.events = events;
        }

        int pass(boolean[] matched) throws Exception {
            int count = 0;
            for (int i = 0; i < events.length; i++) {
                List<String> rules = machine.rulesForJSONEvent(events[i]);
                boolean hit = !rules.isEmpty();
                if (hit) {
                    count++;
                }
                if (matched != null) {
                    matched[i] = hit;
                }
            }
            return count;
        }
    }

    public static void main(String[] args) throws Exception {
        Map<String, Case> cases = new HashMap<>();
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        String line;
        while ((line = in.readLine()) != null) {
            String[] words = line.split("\t");
            switch (words[0]) {
                case "load": {
                    String[] events = Files.readAllLines(Path.of(words[2]), StandardCharsets.UTF_8).toArray(new String[0]);
                    List<String> patterns = Files.readAllLines(Path.of(words[3]), StandardCharsets.UTF_8);
                    Machine machine = new Machine();
                    for (int i = 0; i < patterns.size(); i++) {
                        machine.addRule("filter-" + i, patterns.get(i));
                    }
                    Case loaded = new Case(machine, events);
                    boolean[] matched = new boolean[events.length];
                    int count = loaded.pass(matched);
                    // Warm-up: enough passes for C2 to compile the matching path.
                    long until = System.nanoTime() + 2_000_000_000L;
                    for (int round = 0; round < 5 || System.nanoTime() < until; round++) {
                        loaded.pass(null);
                    }
                    StringBuilder bits = new StringBuilder(events.length);
                    for (boolean hit : matched) {
                        bits.append(hit ? '1' : '0');
                    }
                    Files.writeString(Path.of(words[4]), bits.toString(), StandardCharsets.US_ASCII);
                    cases.put(words[1], loaded);
                    out.println("ok\t" + count);
                    break;
                }
                case "time": {
                    Case timed = cases.get(words[1]);
                    long cpu = threads.getCurrentThreadCpuTime();
                    long start = System.nanoTime();
                    timed.pass(null);
                    long wall = System.nanoTime() - start;
                    cpu = threads.getCurrentThreadCpuTime() - cpu;
                    out.println(wall / 1e9 + "\t" + cpu / 1e9);
                    break;
                }
                case "quit":
                    return;
                default:
                    out.println("error\tunknown command " + words[0]);
            }
        }
    }
}
