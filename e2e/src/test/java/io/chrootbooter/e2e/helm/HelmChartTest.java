package io.chrootbooter.e2e.helm;

import static io.chrootbooter.e2e.helm.Manifests.container;
import static io.chrootbooter.e2e.helm.Manifests.env;
import static io.chrootbooter.e2e.helm.Manifests.mount;
import static io.chrootbooter.e2e.helm.Manifests.permissions;
import static io.chrootbooter.e2e.helm.Manifests.strings;
import static io.chrootbooter.e2e.helm.Manifests.volume;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code helm lint} and {@code helm template} of {@code helm/chrootbooter} through helm-java (Helm
 * compiled into a native library, no binary or cluster needed), with assertions on the rendered
 * manifests: what a cluster admin reviews before installing.
 */
class HelmChartTest {
  private static final String FULLNAME = Manifests.RELEASE;
  private static final String SERVICE_URL = "http://chrootbooter.chrootbooter.svc:8080";

  /** What the operator does to the resources it watches; nothing more. */
  private static final Set<String> WATCH_PERMISSIONS =
      Set.of(
          "boot.chrootbooter.io/bootimages:get",
          "boot.chrootbooter.io/bootimages:list",
          "boot.chrootbooter.io/bootimages:watch",
          "boot.chrootbooter.io/machineboots:get",
          "boot.chrootbooter.io/machineboots:list",
          "boot.chrootbooter.io/machineboots:watch",
          "boot.chrootbooter.io/boottests:get",
          "boot.chrootbooter.io/boottests:list",
          "boot.chrootbooter.io/boottests:watch",
          // JOSDK adds and removes the BootImage finalizer with a JSON patch of the resource.
          "boot.chrootbooter.io/bootimages:patch",
          "boot.chrootbooter.io/boottests:patch",
          // A BootTest holds a MachineBoot (annotation and label) and applies its afterTest.
          "boot.chrootbooter.io/machineboots:patch",
          "boot.chrootbooter.io/bootimages/status:get",
          "boot.chrootbooter.io/bootimages/status:update",
          "boot.chrootbooter.io/bootimages/status:patch",
          "boot.chrootbooter.io/machineboots/status:get",
          "boot.chrootbooter.io/machineboots/status:update",
          "boot.chrootbooter.io/machineboots/status:patch",
          "boot.chrootbooter.io/bootimages/finalizers:update",
          "boot.chrootbooter.io/boottests/status:get",
          "boot.chrootbooter.io/boottests/status:update",
          "boot.chrootbooter.io/boottests/status:patch",
          "boot.chrootbooter.io/boottests/finalizers:update",
          "core/events:create",
          "core/events:patch",
          // The agent Leases, one per MachineBoot in its namespace: renewed by every replica,
          // watched by the reconciler.
          "coordination.k8s.io/leases:get",
          "coordination.k8s.io/leases:list",
          "coordination.k8s.io/leases:watch",
          "coordination.k8s.io/leases:create",
          "coordination.k8s.io/leases:patch");

  /** The operator's own namespace: the Lease and the token Secret by name, create unnamed. */
  private static final Set<String> SELF_PERMISSIONS =
      Set.of(
          "coordination.k8s.io/leases/chrootbooter-operator-leader:get",
          "coordination.k8s.io/leases/chrootbooter-operator-leader:update",
          "coordination.k8s.io/leases:create",
          "core/secrets/chrootbooter-machine-token:get",
          "core/secrets:create");

  private static Manifests defaults;

  @BeforeAll
  static void renderDefaults() {
    defaults = Manifests.render();
  }

  @Test
  void lintIsClean() {
    LintResult lint = new Helm(Manifests.CHART).lint().strict().call();

    assertThat(lint.isFailed()).as(String.join("\n", lint.getMessages())).isFalse();
    assertThat(lint.getMessages()).noneMatch(m -> m.contains("[WARNING]") || m.contains("[ERROR]"));
  }

  @Test
  void installNotesWarnWhenMachinesCannotReachTheOperator(@TempDir Path dir) throws Exception {
    String withoutUrl = installNotes(null);
    String withUrl =
        installNotes(
            Files.writeString(dir.resolve("public.yaml"), "publicUrl: http://10.0.0.10:8080\n"));

    assertThat(withoutUrl)
        .contains("kubectl label node <node> chrootbooter.io/pxe=true")
        .contains("port-forward svc/chrootbooter-admin 9000")
        .contains("WARNING: neither publicUrl nor pxe.operatorUrl is set");
    assertThat(withUrl)
        .contains("chaining iPXE to http://10.0.0.10:8080")
        .doesNotContain("WARNING");
  }

  /** The NOTES of a client-only dry-run install (no cluster involved). */
  private static String installNotes(Path values) {
    var install =
        new Helm(Manifests.CHART)
            .install()
            .withName(Manifests.RELEASE)
            .withNamespace(Manifests.NAMESPACE)
            .dryRun()
            .clientOnly();
    if (values != null) {
      install = install.withValuesFile(values);
    }
    String output = install.call().getOutput();
    assertThat(output).contains("NOTES:");
    return output.substring(output.indexOf("NOTES:"));
  }

  @Test
  void defaultsRenderEveryPart() {
    assertThat(defaults.objects())
        .extracting(o -> o.path("kind").asText() + "/" + o.at("/metadata/name").asText())
        .containsExactlyInAnyOrder(
            "ServiceAccount/chrootbooter",
            "ClusterRole/chrootbooter",
            "ClusterRoleBinding/chrootbooter",
            "ClusterRole/chrootbooter-cluster-networks",
            "ClusterRoleBinding/chrootbooter-cluster-networks",
            "ClusterRole/chrootbooter-console-auth",
            "ClusterRoleBinding/chrootbooter-console-auth",
            "ClusterRole/chrootbooter-viewer",
            "ClusterRole/chrootbooter-console",
            "Role/chrootbooter-self",
            "RoleBinding/chrootbooter-self",
            "Deployment/chrootbooter",
            "Service/chrootbooter",
            "Service/chrootbooter-admin",
            "NetworkPolicy/chrootbooter",
            "PersistentVolumeClaim/chrootbooter-images",
            "DaemonSet/chrootbooter-pxe",
            "ConfigMap/chrootbooter-dashboard");
    assertThat(defaults.yaml()).doesNotContain("RELEASE-NAME");
    for (JsonNode workload : List.of(defaults.one("Deployment"), defaults.one("DaemonSet"))) {
      JsonNode podLabels = workload.at("/spec/template/metadata/labels");
      workload
          .at("/spec/selector/matchLabels")
          .fields()
          .forEachRemaining(
              e ->
                  assertThat(podLabels.path(e.getKey()).asText())
                      .as("pod label %s of %s", e.getKey(), workload.at("/metadata/name"))
                      .isEqualTo(e.getValue().asText()));
    }
  }

  @Test
  void allNamespacesGetAClusterRoleWithExactlyTheNeededVerbs() {
    JsonNode clusterRole = defaults.one("ClusterRole", FULLNAME);

    assertThat(permissions(clusterRole)).containsExactlyInAnyOrderElementsOf(WATCH_PERMISSIONS);
    // The leader-election Lease is changed only through the namespaced, name-scoped Role.
    assertThat(clusterRole.toString()).doesNotContain("chrootbooter-operator-leader");
    assertThat(permissions(clusterRole)).doesNotContain("coordination.k8s.io/leases:update");
    JsonNode binding = defaults.one("ClusterRoleBinding", FULLNAME);
    assertThat(binding.at("/roleRef/name").asText()).isEqualTo(FULLNAME);
    assertThat(binding.at("/subjects/0/name").asText()).isEqualTo(FULLNAME);
    assertThat(binding.at("/subjects/0/namespace").asText()).isEqualTo(Manifests.NAMESPACE);
  }

  @Test
  void leaseAndTokenSecretAreNamespacedAndByName() {
    JsonNode self = defaults.one("Role", FULLNAME + "-self");

    assertThat(self.at("/metadata/namespace").asText()).isEqualTo(Manifests.NAMESPACE);
    assertThat(permissions(self)).containsExactlyInAnyOrderElementsOf(SELF_PERMISSIONS);
    JsonNode binding = defaults.one("RoleBinding", FULLNAME + "-self");
    assertThat(binding.at("/roleRef/kind").asText()).isEqualTo("Role");
    assertThat(binding.at("/subjects/0/name").asText())
        .isEqualTo(defaults.one("ServiceAccount").at("/metadata/name").asText());
    JsonNode deployment = defaults.one("Deployment", FULLNAME);
    assertThat(deployment.at("/spec/template/spec/serviceAccountName").asText())
        .isEqualTo(FULLNAME);
    assertThat(env(defaults.operatorContainer(), "CB_TOKENS_SECRET_NAME"))
        .contains("chrootbooter-machine-token");
    assertThat(env(defaults.operatorContainer(), "CB_TOKENS_NAMESPACE"))
        .contains(Manifests.NAMESPACE);
    assertThat(env(defaults.operatorContainer(), "CB_LEADER_ELECTION_LEASE_NAME"))
        .contains("chrootbooter-operator-leader");
  }

  @Test
  void noRuleAnywhereUsesWildcards() {
    for (String kind : List.of("Role", "ClusterRole")) {
      for (JsonNode role : defaults.all(kind)) {
        for (JsonNode rule : role.path("rules")) {
          assertThat(strings(rule.path("verbs"))).as("%s", rule).doesNotContain("*");
          assertThat(strings(rule.path("resources"))).as("%s", rule).doesNotContain("*");
          assertThat(strings(rule.path("apiGroups"))).as("%s", rule).doesNotContain("*");
        }
      }
    }
  }

  @Test
  void operatorDeploymentHasProbesAndALockedDownContainer() {
    JsonNode deployment = defaults.one("Deployment", FULLNAME);
    JsonNode operator = defaults.operatorContainer();

    assertThat(deployment.at("/spec/replicas").asInt()).isEqualTo(2);
    // Health is on the admin port only: the machine port answers 404 for /q/health.
    assertThat(operator.at("/livenessProbe/httpGet/path").asText()).isEqualTo("/q/health/live");
    assertThat(operator.at("/livenessProbe/httpGet/port").asText()).isEqualTo("admin");
    assertThat(operator.at("/readinessProbe/httpGet/path").asText()).isEqualTo("/q/health/ready");
    assertThat(operator.at("/readinessProbe/httpGet/port").asText()).isEqualTo("admin");
    assertThat(operator.at("/startupProbe/httpGet/port").asText()).isEqualTo("admin");
    assertThat(operator.path("ports"))
        .extracting(p -> p.path("name").asText() + ":" + p.path("containerPort").asInt())
        .containsExactly("machines:8080", "admin:9000");
    assertThat(env(operator, "QUARKUS_HTTP_PORT")).contains("8080");
    assertThat(env(operator, "QUARKUS_MANAGEMENT_PORT")).contains("9000");
    // Each replica's own admin address, where the others forward a console attach or read.
    assertThat(env(operator, "CB_REPLICA_ADMIN_URL")).contains("http://$(POD_IP):9000");
    List<String> envNames = new java.util.ArrayList<>();
    operator.path("env").forEach(e -> envNames.add(e.path("name").asText()));
    assertThat(envNames.indexOf("POD_IP"))
        .as("POD_IP is defined before CB_REPLICA_ADMIN_URL refers to it")
        .isBetween(0, envNames.indexOf("CB_REPLICA_ADMIN_URL") - 1);
    assertThat(deployment.at("/spec/template/metadata/annotations/prometheus.io~1port").asText())
        .isEqualTo("9000");
    assertThat(operator.at("/image").asText())
        .isEqualTo("ghcr.io/chrootbooter/chrootbooter-operator:0.1.0-SNAPSHOT");
    assertThat(operator.at("/resources/requests/memory").asText()).isEqualTo("512Mi");
    assertThat(operator.at("/resources/limits/memory").asText()).isEqualTo("1Gi");

    JsonNode sc = operator.path("securityContext");
    assertThat(sc.path("runAsNonRoot").asBoolean()).isTrue();
    assertThat(sc.path("readOnlyRootFilesystem").asBoolean()).isTrue();
    assertThat(sc.path("allowPrivilegeEscalation").isBoolean()).isTrue();
    assertThat(sc.path("allowPrivilegeEscalation").asBoolean()).isFalse();
    assertThat(strings(sc.at("/capabilities/drop"))).containsExactly("ALL");
    assertThat(sc.at("/capabilities/add").isMissingNode()).isTrue();
    assertThat(sc.at("/seccompProfile/type").asText()).isEqualTo("RuntimeDefault");
    JsonNode podSc = deployment.at("/spec/template/spec/securityContext");
    assertThat(podSc.path("runAsNonRoot").asBoolean()).isTrue();
    assertThat(podSc.path("runAsUser").asInt()).isPositive();
    assertThat(podSc.at("/seccompProfile/type").asText()).isEqualTo("RuntimeDefault");

    // The root filesystem is read-only: /tmp is a writable emptyDir.
    assertThat(volume(deployment, "tmp")).get().extracting(v -> v.has("emptyDir")).isEqualTo(true);
    assertThat(mount(operator, "tmp"))
        .get()
        .extracting(m -> m.path("mountPath").asText())
        .isEqualTo("/tmp");
  }

  @Test
  void operatorGetsItsSettingsAndVolumes() {
    JsonNode deployment = defaults.one("Deployment", FULLNAME);
    JsonNode operator = defaults.operatorContainer();

    assertThat(env(operator, "CB_STORE_PATH")).contains("/var/lib/chrootbooter/images");
    assertThat(env(operator, "CB_BOOTSTRAP_DIR")).contains("/var/lib/chrootbooter/bootstrap");
    assertThat(env(operator, "CB_PUBLIC_URL")).isEmpty();
    assertThat(env(operator, "CB_IPXE_UNKNOWN_MACHINE_SCRIPT")).isEmpty();
    for (String name :
        List.of(
            "QUARKUS_OPERATOR_SDK_NAMESPACES",
            "QUARKUS_OPERATOR_SDK_CONTROLLERS_BOOTIMAGE_NAMESPACES",
            "QUARKUS_OPERATOR_SDK_CONTROLLERS_MACHINEBOOT_NAMESPACES",
            "QUARKUS_OPERATOR_SDK_CONTROLLERS_BOOTTEST_NAMESPACES")) {
      assertThat(env(operator, name)).as(name).contains("JOSDK_ALL_NAMESPACES");
    }
    assertThat(
            volume(deployment, "images")
                .orElseThrow()
                .at("/persistentVolumeClaim/claimName")
                .asText())
        .isEqualTo("chrootbooter-images");
    assertThat(mount(operator, "images").orElseThrow().path("mountPath").asText())
        .isEqualTo("/var/lib/chrootbooter/images");
    JsonNode bootstrap = mount(operator, "bootstrap").orElseThrow();
    assertThat(bootstrap.path("mountPath").asText()).isEqualTo("/var/lib/chrootbooter/bootstrap");
    assertThat(bootstrap.path("readOnly").asBoolean()).isTrue();
    assertThat(volume(deployment, "tls")).isEmpty();
    assertThat(operator.path("ports")).hasSize(2);
  }

  @Test
  void readWriteOnceStoreKeepsTheReplicasOnOneNode() {
    JsonNode affinity = defaults.one("Deployment", FULLNAME).at("/spec/template/spec/affinity");

    JsonNode term = affinity.at("/podAffinity/requiredDuringSchedulingIgnoredDuringExecution/0");
    assertThat(term.path("topologyKey").asText()).isEqualTo("kubernetes.io/hostname");
    assertThat(term.at("/labelSelector/matchLabels/app.kubernetes.io~1name").asText())
        .isEqualTo("chrootbooter-operator");
    assertThat(affinity.has("podAntiAffinity")).isFalse();
  }

  @Test
  void machineAndAdminPortsHaveServicesOfTheirOwn() {
    JsonNode service = defaults.one("Service", FULLNAME);
    JsonNode admin = defaults.one("Service", FULLNAME + "-admin");
    JsonNode podLabels = defaults.one("Deployment", FULLNAME).at("/spec/template/metadata/labels");

    // The Service machines reach has the machine port and nothing else.
    assertThat(service.at("/spec/ports"))
        .extracting(p -> p.path("name").asText() + ":" + p.path("port").asInt())
        .containsExactly("machines:8080");
    assertThat(service.at("/spec/ports/0/targetPort").asText()).isEqualTo("machines");
    // A machine's stream and reports reach one replica, which can then time its switches.
    assertThat(service.at("/spec/sessionAffinity").asText()).isEqualTo("ClientIP");
    // The admin port has a cluster-internal Service of its own.
    assertThat(admin.at("/spec/ports"))
        .extracting(p -> p.path("name").asText() + ":" + p.path("port").asInt())
        .containsExactly("admin:9000");
    assertThat(admin.at("/spec/ports/0/targetPort").asText()).isEqualTo("admin");
    assertThat(admin.at("/spec/type").asText()).isEqualTo("ClusterIP");
    for (JsonNode s : List.of(service, admin)) {
      s.at("/spec/selector")
          .fields()
          .forEachRemaining(
              e ->
                  assertThat(podLabels.path(e.getKey()).asText()).isEqualTo(e.getValue().asText()));
    }
  }

  @Test
  void exposingTheMachineServiceNeverExposesTheAdminPort(@TempDir Path dir) {
    Manifests m =
        Manifests.render(
            dir,
            "service: {type: LoadBalancer, loadBalancerIP: 10.0.0.10}\ntls: {secretName: t}\n");

    JsonNode service = m.one("Service", FULLNAME);
    assertThat(service.at("/spec/type").asText()).isEqualTo("LoadBalancer");
    assertThat(service.at("/spec/ports"))
        .extracting(p -> p.path("targetPort").asText())
        .containsExactlyInAnyOrder("machines", "machines-https");
    assertThat(m.one("Service", FULLNAME + "-admin").at("/spec/type").asText())
        .isEqualTo("ClusterIP");
  }

  @Test
  void networkPolicyAdmitsAnyoneToTheMachinePortAndTheNamespaceToTheAdminPortByDefault() {
    JsonNode policy = defaults.one("NetworkPolicy", FULLNAME);
    JsonNode podLabels = defaults.one("Deployment", FULLNAME).at("/spec/template/metadata/labels");

    policy
        .at("/spec/podSelector/matchLabels")
        .fields()
        .forEachRemaining(
            e -> assertThat(podLabels.path(e.getKey()).asText()).isEqualTo(e.getValue().asText()));
    assertThat(strings(policy.at("/spec/policyTypes"))).containsExactly("Ingress");
    JsonNode rules = policy.at("/spec/ingress");
    assertThat(rules).hasSize(2);
    // Machine port: no "from", so from anywhere (the machines' network is not known).
    assertThat(ports(rules.get(0))).containsExactly("machines");
    assertThat(rules.get(0).has("from")).isFalse();
    // Admin port: the pods of the release namespace, and no one else.
    assertThat(ports(rules.get(1))).containsExactly("admin");
    JsonNode from = rules.get(1).path("from");
    assertThat(from).hasSize(1);
    assertThat(from.get(0).has("namespaceSelector")).isFalse();
    assertThat(from.get(0).has("ipBlock")).isFalse();
    assertThat(from.get(0).path("podSelector").isObject()).isTrue();
    assertThat(from.get(0).path("podSelector").size()).isZero();
  }

  @Test
  void networkPolicyTakesMachineCidrsAndAdminPeers(@TempDir Path dir) {
    Manifests m =
        Manifests.render(
            dir,
            """
            tls: {secretName: operator-tls}
            networkPolicy:
              machineCidrs: [10.20.0.0/16, 192.168.7.0/24]
              admin:
                namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
                podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}
                extraFrom:
                  - ipBlock: {cidr: 10.1.2.3/32}
            """);
    JsonNode rules = m.one("NetworkPolicy", FULLNAME).at("/spec/ingress");

    assertThat(ports(rules.get(0))).containsExactly("machines", "machines-https");
    assertThat(rules.get(0).path("from"))
        .extracting(p -> p.at("/ipBlock/cidr").asText())
        .containsExactly("10.20.0.0/16", "192.168.7.0/24");
    assertThat(ports(rules.get(1))).containsExactly("admin");
    JsonNode from = rules.get(1).path("from");
    assertThat(from).hasSize(3);
    assertThat(from.at("/0/namespaceSelector/matchLabels/kubernetes.io~1metadata.name").asText())
        .isEqualTo("monitoring");
    assertThat(from.at("/0/podSelector/matchLabels/app.kubernetes.io~1name").asText())
        .isEqualTo("prometheus");
    // The operator's own pods still reach each other: a console forward between replicas.
    JsonNode podLabels = m.one("Deployment", FULLNAME).at("/spec/template/metadata/labels");
    assertThat(from.get(1).has("namespaceSelector")).isFalse();
    assertThat(from.at("/1/podSelector/matchLabels").size()).isPositive();
    from.at("/1/podSelector/matchLabels")
        .fields()
        .forEachRemaining(
            e -> assertThat(podLabels.path(e.getKey()).asText()).isEqualTo(e.getValue().asText()));
    assertThat(from.at("/2/ipBlock/cidr").asText()).isEqualTo("10.1.2.3/32");

    assertThat(Manifests.render(dir, "networkPolicy: {enabled: false}\n").all("NetworkPolicy"))
        .isEmpty();
  }

  /** The ports of a NetworkPolicy rule, by name. */
  private static List<String> ports(JsonNode rule) {
    return Manifests.stream(rule.path("ports")).map(p -> p.path("port").asText()).toList();
  }

  @Test
  void imageStoreClaimHasTheConfiguredSize() {
    JsonNode pvc = defaults.one("PersistentVolumeClaim", "chrootbooter-images");

    assertThat(pvc.at("/spec/resources/requests/storage").asText()).isEqualTo("50Gi");
    assertThat(strings(pvc.at("/spec/accessModes"))).containsExactly("ReadWriteOnce");
    assertThat(pvc.at("/spec/storageClassName").isMissingNode()).isTrue();
    assertThat(pvc.at("/metadata/annotations/helm.sh~1resource-policy").asText()).isEqualTo("keep");
  }

  @Test
  void pxeServerRunsOnTheHostNetworkOfLabelledNodes() {
    JsonNode daemonSet = defaults.one("DaemonSet", FULLNAME + "-pxe");
    JsonNode pod = daemonSet.at("/spec/template/spec");
    JsonNode pxe = container(daemonSet, "pxe-server");

    assertThat(pod.path("hostNetwork").asBoolean()).isTrue();
    assertThat(pod.path("dnsPolicy").asText()).isEqualTo("ClusterFirstWithHostNet");
    assertThat(pod.path("automountServiceAccountToken").asBoolean(true)).isFalse();
    assertThat(Manifests.YAML.convertValue(pod.path("nodeSelector"), Map.class))
        .isEqualTo(Map.of("chrootbooter.io/pxe", "true"));
    assertThat(strings(pxe.path("args")))
        .containsExactly("--operator", SERVICE_URL, "--interface", "eth0");
    assertThat(strings(pxe.path("command")))
        .containsExactly("java", "-jar", "/opt/chrootbooter/chrootbooter-pxe-server.jar");
    JsonNode sc = pxe.path("securityContext");
    assertThat(strings(sc.at("/capabilities/drop"))).containsExactly("ALL");
    assertThat(strings(sc.at("/capabilities/add")))
        .containsExactlyInAnyOrder("NET_BIND_SERVICE", "NET_RAW");
    assertThat(sc.path("allowPrivilegeEscalation").isBoolean()).isTrue();
    assertThat(sc.path("allowPrivilegeEscalation").asBoolean()).isFalse();
    assertThat(sc.path("readOnlyRootFilesystem").asBoolean()).isTrue();
    assertThat(sc.path("privileged").asBoolean(false)).isFalse();
    assertThat(pxe.path("ports"))
        .extracting(p -> p.path("containerPort").asInt() + "/" + p.path("protocol").asText())
        .containsExactlyInAnyOrder("67/UDP", "4011/UDP", "69/UDP");
  }

  @Test
  void watchNamespacesGiveRolesAndNothingClusterWideButTheNetworkList(@TempDir Path dir) {
    Manifests m =
        Manifests.render(
            dir,
            """
            watchNamespaces: [lab, staging]
            pxe:
              enabled: false
            """);

    // Only the read-only list of Nodes and ServiceCIDRs, which exist cluster-wide only, the
    // reviews of users' credentials (cluster-scoped APIs that read nothing stored), and the
    // roles for people, which grant the operator nothing.
    assertThat(m.all("ClusterRole"))
        .extracting(r -> r.at("/metadata/name").asText())
        .containsExactlyInAnyOrder(
            FULLNAME + "-cluster-networks",
            FULLNAME + "-console-auth",
            "chrootbooter-viewer",
            "chrootbooter-console");
    assertThat(m.all("ClusterRoleBinding"))
        .extracting(r -> r.at("/metadata/name").asText())
        .containsExactlyInAnyOrder(FULLNAME + "-cluster-networks", FULLNAME + "-console-auth");
    for (String ns : List.of("lab", "staging")) {
      JsonNode role =
          m.all("Role").stream()
              .filter(r -> ns.equals(r.at("/metadata/namespace").asText()))
              .findFirst()
              .orElseThrow(() -> new AssertionError("no Role in " + ns + ":\n" + m.yaml()));
      assertThat(permissions(role)).containsExactlyInAnyOrderElementsOf(WATCH_PERMISSIONS);
      JsonNode binding =
          m.all("RoleBinding").stream()
              .filter(r -> ns.equals(r.at("/metadata/namespace").asText()))
              .findFirst()
              .orElseThrow();
      assertThat(binding.at("/roleRef/kind").asText()).isEqualTo("Role");
      assertThat(binding.at("/roleRef/name").asText())
          .isEqualTo(role.at("/metadata/name").asText());
      assertThat(binding.at("/subjects/0/namespace").asText()).isEqualTo(Manifests.NAMESPACE);
    }
    // Secrets: none in the watched namespaces (caBundle Secrets are off by default); in the
    // operator's own namespace only the token Secret, by name.
    for (JsonNode role : m.all("Role")) {
      String ns = role.at("/metadata/namespace").asText();
      assertThat(permissions(role))
          .as("Secret permissions in %s", ns)
          .filteredOn(p -> p.startsWith("core/secrets"))
          .containsExactlyInAnyOrderElementsOf(
              ns.equals(Manifests.NAMESPACE)
                  ? List.of("core/secrets/chrootbooter-machine-token:get", "core/secrets:create")
                  : List.of());
    }
    assertThat(m.all("Role")).hasSize(3);
    assertThat(env(m.operatorContainer(), "QUARKUS_OPERATOR_SDK_NAMESPACES"))
        .contains("lab,staging");
    assertThat(
            env(m.operatorContainer(), "QUARKUS_OPERATOR_SDK_CONTROLLERS_MACHINEBOOT_NAMESPACES"))
        .contains("lab,staging");
    assertThat(env(m.operatorContainer(), "QUARKUS_OPERATOR_SDK_CONTROLLERS_BOOTTEST_NAMESPACES"))
        .contains("lab,staging");
    assertThat(m.all("DaemonSet")).isEmpty();
  }

  @Test
  void caBundleSecretsAreGrantedByNameOrForEverySecretOnlyWhenAsked(@TempDir Path dir) {
    Manifests named =
        Manifests.render(dir, "store: {caBundleSecrets: {names: [mirror-ca, lab-ca]}}\n");
    assertThat(permissions(named.one("ClusterRole", FULLNAME)))
        .filteredOn(p -> p.startsWith("core/secrets"))
        .containsExactlyInAnyOrder(
            "core/secrets/mirror-ca:get",
            "core/secrets/mirror-ca:list",
            "core/secrets/mirror-ca:watch",
            "core/secrets/lab-ca:get",
            "core/secrets/lab-ca:list",
            "core/secrets/lab-ca:watch");

    Manifests all = Manifests.render(dir, "store: {caBundleSecrets: {enabled: true}}\n");
    assertThat(permissions(all.one("ClusterRole", FULLNAME)))
        .filteredOn(p -> p.startsWith("core/secrets"))
        .containsExactlyInAnyOrder("core/secrets:get", "core/secrets:list", "core/secrets:watch");

    assertThat(defaults.one("ClusterRole", FULLNAME).toString()).doesNotContain("secrets");
    assertThat(permissions(defaults.one("Role", FULLNAME + "-self")))
        .containsExactlyInAnyOrderElementsOf(SELF_PERMISSIONS);
  }

  @Test
  void operatorCaBundleIsMountedFromASecretOrAConfigMap(@TempDir Path dir) {
    assertThat(env(defaults.operatorContainer(), "CB_STORE_CA_BUNDLE")).isEmpty();
    assertThat(volume(defaults.one("Deployment", FULLNAME), "ca-bundle")).isEmpty();

    Manifests secret =
        Manifests.render(dir, "store: {caBundle: {secretName: corp-ca, key: bundle.pem}}\n");
    JsonNode volume = volume(secret.one("Deployment", FULLNAME), "ca-bundle").orElseThrow();
    assertThat(volume.at("/secret/secretName").asText()).isEqualTo("corp-ca");
    assertThat(volume.at("/secret/items/0/key").asText()).isEqualTo("bundle.pem");
    JsonNode mount = mount(secret.operatorContainer(), "ca-bundle").orElseThrow();
    assertThat(mount.path("readOnly").asBoolean()).isTrue();
    assertThat(env(secret.operatorContainer(), "CB_STORE_CA_BUNDLE"))
        .contains(mount.path("mountPath").asText() + "/bundle.pem");

    Manifests configMap = Manifests.render(dir, "store: {caBundle: {configMapName: corp-ca}}\n");
    assertThat(
            volume(configMap.one("Deployment", FULLNAME), "ca-bundle")
                .orElseThrow()
                .at("/configMap/name")
                .asText())
        .isEqualTo("corp-ca");
    assertThat(env(configMap.operatorContainer(), "CB_STORE_CA_BUNDLE"))
        .contains("/etc/chrootbooter/ca/ca.crt");
  }

  @Test
  void imageSourceCidrsArePassedCommaJoined(@TempDir Path dir) {
    assertThat(env(defaults.operatorContainer(), "CB_STORE_DENIED_SOURCES")).isEmpty();
    assertThat(env(defaults.operatorContainer(), "CB_STORE_ALLOWED_SOURCES")).isEmpty();
    Manifests m =
        Manifests.render(
            dir,
            "store: {deniedSources: [10.244.0.0/16, 10.96.0.0/12],"
                + " allowedSources: [10.96.12.34/32]}\n");
    assertThat(env(m.operatorContainer(), "CB_STORE_DENIED_SOURCES"))
        .contains("10.244.0.0/16,10.96.0.0/12");
    assertThat(env(m.operatorContainer(), "CB_STORE_ALLOWED_SOURCES")).contains("10.96.12.34/32");
  }

  @Test
  void theClusterNetworksAreReadWithListOnNodesAndServiceCidrsOnly(@TempDir Path dir) {
    JsonNode role = defaults.one("ClusterRole", FULLNAME + "-cluster-networks");
    assertThat(permissions(role))
        .containsExactlyInAnyOrder("core/nodes:list", "networking.k8s.io/servicecidrs:list");
    JsonNode binding = defaults.one("ClusterRoleBinding", FULLNAME + "-cluster-networks");
    assertThat(binding.at("/roleRef/name").asText()).isEqualTo(FULLNAME + "-cluster-networks");
    assertThat(binding.at("/subjects/0/name").asText()).isEqualTo(FULLNAME);
    assertThat(env(defaults.operatorContainer(), "CB_STORE_DENY_CLUSTER_NETWORKS")).isEmpty();

    Manifests off = Manifests.render(dir, "store: {denyClusterNetworks: false}\n");
    assertThat(off.all("ClusterRole"))
        .extracting(r -> r.at("/metadata/name").asText())
        .doesNotContain(FULLNAME + "-cluster-networks");
    assertThat(env(off.operatorContainer(), "CB_STORE_DENY_CLUSTER_NETWORKS")).contains("false");
  }

  @Test
  void consolesAreAuthorizedWithReviewsAndTheRolesForPeopleGrantExactlyTheirRights(
      @TempDir Path dir) {
    assertThat(permissions(defaults.one("ClusterRole", FULLNAME + "-console-auth")))
        .containsExactlyInAnyOrder(
            "authentication.k8s.io/tokenreviews:create",
            "authorization.k8s.io/subjectaccessreviews:create");
    JsonNode binding = defaults.one("ClusterRoleBinding", FULLNAME + "-console-auth");
    assertThat(binding.at("/roleRef/name").asText()).isEqualTo(FULLNAME + "-console-auth");
    assertThat(binding.at("/subjects/0/name").asText()).isEqualTo(FULLNAME);
    List<String> read =
        List.of(
            "boot.chrootbooter.io/bootimages:get",
            "boot.chrootbooter.io/bootimages:list",
            "boot.chrootbooter.io/bootimages:watch",
            "boot.chrootbooter.io/machineboots:get",
            "boot.chrootbooter.io/machineboots:list",
            "boot.chrootbooter.io/machineboots:watch",
            "boot.chrootbooter.io/boottests:get",
            "boot.chrootbooter.io/boottests:list",
            "boot.chrootbooter.io/boottests:watch",
            "boot.chrootbooter.io/machineboots/log:get");
    assertThat(permissions(defaults.one("ClusterRole", "chrootbooter-viewer")))
        .containsExactlyInAnyOrderElementsOf(read);
    List<String> console = new java.util.ArrayList<>(read);
    console.add("boot.chrootbooter.io/machineboots/console:create");
    assertThat(permissions(defaults.one("ClusterRole", "chrootbooter-console")))
        .containsExactlyInAnyOrderElementsOf(console);

    Manifests off = Manifests.render(dir, "consoleRoles: {create: false}\n");
    assertThat(off.all("ClusterRole"))
        .extracting(r -> r.at("/metadata/name").asText())
        .doesNotContain("chrootbooter-viewer", "chrootbooter-console")
        .contains(FULLNAME + "-console-auth");
  }

  @Test
  void tlsSecretIsMountedAndServedOnHttps(@TempDir Path dir) {
    Manifests m = Manifests.render(dir, "tls: {secretName: operator-tls}\n");
    JsonNode deployment = m.one("Deployment", FULLNAME);
    JsonNode operator = m.operatorContainer();

    assertThat(volume(deployment, "tls").orElseThrow().at("/secret/secretName").asText())
        .isEqualTo("operator-tls");
    JsonNode tls = mount(operator, "tls").orElseThrow();
    assertThat(tls.path("readOnly").asBoolean()).isTrue();
    String dirPath = tls.path("mountPath").asText();
    assertThat(env(operator, "QUARKUS_HTTP_SSL_CERTIFICATE_FILES")).contains(dirPath + "/tls.crt");
    assertThat(env(operator, "QUARKUS_HTTP_SSL_CERTIFICATE_KEY_FILES"))
        .contains(dirPath + "/tls.key");
    assertThat(env(operator, "QUARKUS_HTTP_SSL_PORT")).contains("8443");
    assertThat(operator.path("ports"))
        .extracting(p -> p.path("name").asText() + ":" + p.path("containerPort").asInt())
        .containsExactlyInAnyOrder("machines:8080", "machines-https:8443", "admin:9000");
    assertThat(m.one("Service", FULLNAME).at("/spec/ports"))
        .extracting(p -> p.path("name").asText() + ":" + p.path("port").asInt())
        .containsExactlyInAnyOrder("machines:8080", "machines-https:8443");
    // Probes stay on the admin port's plain HTTP.
    assertThat(operator.at("/readinessProbe/httpGet/port").asText()).isEqualTo("admin");
  }

  @Test
  void nonDefaultStoreScriptUrlAndImage(@TempDir Path dir) {
    Manifests m =
        Manifests.render(
            dir,
            """
            publicUrl: http://10.0.0.10:8080
            image: {repository: registry.lab/cb/operator, tag: "1.2.3"}
            replicas: 3
            store: {size: 200Gi, storageClass: fast-nvme, accessMode: ReadWriteMany}
            ipxe:
              unknownMachineScript: |
                #!ipxe
                echo Unknown machine ${mac}
                exit
            """);
    JsonNode deployment = m.one("Deployment", FULLNAME);
    JsonNode operator = m.operatorContainer();

    assertThat(deployment.at("/spec/replicas").asInt()).isEqualTo(3);
    assertThat(operator.path("image").asText()).isEqualTo("registry.lab/cb/operator:1.2.3");
    assertThat(env(operator, "CB_PUBLIC_URL")).contains("http://10.0.0.10:8080");

    JsonNode pvc = m.one("PersistentVolumeClaim", "chrootbooter-images");
    assertThat(pvc.at("/spec/resources/requests/storage").asText()).isEqualTo("200Gi");
    assertThat(pvc.at("/spec/storageClassName").asText()).isEqualTo("fast-nvme");
    assertThat(strings(pvc.at("/spec/accessModes"))).containsExactly("ReadWriteMany");
    JsonNode affinity = deployment.at("/spec/template/spec/affinity");
    assertThat(affinity.has("podAffinity")).isFalse();
    assertThat(affinity.at("/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution"))
        .hasSize(1);

    JsonNode configMap = m.one("ConfigMap", FULLNAME + "-ipxe");
    String script = configMap.at("/data/unknown-machine.ipxe").asText();
    assertThat(script).isEqualTo("#!ipxe\necho Unknown machine ${mac}\nexit\n");
    assertThat(volume(deployment, "ipxe").orElseThrow().at("/configMap/name").asText())
        .isEqualTo(FULLNAME + "-ipxe");
    String mountPath = mount(operator, "ipxe").orElseThrow().path("mountPath").asText();
    assertThat(env(operator, "CB_IPXE_UNKNOWN_MACHINE_SCRIPT"))
        .contains(mountPath + "/unknown-machine.ipxe");
    // A changed script rolls the pods: the operator reads the file at start.
    assertThat(deployment.at("/spec/template/metadata/annotations/checksum~1ipxe").asText())
        .hasSize(64);

    // The pxe-server chains machines to the public URL, not to the cluster-internal Service.
    assertThat(strings(container(m.one("DaemonSet", FULLNAME + "-pxe"), "pxe-server").path("args")))
        .containsSequence("--operator", "http://10.0.0.10:8080");
  }

  @Test
  void pxeServerSettings(@TempDir Path dir) {
    Manifests m =
        Manifests.render(
            dir,
            """
            publicUrl: http://10.0.0.10:8080
            pxe:
              interface: br-pxe
              operatorUrl: http://boot.lab.internal:8080/
              defaultScript: http://boot.lab.internal:8080/unknown.ipxe
              nodeSelector: {rack: r1, chrootbooter.io/pxe: "yes"}
            store: {existingClaim: shared-images}
            bootstrap:
              volume: {persistentVolumeClaim: {claimName: bootstrap-files}}
            """);
    JsonNode daemonSet = m.one("DaemonSet", FULLNAME + "-pxe");

    assertThat(strings(container(daemonSet, "pxe-server").path("args")))
        .containsExactly(
            "--operator",
            "http://boot.lab.internal:8080",
            "--interface",
            "br-pxe",
            "--default-script",
            "http://boot.lab.internal:8080/unknown.ipxe");
    assertThat(
            Manifests.YAML.convertValue(
                daemonSet.at("/spec/template/spec/nodeSelector"), Map.class))
        .isEqualTo(Map.of("rack", "r1", "chrootbooter.io/pxe", "yes"));
    JsonNode deployment = m.one("Deployment", FULLNAME);
    assertThat(m.all("PersistentVolumeClaim")).isEmpty();
    assertThat(
            volume(deployment, "images")
                .orElseThrow()
                .at("/persistentVolumeClaim/claimName")
                .asText())
        .isEqualTo("shared-images");
    assertThat(
            volume(deployment, "bootstrap")
                .orElseThrow()
                .at("/persistentVolumeClaim/claimName")
                .asText())
        .isEqualTo("bootstrap-files");
  }

  @Test
  void bootstrapImageIsCopiedByALockedDownInitContainer(@TempDir Path dir) {
    Manifests m =
        Manifests.render(dir, "bootstrap: {image: {repository: registry.lab/cb/bootstrap}}\n");
    JsonNode deployment = m.one("Deployment", FULLNAME);
    JsonNode init = deployment.at("/spec/template/spec/initContainers/0");

    assertThat(init.path("image").asText()).isEqualTo("registry.lab/cb/bootstrap:latest");
    assertThat(init.at("/volumeMounts/0/name").asText()).isEqualTo("bootstrap");
    assertThat(strings(init.at("/securityContext/capabilities/drop"))).containsExactly("ALL");
    assertThat(init.at("/securityContext/readOnlyRootFilesystem").asBoolean()).isTrue();
    assertThat(volume(deployment, "bootstrap").orElseThrow().has("emptyDir")).isTrue();
    assertThat(
            defaults
                .one("Deployment", FULLNAME)
                .at("/spec/template/spec/initContainers")
                .isMissingNode())
        .isTrue();
  }
}
