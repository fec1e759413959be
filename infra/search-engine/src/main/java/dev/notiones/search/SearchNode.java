package dev.notiones.search;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.opensearch.common.settings.Settings;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * One OpenSearch node with the HTTP transport and the modules the connector needs, for the local stack.
 *
 * <p>Configuration (system properties, each with an environment variable fallback):
 * <ul>
 *   <li>{@code search.home} / {@code SEARCH_HOME}: path.home (data under {@code data/}), default {@code .local/search}</li>
 *   <li>{@code search.http.port} / {@code SEARCH_PORT}: HTTP port, default 9200</li>
 *   <li>{@code search.host} / {@code SEARCH_HOST}: bind address, default 127.0.0.1</li>
 *   <li>{@code search.cluster} / {@code SEARCH_CLUSTER}: cluster.name, default notion-es-local</li>
 * </ul>
 */
public final class SearchNode extends Node {

    /** The modules a stock distribution would load from modules/, here taken from the classpath. */
    static final List<Class<? extends Plugin>> PLUGINS = List.of(
        Netty4Plugin.class,          // http.type / transport.type netty4
        ReindexPlugin.class,         // _delete_by_query, _update_by_query, _reindex
        PainlessPlugin.class,        // scripted _update
        CommonAnalysisPlugin.class   // analyzers / filters beyond `standard`
    );

    private SearchNode(Settings settings, Collection<Class<? extends Plugin>> plugins) {
        super(InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> settings.get("node.name")),
              plugins, true);
    }

    private static String conf(String prop, String env, String dflt) {
        String v = System.getProperty(prop);
        if (v == null || v.isEmpty()) {
            v = System.getenv(env);
        }
        return (v == null || v.isEmpty()) ? dflt : v;
    }

    public static void main(String[] args) throws Exception {
        // Netty must not try to set the processor count itself (OpenSearch does it).
        System.setProperty("opensearch.set.netty.runtime.available.processors", "false");
        System.setProperty("es.set.netty.runtime.available.processors", "false");

        Path home = Paths.get(conf("search.home", "SEARCH_HOME", ".local/search")).toAbsolutePath().normalize();
        Files.createDirectories(home.resolve("data"));
        Files.createDirectories(home.resolve("logs"));
        Files.createDirectories(home.resolve("config"));
        String host = conf("search.host", "SEARCH_HOST", "127.0.0.1");
        String port = conf("search.http.port", "SEARCH_PORT", "9200");

        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", conf("search.cluster", "SEARCH_CLUSTER", "notion-es-local"))
            .put("node.name", "local-1")
            .put("discovery.type", "single-node")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            .put("network.host", host)
            .put("http.port", port)
            .put("transport.port", conf("search.transport.port", "SEARCH_TRANSPORT_PORT", "9300-9399"))
            // a nearly full disk must not turn indices read-only on a dev machine
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            // one node: replicas can never be assigned, so default to none (indices go green)
            .put("cluster.default_number_of_replicas", 0)
            .put("action.auto_create_index", true)
            .build();

        SearchNode node = new SearchNode(settings, PLUGINS);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "search-node-shutdown"));

        try {
            node.start();
        } catch (Throwable t) {
            System.err.println("search-engine: node failed to start: " + t);
            t.printStackTrace();
            System.exit(1);
        }
        // `cluster.default_number_of_replicas` only takes effect as a cluster setting, not a node setting: on one node,
        // indices then get no replica and go green (health checks waiting for green do not hang).
        try {
            node.client().admin().cluster().prepareUpdateSettings()
                .setPersistentSettings(Settings.builder().put("cluster.default_number_of_replicas", 0))
                .get();
        } catch (Exception e) {
            System.err.println("search-engine: could not set cluster.default_number_of_replicas: " + e);
        }
        System.out.println("search-engine: OpenSearch node started, http://" + host + ":" + port + " (home " + home + ")");
        stopped.await();
    }
}
