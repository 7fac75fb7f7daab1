package io.chrootbooter.e2e.apiserver;

import java.nio.file.Path;

/**
 * The kubectl scenario with Debian 12's kubectl 1.20 (package {@code kubernetes-client}), the
 * oldest client the lab supports: {@code CB_KUBECTL_DEBIAN} (system property or environment
 * variable), by default where {@code .ci/run} extracts the package without installing it (it would
 * conflict with another package's {@code /usr/bin/kubectl}).
 */
class EmbeddedApiServerDebianKubectlTest extends AbstractEmbeddedApiServerKubectlTest {

  @Override
  Path kubectlBinary() {
    return Kubectl.binary("CB_KUBECTL_DEBIAN", "/opt/kubectl-debian/usr/bin/kubectl");
  }

  @Override
  String howToProvide() {
    return "Get Debian 12's kubectl 1.20 without installing it: cd /tmp && apt-get download kubernetes-client"
        + " && dpkg -x kubernetes-client_*.deb /opt/kubectl-debian (or set CB_KUBECTL_DEBIAN).";
  }
}
