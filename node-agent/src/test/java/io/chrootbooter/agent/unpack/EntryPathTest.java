package io.chrootbooter.agent.unpack;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class EntryPathTest {

  @ParameterizedTest(name = "\"{0}\" -> \"{1}\"")
  @CsvSource(
      delimiter = '|',
      value = {
        "a|a",
        "./a/b|a/b",
        "a//b/./c/|a/b/c",
        "./|''",
        ".|''",
        "a/..b/c..|a/..b/c..",
        "...|...",
        "a b/ü|a b/ü",
      })
  void acceptsAndNormalizes(String name, String expected) throws HostileArchiveException {
    assertThat(EntryPath.parse(name, name).toString()).isEqualTo(expected);
  }

  @ParameterizedTest(name = "\"{0}\" refused: {1}")
  @CsvSource(
      delimiter = '|',
      value = {
        "..|name has a \"..\" component",
        "../x|name has a \"..\" component",
        "a/../../x|name has a \"..\" component",
        "a/..|name has a \"..\" component",
        "./../x|name has a \"..\" component",
        "a/b/../../..|name has a \"..\" component",
        "/etc/passwd|absolute name; only relative names are accepted",
        "//x|absolute name; only relative names are accepted",
        "''|empty name",
      })
  void refuses(String name, String reason) {
    assertThatThrownBy(() -> EntryPath.parse(name, name))
        .isInstanceOf(HostileArchiveException.class)
        .hasMessage("archive entry \"" + name + "\" refused: " + reason);
  }

  @Test
  void refusesNulOverlongNamesAndPathBombs() {
    assertThatThrownBy(() -> EntryPath.parse("e", "a\0b")).hasMessageContaining("NUL");
    assertThatThrownBy(() -> EntryPath.parse("e", "x".repeat(256)))
        .hasMessageContaining("component is 256 characters; at most 255 accepted");
    assertThatThrownBy(() -> EntryPath.parse("e", "a/".repeat(2100)))
        .hasMessageContaining("at most 4096 accepted");
    assertThatThrownBy(() -> EntryPath.parse("e", "a/".repeat(300)))
        .hasMessageContaining("300 levels deep; at most 256 accepted");
  }

  /**
   * Random names from an alphabet of troublemakers: whatever is accepted is relative, free of
   * {@code ..}, {@code .} and empty components, and resolves below any root.
   */
  @Test
  void randomNamesNeverEscape() {
    List<String> pieces =
        List.of("..", ".", "a", "", "/", "b..", "..c", "\\..", "%2e%2e", " ", "\0");
    Random random = new Random(7);
    java.nio.file.Path root = java.nio.file.Path.of("/r/root");
    int accepted = 0;
    for (int i = 0; i < 20_000; i++) {
      StringBuilder name = new StringBuilder();
      int n = 1 + random.nextInt(8);
      for (int j = 0; j < n; j++) {
        name.append(pieces.get(random.nextInt(pieces.size())));
        if (random.nextBoolean()) {
          name.append('/');
        }
      }
      EntryPath parsed;
      try {
        parsed = EntryPath.parse("e", name.toString());
      } catch (HostileArchiveException refused) {
        assertThat(refused).hasMessageStartingWith("archive entry \"e\" refused: ");
        continue;
      }
      accepted++;
      assertThat(parsed.components()).doesNotContain("..", ".", "").allMatch(c -> !c.contains("/"));
      java.nio.file.Path resolved = root;
      for (String c : parsed.components()) {
        resolved = resolved.resolve(c);
      }
      assertThat(resolved.normalize().startsWith(root))
          .as("%s stays below %s", resolved, root)
          .isTrue();
    }
    assertThat(accepted).as("the generator also produces acceptable names").isGreaterThan(1000);
  }
}
