package io.chrootbooter.e2e.apiserver;

import java.nio.file.Path;

/**
 * The kubectl scenario with the machine's kubectl: {@code CB_KUBECTL} (system property or
 * environment variable), by default {@code /usr/bin/kubectl}.
 */
class EmbeddedApiServerKubectlTest extends AbstractEmbeddedApiServerKubectlTest {

  @Override
  Path kubectlBinary() {
    return Kubectl.binary("CB_KUBECTL", "/usr/bin/kubectl");
  }

  @Override
  String howToProvide() {
    return "Install kubectl or point CB_KUBECTL at one.";
  }
}
