/**
 * BootImages: their reconciler, the downloads that mirror a source into the image store, the store,
 * and the routes that serve it.
 *
 * <p><b>Which sources are fetched.</b> Before every request of a download — the first one, every
 * retry and every redirect hop, which {@link io.chrootbooter.operator.image.Mirror} follows itself
 * (at most five, never from https to http) — the host is resolved and {@link
 * io.chrootbooter.operator.image.SourcePolicy} judges every address it resolves to, with the
 * cluster's pod and Service networks from {@link io.chrootbooter.operator.image.ClusterNetworks}
 * among its rules. A refused host fails the BootImage with reason {@code SourceRejected} and a
 * message naming the host and the rule, never an address a name resolved to; nothing is sent to it,
 * so no connection error or answer of an internal address can show in a status.
 *
 * <p><b>What is left: DNS rebinding.</b> {@link java.net.http.HttpClient} resolves the host again
 * when it connects; the connection is not pinned to the address that was checked. Both lookups go
 * through the JVM's address cache ({@code networkaddress.cache.ttl}, 30 s by default), so they
 * normally see the same addresses, but a name whose cache entry expires between the check and the
 * connection — its owner can make its records short-lived and change them — may be connected to at
 * an address the policy would refuse. Pinning would take a JVM-wide resolver of our own (Java 18's
 * {@code InetAddressResolverProvider}; the operator runs on 17) or giving up the client's host name
 * verification. In that window the download runs as it would from an allowed address: its errors
 * and the digest of what it received may show in the status, and with {@code insecureSkipVerify}
 * the bytes are served. Sites that cannot accept this keep BootImage creation to people trusted
 * with the operator's network reach.
 */
package io.chrootbooter.operator.image;
