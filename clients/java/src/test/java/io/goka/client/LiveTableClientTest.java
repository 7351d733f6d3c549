package io.goka.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.google.gson.JsonParser;
import io.goka.viewsvc.v1.Entry;
import io.goka.viewsvc.v1.GetResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * A live deployment read whole: GOKA_LIVE_TARGETS (the first is used), GOKA_LIVE_TABLE and
 * GOKA_LIVE_EXPECTED (a JSON file key -> value) are set by
 * tests/integration/test_clients_live.py, which starts processors, a view pod and a router.
 */
class LiveTableClientTest {
  @Test
  void getGetManyAndScanReturnTheWholeTable() throws Exception {
    String targets = System.getenv("GOKA_LIVE_TARGETS");
    String table = System.getenv("GOKA_LIVE_TABLE");
    assumeTrue(targets != null && table != null, "no live deployment");
    Map<String, String> expected = new TreeMap<>();
    JsonParser.parseString(Files.readString(Path.of(System.getenv("GOKA_LIVE_EXPECTED"))))
        .getAsJsonObject().entrySet()
        .forEach(e -> expected.put(e.getKey(), e.getValue().getAsString()));
    List<String> keys = new ArrayList<>(expected.keySet());

    try (TableClient client = TableClient.connect(targets.split(",")[0])) {
      for (String key : keys) {
        GetResponse r = client.get(table, key);
        assertEquals(expected.get(key), r.getFound() ? r.getValue().toStringUtf8() : null, key);
      }
      assertFalse(client.get(table, "no such key").getFound());

      List<GetResponse> many = client.getMany(table, keys);
      assertEquals(keys.size(), many.size());
      for (int i = 0; i < keys.size(); i++) {
        assertEquals(keys.get(i), many.get(i).getKey().toStringUtf8());
        assertEquals(expected.get(keys.get(i)), many.get(i).getValue().toStringUtf8());
      }

      Map<String, String> scanned = new TreeMap<>();
      List<String> order = new ArrayList<>();
      for (Entry e : client.scan(table, "")) {
        scanned.put(e.getKey().toStringUtf8(), e.getValue().toStringUtf8());
        order.add(e.getKey().toStringUtf8());
      }
      assertEquals(expected, scanned);
      assertEquals(keys, order, "rows in ascending key order");
    }
  }
}
