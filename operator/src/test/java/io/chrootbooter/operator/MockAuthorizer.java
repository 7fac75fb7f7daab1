package io.chrootbooter.operator;

import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.UserInfoBuilder;
import io.fabric8.kubernetes.api.model.authorization.v1.ResourceAttributes;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReview;
import io.fabric8.kubernetes.api.model.authorization.v1.SubjectAccessReviewStatusBuilder;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.client.utils.Serialization;
import io.quarkus.test.kubernetes.client.KubernetesServer;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What the fabric8 mock server lacks for the console scenarios: an API server's authenticator and
 * authorizer. Tokens it issued authenticate their user in a {@code TokenReview}; a {@code
 * SubjectAccessReview} is allowed when a rule granted to that user in that namespace matches, with
 * RBAC's matching (verbs, API groups, {@code resource/subresource}, resource names, {@code *}). The
 * scenarios grant the same rules they bind with Roles on a real API server.
 */
final class MockAuthorizer {
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final Map<String, String> USERS = new ConcurrentHashMap<>();
  private static final Map<String, List<PolicyRule>> GRANTS = new ConcurrentHashMap<>();

  private MockAuthorizer() {}

  /** Answers the two reviews on {@code server}, before any other expectation or the CRUD store. */
  static void install(KubernetesServer server) {
    server
        .expect()
        .post()
        .withPath("/apis/authentication.k8s.io/v1/tokenreviews")
        .andReply(201, request -> tokenReview(request.getUtf8Body()))
        .always();
    server
        .expect()
        .post()
        .withPath("/apis/authorization.k8s.io/v1/subjectaccessreviews")
        .andReply(201, request -> access(request.getUtf8Body()))
        .always();
  }

  /** A fresh token of {@code user}. */
  static String issue(String user) {
    byte[] bytes = new byte[24];
    RANDOM.nextBytes(bytes);
    String token = "mock." + Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    USERS.put(token, user);
    return token;
  }

  /** Grants {@code rules} to {@code user} in {@code namespace} (a Role bound to them). */
  static void grant(String namespace, String user, List<PolicyRule> rules) {
    GRANTS.put(namespace + "\u0000" + user, List.copyOf(rules));
  }

  private static TokenReview tokenReview(String body) {
    TokenReview review = Serialization.unmarshal(body, TokenReview.class);
    String user = review.getSpec() == null ? null : USERS.get(review.getSpec().getToken());
    review.setStatus(
        user == null
            ? new io.fabric8.kubernetes.api.model.authentication.TokenReviewStatusBuilder()
                .withAuthenticated(false)
                .withError("invalid bearer token")
                .build()
            : new io.fabric8.kubernetes.api.model.authentication.TokenReviewStatusBuilder()
                .withAuthenticated(true)
                .withUser(
                    new UserInfoBuilder()
                        .withUsername(user)
                        .withGroups("system:serviceaccounts", "system:authenticated")
                        .build())
                .build());
    return review;
  }

  private static SubjectAccessReview access(String body) {
    SubjectAccessReview review = Serialization.unmarshal(body, SubjectAccessReview.class);
    ResourceAttributes a = review.getSpec().getResourceAttributes();
    List<PolicyRule> rules =
        GRANTS.getOrDefault(a.getNamespace() + "\u0000" + review.getSpec().getUser(), List.of());
    String resource =
        a.getSubresource() == null || a.getSubresource().isEmpty()
            ? a.getResource()
            : a.getResource() + "/" + a.getSubresource();
    boolean allowed =
        rules.stream()
            .anyMatch(
                r ->
                    matches(r.getVerbs(), a.getVerb())
                        && matches(r.getApiGroups(), a.getGroup())
                        && matches(r.getResources(), resource)
                        && (r.getResourceNames() == null
                            || r.getResourceNames().isEmpty()
                            || r.getResourceNames().contains(a.getName())));
    review.setStatus(new SubjectAccessReviewStatusBuilder().withAllowed(allowed).build());
    return review;
  }

  private static boolean matches(List<String> allowed, String value) {
    return allowed != null && (allowed.contains("*") || allowed.contains(value));
  }
}
