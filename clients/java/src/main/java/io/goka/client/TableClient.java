package io.goka.client;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.goka.viewsvc.v1.Entry;
import io.goka.viewsvc.v1.GetManyRequest;
import io.goka.viewsvc.v1.GetRequest;
import io.goka.viewsvc.v1.GetResponse;
import io.goka.viewsvc.v1.ScanRequest;
import io.goka.viewsvc.v1.ScanResponse;
import io.goka.viewsvc.v1.TableServiceGrpc;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Reads goka-py tables over gRPC through one node (a router, or any member: every node
 * forwards a read it cannot answer to a member holding the key's partition).
 *
 * <pre>{@code
 * try (TableClient client = TableClient.connect("router:50052")) {
 *   GetResponse r = client.get("clicks-counter-table", "user-1");  // r.getValue(): "3"
 * }
 * }</pre>
 */
public final class TableClient implements AutoCloseable {
  private final ManagedChannel channel;
  private final TableServiceGrpc.TableServiceBlockingStub stub;
  private final long timeoutMillis;

  private TableClient(ManagedChannel channel, String token, long timeoutMillis) {
    this.channel = channel;
    TableServiceGrpc.TableServiceBlockingStub blocking = TableServiceGrpc.newBlockingStub(channel);
    if (token != null && !token.isEmpty()) {
      Metadata headers = new Metadata();
      headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER),
          "Bearer " + token);
      blocking = blocking.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
    this.stub = blocking;
    this.timeoutMillis = timeoutMillis;
  }

  /** A plaintext client of the node at {@code target} ("host:port"), 10 s per read. */
  public static TableClient connect(String target) {
    return connect(ManagedChannelBuilder.forTarget(target).usePlaintext().build(), null, 10_000);
  }

  /** A client over {@code channel} (TLS is the channel's), sending {@code token} if set. */
  public static TableClient connect(ManagedChannel channel, String token, long timeoutMillis) {
    if (timeoutMillis <= 0) {
      throw new IllegalArgumentException("timeoutMillis must be > 0, got " + timeoutMillis);
    }
    return new TableClient(channel, token, timeoutMillis);
  }

  private TableServiceGrpc.TableServiceBlockingStub call() {
    return stub.withDeadlineAfter(timeoutMillis, TimeUnit.MILLISECONDS);
  }

  /** The value of {@code key} (UTF-8); {@code getFound()} is false for a missing key. */
  public GetResponse get(String table, String key) {
    return get(table, ByteString.copyFrom(key, StandardCharsets.UTF_8));
  }

  public GetResponse get(String table, ByteString key) {
    return call().get(GetRequest.newBuilder().setTable(checked(table)).setKey(key).build());
  }

  /** The values of {@code keys}, in request order. */
  public List<GetResponse> getMany(String table, List<String> keys) {
    GetManyRequest.Builder request = GetManyRequest.newBuilder().setTable(checked(table));
    for (String key : keys) {
      request.addKeys(ByteString.copyFrom(key, StandardCharsets.UTF_8));
    }
    return call().getMany(request.build()).getResultsList();
  }

  /** Every row with {@code prefix} (empty: all), in ascending key order. */
  public List<Entry> scan(String table, String prefix) {
    return scan(ScanRequest.newBuilder().setTable(checked(table))
        .setPrefix(ByteString.copyFrom(prefix, StandardCharsets.UTF_8)).build());
  }

  /** The rows of {@code request} (see ScanRequest: start, end, prefix, limit, page_token). */
  public List<Entry> scan(ScanRequest request) {
    List<Entry> rows = new ArrayList<>();
    Iterator<ScanResponse> stream = call().scan(request);
    while (stream.hasNext()) {
      rows.addAll(stream.next().getEntriesList());
    }
    return rows;
  }

  private static String checked(String table) {
    if (table == null || table.isEmpty()) {
      throw new IllegalArgumentException("table must be a non-empty table topic name");
    }
    return table;
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdown();
    if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
      channel.shutdownNow();
    }
  }
}
