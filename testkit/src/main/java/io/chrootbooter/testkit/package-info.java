/**
 * The fixture of every test that boots a machine: a {@link io.chrootbooter.testkit.LabNetwork} (a
 * network namespace with a bridge, a tap per machine, dnsmasq as the site's DHCP server, and
 * namespaces wired to it) and {@link io.chrootbooter.testkit.Machine}s (QEMU under TCG, on a tap of
 * that network, on QEMU's own user network or on none): power, keys, serial ports, console capture
 * and typing. What a lab machine is — its MAC, its address, QEMU's machine, CPU, memory and NIC —
 * is written once, in {@code machine.properties} beside these classes, which {@code ./lab} reads as
 * well ({@link io.chrootbooter.testkit.MachineDescription}).
 *
 * <p>Everything a fixture starts is torn down in reverse order by {@code close()}, also when
 * starting failed half way, and by a shutdown hook when the JVM ends before the test closed it. It
 * uses the JDK only: tests of the PXE server and the agent depend on it in test scope.
 */
package io.chrootbooter.testkit;
