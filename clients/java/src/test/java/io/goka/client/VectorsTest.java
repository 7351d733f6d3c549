package io.goka.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;

/** testdata/vectors.json, shared by the tests of every language. */
class VectorsTest {
  private static JsonObject vectors() throws IOException {
    Path path = Path.of(System.getenv("GOKA_TESTDATA"), "vectors.json");
    return JsonParser.parseString(Files.readString(path)).getAsJsonObject();
  }

  @Test
  void partitionersMatchTheVectors() throws IOException {
    var cases = vectors().getAsJsonArray("partitions");
    assertFalse(cases.isEmpty());
    for (JsonElement element : cases) {
      JsonObject c = element.getAsJsonObject();
      byte[] key = HexFormat.of().parseHex(c.get("key_hex").getAsString());
      int count = c.get("partition_count").getAsInt();
      for (String name : new String[] {"murmur2", "fnv1a"}) {
        assertEquals(c.get(name).getAsInt(), Partitioners.partition(name, key, count),
            name + " of " + c.get("key_hex").getAsString() + " over " + count);
      }
    }
  }

  @Test
  void codecsReadTheVectors() throws IOException {
    JsonObject codecs = vectors().getAsJsonObject("codecs");
    for (JsonElement element : codecs.getAsJsonArray("int64")) {
      JsonObject c = element.getAsJsonObject();
      assertEquals(Long.parseLong(c.get("value").getAsString()), Codecs.int64(bytes(c)));
    }
    for (JsonElement element : codecs.getAsJsonArray("string")) {
      JsonObject c = element.getAsJsonObject();
      assertEquals(c.get("value").getAsString(), Codecs.string(bytes(c)));
    }
  }

  @Test
  void badArgumentsAreNamed() {
    assertThrows(IllegalArgumentException.class, () -> Partitioners.partition("crc", new byte[0], 4));
    assertThrows(IllegalArgumentException.class, () -> Partitioners.partition("fnv1a", new byte[0], 0));
    assertThrows(IllegalArgumentException.class, () -> Codecs.int64(ByteString.copyFromUtf8("x")));
  }

  private static ByteString bytes(JsonObject c) {
    return ByteString.copyFrom(HexFormat.of().parseHex(c.get("encoded_hex").getAsString()));
  }
}
