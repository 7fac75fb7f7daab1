package io.chrootbooter.e2e.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.luaj.vm2.Globals;
import org.luaj.vm2.LuaTable;
import org.luaj.vm2.LuaValue;
import org.luaj.vm2.lib.jse.JsePlatform;

/**
 * Runs the Argo CD health checks of {@code helm/argocd} in a Lua interpreter (LuaJ, close to the
 * gopher-lua Argo CD embeds: both give the script a global {@code obj} and read the returned
 * table's {@code status} and {@code message}) against BootImages and MachineBoots in each kstatus
 * state.
 */
class ArgoCdHealthTest {
  private static final Path ARGOCD = Manifests.REPO.resolve("helm/argocd");

  record Health(String status, String message) {}

  @ParameterizedTest
  @ValueSource(strings = {"BootImage", "MachineBoot"})
  void readyIsHealthy(String kind) throws IOException {
    Health health =
        check(
            kind,
            """
            metadata: {name: x, generation: 3}
            status:
              observedGeneration: 3
              conditions:
                - {type: Ready, status: "True", reason: Running, message: runs debian-12}
                - {type: Reconciling, status: "False", reason: Running}
                - {type: Stalled, status: "False", reason: Running}
            """);

    assertThat(health).isEqualTo(new Health("Healthy", "Running: runs debian-12"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"BootImage", "MachineBoot"})
  void reconcilingIsProgressing(String kind) throws IOException {
    Health health =
        check(
            kind,
            """
            metadata: {name: x, generation: 1}
            status:
              observedGeneration: 1
              conditions:
                - {type: Ready, status: "False", reason: WaitingForAgent}
                - {type: Reconciling, status: "True", reason: WaitingForAgent, message: no agent has reported}
                - {type: Stalled, status: "False", reason: WaitingForAgent}
            """);

    assertThat(health)
        .isEqualTo(new Health("Progressing", "WaitingForAgent: no agent has reported"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"BootImage", "MachineBoot"})
  void stalledIsDegraded(String kind) throws IOException {
    Health health =
        check(
            kind,
            """
            metadata: {name: x, generation: 2}
            status:
              observedGeneration: 2
              conditions:
                - {type: Ready, status: "False", reason: InvalidSpec}
                - {type: Reconciling, status: "False", reason: InvalidSpec}
                - {type: Stalled, status: "True", reason: InvalidSpec, message: 'spec.sha256: "abc1" is not 64 lower-case hex digits'}
            """);

    assertThat(health)
        .isEqualTo(
            new Health(
                "Degraded", "InvalidSpec: spec.sha256: \"abc1\" is not 64 lower-case hex digits"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"BootImage", "MachineBoot"})
  void noStatusOrNoConditionsIsProgressing(String kind) throws IOException {
    assertThat(check(kind, "metadata: {name: x, generation: 1}\n").status())
        .isEqualTo("Progressing");
    assertThat(check(kind, "metadata: {name: x, generation: 1}\nstatus: {}\n").status())
        .isEqualTo("Progressing");
    assertThat(
            check(kind, "metadata: {name: x, generation: 1}\nstatus: {conditions: []}\n").status())
        .isEqualTo("Progressing");
    // A condition without a message still gives a message.
    assertThat(
            check(
                kind,
                """
                metadata: {name: x}
                status:
                  conditions: [{type: Ready, status: "True", reason: ImageReady}]
                """))
        .isEqualTo(new Health("Healthy", "ImageReady"));
  }

  @ParameterizedTest
  @ValueSource(strings = {"BootImage", "MachineBoot"})
  void statusOlderThanTheSpecIsProgressingEvenWhenReady(String kind) throws IOException {
    Health health =
        check(
            kind,
            """
            metadata: {name: x, generation: 5}
            status:
              observedGeneration: 4
              conditions:
                - {type: Ready, status: "True", reason: Running}
                - {type: Stalled, status: "False", reason: Running}
            """);

    assertThat(health.status()).isEqualTo("Progressing");
    assertThat(health.message()).contains("generation 4").contains("generation 5");
  }

  @ParameterizedTest
  @ValueSource(strings = {"BootImage", "MachineBoot"})
  void readmeSnippetIsTheSameScript(String kind) throws IOException {
    String readme = Files.readString(ARGOCD.resolve("README.md"));
    Matcher m =
        Pattern.compile(
                "(?m)^  resource\\.customizations\\.health\\.boot\\.chrootbooter\\.io_"
                    + kind
                    + ": \\|\\n((?:    .*\\n|\\n)+)")
            .matcher(readme);

    assertThat(m.find()).as("argocd-cm key for %s in helm/argocd/README.md", kind).isTrue();
    String snippet = m.group(1).replaceAll("(?m)^    ", "").stripTrailing();
    assertThat(snippet).isEqualTo(script(kind).stripTrailing());
  }

  private static String script(String kind) throws IOException {
    return Files.readString(ARGOCD.resolve("boot.chrootbooter.io_" + kind + ".lua"));
  }

  /** Runs the check for {@code kind} with {@code obj} (YAML) as Argo CD does. */
  private static Health check(String kind, String objYaml) throws IOException {
    JsonNode obj = Manifests.YAML.readTree(objYaml);
    ((ObjectNode) obj).put("apiVersion", "boot.chrootbooter.io/v1alpha1").put("kind", kind);
    Globals globals = JsePlatform.standardGlobals();
    globals.set("obj", lua(obj));
    LuaValue result = globals.load(script(kind), kind + ".lua").call();
    assertThat(result.istable()).as("the check returns a table").isTrue();
    for (String key : List.of("status", "message")) {
      assertThat(result.get(key).isstring()).as("hs.%s is a string", key).isTrue();
    }
    return new Health(result.get("status").tojstring(), result.get("message").tojstring());
  }

  /** JSON to Lua as Argo CD converts the unstructured object: objects and arrays become tables. */
  private static LuaValue lua(JsonNode node) {
    if (node.isObject()) {
      LuaTable table = new LuaTable();
      node.fields().forEachRemaining(e -> table.set(e.getKey(), lua(e.getValue())));
      return table;
    }
    if (node.isArray()) {
      LuaTable table = new LuaTable();
      for (int i = 0; i < node.size(); i++) {
        table.set(i + 1, lua(node.get(i)));
      }
      return table;
    }
    if (node.isIntegralNumber() && node.canConvertToInt()) {
      return LuaValue.valueOf(node.asInt());
    }
    if (node.isNumber()) {
      return LuaValue.valueOf(node.asDouble());
    }
    if (node.isBoolean()) {
      return LuaValue.valueOf(node.asBoolean());
    }
    if (node.isNull()) {
      return LuaValue.NIL;
    }
    return LuaValue.valueOf(node.asText());
  }
}
