package io.chrootbooter.e2e.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The Grafana dashboard the chart ships: a ConfigMap the Grafana sidecar picks up by label, whose
 * queries name only meters the operator registers (a renamed meter breaks this test, not the
 * dashboard in production).
 */
class GrafanaDashboardTest {
  private static final Pattern METRIC = Pattern.compile("\\b(chrootbooter_[a-z_]+)\\b");
  private static final Pattern METER_NAME = Pattern.compile("\"(chrootbooter(?:\\.[a-z]+)+)\"");

  @Test
  void dashboardIsAConfigMapWithTheSidecarLabel() throws IOException {
    JsonNode configMap = Manifests.render().one("ConfigMap", Manifests.RELEASE + "-dashboard");

    assertThat(configMap.at("/metadata/labels/grafana_dashboard").asText()).isEqualTo("1");
    JsonNode dashboard =
        new ObjectMapper().readTree(configMap.at("/data/chrootbooter.json").asText());
    assertThat(dashboard.path("uid").asText()).isEqualTo("chrootbooter");
    assertThat(dashboard.path("panels").size()).isGreaterThan(10);
  }

  @Test
  void dashboardCanBeSwitchedOff(@org.junit.jupiter.api.io.TempDir Path dir) {
    assertThat(Manifests.render(dir, "dashboard: {enabled: false}\n").all("ConfigMap")).isEmpty();
  }

  @Test
  void panelsQueryTheOperatorMetrics() throws IOException {
    String exprs = String.join("\n", expressions(dashboard()));

    assertThat(exprs)
        .contains(
            "chrootbooter_reconcile_seconds_count",
            "chrootbooter_reconcile_seconds_sum",
            "chrootbooter_machines{",
            "chrootbooter_agent_streams",
            "chrootbooter_agent_status_patches_total",
            "chrootbooter_store_download_bytes_total",
            "chrootbooter_store_download_failures_total",
            "http_server_requests_seconds_count",
            "by (kind)",
            "by (phase)");
  }

  @Test
  void switchAndReturnHistogramsArePlottedAsQuantilesByTrigger() throws IOException {
    String exprs = String.join("\n", expressions(dashboard()));

    for (String histogram : List.of("chrootbooter_switch_seconds", "chrootbooter_return_seconds")) {
      assertThat(exprs)
          .contains(
              "histogram_quantile(0.95, sum by (le, trigger) (rate(" + histogram + "_bucket{",
              "sum by (trigger) (increase(" + histogram + "_count{");
    }
    assertThat(exprs)
        .contains(
            "max by (pod) (chrootbooter_leader{", "chrootbooter_agent_status_superseded_total{");
  }

  @Test
  void theFlightRecordersStepsAndTheSwitchTimeByImageArePlotted() throws IOException {
    String exprs = String.join("\n", expressions(dashboard()));

    assertThat(exprs)
        .as("where a switch spends its time")
        .contains(
            "sum by (step) (rate(chrootbooter_step_seconds_sum{",
            "sum by (step) (rate(chrootbooter_step_seconds_count{")
        .as("did a new image build get slower")
        .contains("histogram_quantile(0.95, sum by (le, image) (rate(chrootbooter_switch_seconds");
  }

  @Test
  void everyChrootbooterMetricOnTheDashboardIsRegisteredByTheOperator() throws IOException {
    Set<String> meters = operatorMeterNames();
    assertThat(meters)
        .as("meter names found in operator/src/main")
        .contains("chrootbooter.machines");

    Set<String> used = new TreeSet<>();
    for (String expr : expressions(dashboard())) {
      Matcher m = METRIC.matcher(expr);
      while (m.find()) {
        used.add(m.group(1));
      }
    }
    assertThat(used).isNotEmpty();
    for (String metric : used) {
      // Micrometer's Prometheus names: timers _seconds_{count,sum,max}, counters _total.
      String meter =
          metric
              .replaceFirst("_seconds_(count|sum|max|bucket)$", "")
              .replaceFirst("_total$", "")
              .replace('_', '.');
      assertThat(meters).as("%s (meter %s) on the dashboard", metric, meter).contains(meter);
    }
  }

  @Test
  void everyPanelHasAQueryAndUsesTheDatasourceVariable() throws IOException {
    for (JsonNode panel : dashboard().path("panels")) {
      if ("row".equals(panel.path("type").asText())) {
        continue;
      }
      assertThat(panel.path("targets")).as(panel.path("title").asText()).isNotEmpty();
      assertThat(panel.at("/datasource/uid").asText()).isEqualTo("${datasource}");
    }
  }

  private static JsonNode dashboard() throws IOException {
    return new ObjectMapper()
        .readTree(Manifests.CHART.resolve("files/grafana-dashboard.json").toFile());
  }

  private static List<String> expressions(JsonNode dashboard) {
    List<String> out = new ArrayList<>();
    for (JsonNode panel : dashboard.path("panels")) {
      for (JsonNode target : panel.path("targets")) {
        out.add(target.path("expr").asText());
      }
    }
    return out;
  }

  private static Set<String> operatorMeterNames() throws IOException {
    Set<String> names = new TreeSet<>();
    try (Stream<Path> files = Files.walk(Manifests.REPO.resolve("operator/src/main/java"))) {
      for (Path file : files.filter(p -> p.toString().endsWith(".java")).toList()) {
        Matcher m = METER_NAME.matcher(Files.readString(file));
        while (m.find()) {
          names.add(m.group(1));
        }
      }
    }
    return names;
  }
}
