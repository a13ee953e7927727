// One ActiveMQ Classic broker for scripts/backends, set up in code (no XML, no distribution):
// a STOMP connector on 127.0.0.1 only, a KahaDB store (messages survive a restart), the
// SimpleAuthenticationPlugin with one user (the only authentication Lambda supports for
// ActiveMQ), and broker-side redelivery with ActiveMQ's default RedeliveryPolicy
// (maximumRedeliveries 6, then the shared dead-letter queue ActiveMQ.DLQ), which is the policy
// Lambda uses. A STOMP NACK is a poison acknowledgement: the RedeliveryPlugin turns it into a
// scheduled redelivery (the message comes back with redelivered=true) until the limit.
//
// Usage: ACTIVEMQ_PASSWORD=... java -cp 'lib/*:classes' ActiveMqBroker DATA_DIR STOMP_PORT USER
// (the password from the environment, so that it is not on the command line)
import java.io.File;
import java.util.List;

import org.apache.activemq.RedeliveryPolicy;
import org.apache.activemq.broker.BrokerPlugin;
import org.apache.activemq.broker.BrokerService;
import org.apache.activemq.broker.region.policy.RedeliveryPolicyMap;
import org.apache.activemq.broker.util.RedeliveryPlugin;
import org.apache.activemq.security.AuthenticationUser;
import org.apache.activemq.security.SimpleAuthenticationPlugin;
import org.apache.activemq.store.kahadb.KahaDBPersistenceAdapter;

public final class ActiveMqBroker {
    public static void main(String[] args) throws Exception {
        String password = System.getenv("ACTIVEMQ_PASSWORD");
        if (args.length != 3 || password == null || password.isEmpty()) {
            System.err.println("usage: ACTIVEMQ_PASSWORD=... ActiveMqBroker DATA_DIR STOMP_PORT USER");
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
        System.out.println("ActiveMqBroker: STOMP on 127.0.0.1:" + args[1]);
        broker.waitUntilStopped();
    }
}
