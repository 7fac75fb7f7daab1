/**
 * The embedded Kubernetes API of the local lab: the fabric8 mock server's CRUD dispatcher, made
 * usable by Debian's {@code kubectl} 1.20.
 *
 * <p>The mock server stores objects, bumps {@code resourceVersion}/{@code generation} and honours
 * the {@code status} subresource of the CRDs it holds, but kubectl needs more: discovery ({@code
 * /api}, {@code /apis}, resource lists), {@code /openapi/v2} for client-side validation,
 * server-side {@code Table}s (kubectl renders CRD printer columns only from those), strategic-merge
 * and server-side-apply PATCHes, field selectors on events, and watches as HTTP streams (the mock
 * server only speaks WebSocket watches, which fabric8 uses and client-go does not). {@link
 * io.chrootbooter.e2e.apiserver.ApiDispatcher} adds the request/response parts in front of the CRUD
 * dispatcher; {@link io.chrootbooter.e2e.apiserver.ApiHttpServer} is the Vert.x front that serves
 * both kinds of watch. Nothing here is a Kubernetes reimplementation: what the CRUD dispatcher
 * does, it keeps doing.
 */
package io.chrootbooter.e2e.apiserver;
