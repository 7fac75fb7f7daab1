/**
 * {@code kubectl boot}: a kubectl plugin for Chroot Booter's machines. Switch and return machines,
 * read their boot timelines, run a BootTest and fetch its JUnit report, read a machine's recorded
 * console and attach to its live one.
 *
 * <p>It speaks two protocols, both defined elsewhere: the Kubernetes API (through the fabric8
 * client, which reads the kubeconfig, its credentials and port-forwards) and the operator's admin
 * port, whose console contract is plain HTTP and a WebSocket of binary frames (the JDK's own client
 * for both, so that nothing is added to the one file users install). The only codec written here is
 * the console's {@code ~.} escape, a few lines of state in {@link EscapeFilter}.
 */
package io.chrootbooter.cli;
