package io.goka.client;

import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;

/** Values as goka-py's (and Goka's) codecs write them: {@code int64} and {@code string}. */
public final class Codecs {
  private Codecs() {}

  /** An {@code int64} value: decimal text, as Goka's {@code codec.Int64} writes it. */
  public static long int64(ByteString value) {
    try {
      return Long.parseLong(value.toString(StandardCharsets.US_ASCII));
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not an int64 value (decimal text): " + value, e);
    }
  }

  /** A {@code string} value: UTF-8. */
  public static String string(ByteString value) {
    return value.toStringUtf8();
  }
}
