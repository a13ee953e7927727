// One ActiveMQ Classic broker for scripts/backends, set up in code (no XML, no distribution):
// a STOMP connector on 127.0.0.1 only, a KahaDB store (messages survive a restart), the
// SimpleAuthenticationPlugin with one user (the only authentication Lambda supports for
// ActiveMQ), and broker-side redelivery with ActiveMQ's default RedeliveryPolicy
// (maximumRedeliveries 6, then the shared dead-letter queue ActiveMQ.DLQ), which is the policy
// Lambda uses. A STOMP NACK is a poison acknowledgement: the RedeliveryPlugin turns it into a
// scheduled redelivery (the message comes back with redelivered=true) until the limit.
//
// For tests it also answers GET http://127.0.0.1:ADMIN_PORT/queue?name=NAME with what the queue
// holds: {"waiting": messages not handed to a consumer, "held": handed out, not acknowledged}.
//
// Usage: ACTIVEMQ_PASSWORD=... java -cp 'lib/*:classes' ActiveMqBroker DATA_DIR STOMP_PORT USER ADMIN_PORT
// (the password from the environment, so that it is not on the command line)
import java.io.File;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.List;

import com.sun.net.httpserver.HttpServer;

import org.apache.activemq.RedeliveryPolicy;
import org.apache.activemq.broker.BrokerPlugin;
import org.apache.activemq.broker.BrokerService;
import org.apache.activemq.broker.region.Destination;
import org.apache.activemq.broker.region.policy.RedeliveryPolicyMap;
import org.apache.activemq.broker.util.RedeliveryPlugin;
import org.apache.activemq.command.ActiveMQQueue;
import org.apache.activemq.security.AuthenticationUser;
import org.apache.activemq.security.SimpleAuthenticationPlugin;
import org.apache.activemq.store.kahadb.KahaDBPersistenceAdapter;

public final class ActiveMqBroker {
    public static void main(String[] args) throws Exception {
        String password = System.getenv("ACTIVEMQ_PASSWORD");
        if (args.length != 4 || password == null || password.isEmpty()) {
            System.err.println("usage: ACTIVEMQ_PASSWORD=... ActiveMqBroker DATA_DIR STOMP_PORT USER ADMIN_PORT");
            System.exit(2);
        }
        File data = new File(args[0]);
        BrokerService broker = new BrokerService();
        broker.setBrokerName("esm");
        broker.setDataDirectoryFile(data);
        broker.setUseJmx(false);
        broker.setPersistent(true);
        KahaDBPersistenceAdapter kahadb = new KahaDBPersistenceAdapter();
        kahadb.setDirectory(new File(data, "kahadb"));
        // The journal is flushed to disk once a second rather than at every send and acknowledgement:
        // a killed broker process still loses nothing (the OS has the writes); only a machine crash
        // could, which a test broker on a shared machine may risk for speed.
        kahadb.setJournalDiskSyncStrategy("periodic");
        broker.setPersistenceAdapter(kahadb);
        broker.setSchedulerSupport(true);  // the RedeliveryPlugin schedules its redeliveries
        broker.setSchedulerDirectoryFile(new File(data, "scheduler"));
        // Small limits: the defaults (100 GB of store) only make the broker warn on a small disk.
        broker.getSystemUsage().getMemoryUsage().setLimit(128L << 20);
        broker.getSystemUsage().getStoreUsage().setLimit(2L << 30);
        broker.getSystemUsage().getTempUsage().setLimit(1L << 30);
        broker.getSystemUsage().getJobSchedulerUsage().setLimit(1L << 30);

        SimpleAuthenticationPlugin authentication = new SimpleAuthenticationPlugin(
                List.of(new AuthenticationUser(args[2], password, "users")));
        authentication.setAnonymousAccessAllowed(false);
        RedeliveryPolicyMap policies = new RedeliveryPolicyMap();
        policies.setDefaultEntry(new RedeliveryPolicy());  // ActiveMQ's defaults: 6 redeliveries, 1 s apart
        RedeliveryPlugin redelivery = new RedeliveryPlugin();
        redelivery.setRedeliveryPolicyMap(policies);
        redelivery.setFallbackToDeadLetter(true);
        redelivery.setSendToDlqIfMaxRetriesExceeded(true);
        broker.setPlugins(new BrokerPlugin[] {authentication, redelivery});

        broker.addConnector("stomp://127.0.0.1:" + Integer.parseInt(args[1]));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                broker.stop();
                broker.waitUntilStopped();
            } catch (Exception error) {
                error.printStackTrace();
            }
        }));
        broker.start();
        broker.waitUntilStarted();
        HttpServer admin = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(args[3])), 0);
        admin.createContext("/queue", exchange -> {
            String query = exchange.getRequestURI().getRawQuery();
            String name = query == null ? "" : URLDecoder.decode(query.replaceFirst("^name=", ""), StandardCharsets.UTF_8);
            long messages = 0;
            long inflight = 0;
            try {
                Destination queue = broker.getDestination(new ActiveMQQueue(name));
                if (queue != null) {
                    messages = queue.getDestinationStatistics().getMessages().getCount();
                    inflight = queue.getDestinationStatistics().getInflight().getCount();
                }
            } catch (Exception error) {
                exchange.sendResponseHeaders(500, -1);
                exchange.close();
                return;
            }
            byte[] body = String.format("{\"waiting\": %d, \"held\": %d}", messages - inflight, inflight)
                    .getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "application/json");
            exchange.sendResponseHeaders(200, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        admin.start();
        System.out.println("ActiveMqBroker: STOMP on 127.0.0.1:" + args[1]);
        broker.waitUntilStopped();
    }
}
