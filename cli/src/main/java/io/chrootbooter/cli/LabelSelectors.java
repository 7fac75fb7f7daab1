package io.chrootbooter.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * kubectl's label selector syntax ({@code rack=a,env!=prod,tier in (x,y),gpu,!old}) as a Kubernetes
 * LabelSelector object (matchLabels, matchExpressions).
 */
final class LabelSelectors {

  private static final String KEY =
      "([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?";
  private static final String VALUE = "([a-z0-9A-Z]([-a-z0-9A-Z_.]{0,61}[a-z0-9A-Z])?)?";

  private LabelSelectors() {}

  /** Whether the text is a selector rather than a list of names. */
  static boolean isSelector(String text) {
    return text.matches(".*[=!()\\s].*");
  }

  static ObjectNode parse(String text) {
    ObjectNode selector = Json.object();
    ObjectNode matchLabels = Json.object();
    ArrayNode expressions = Json.MAPPER.createArrayNode();
    for (String term : split(text)) {
      String t = term.strip();
      java.util.regex.Matcher m;
      if ((m =
              java.util.regex.Pattern.compile("(" + KEY + ")\\s*(==?|!=)\\s*(" + VALUE + ")")
                  .matcher(t))
          .matches()) {
        String key = m.group(1);
        String op = m.group(5);
        String value = m.group(6);
        if (op.equals("!=")) {
          expressions.add(expression(key, "NotIn", List.of(value)));
        } else {
          matchLabels.put(key, value);
        }
      } else if ((m =
              java.util.regex.Pattern.compile("(" + KEY + ")\\s+(in|notin)\\s*\\(([^)]*)\\)")
                  .matcher(t))
          .matches()) {
        List<String> values = new ArrayList<>();
        for (String v : m.group(6).split(",")) {
          String value = v.strip();
          if (!value.matches(VALUE)) {
            throw bad(text);
          }
          values.add(value);
        }
        expressions.add(expression(m.group(1), m.group(5).equals("in") ? "In" : "NotIn", values));
      } else if (t.matches(KEY)) {
        expressions.add(expression(t, "Exists", List.of()));
      } else if (t.startsWith("!") && t.substring(1).strip().matches(KEY)) {
        expressions.add(expression(t.substring(1).strip(), "DoesNotExist", List.of()));
      } else {
        throw bad(text);
      }
    }
    if (matchLabels.size() > 0) {
      selector.set("matchLabels", matchLabels);
    }
    if (expressions.size() > 0) {
      selector.set("matchExpressions", expressions);
    }
    return selector;
  }

  private static ObjectNode expression(String key, String operator, List<String> values) {
    ObjectNode e = Json.object();
    e.put("key", key);
    e.put("operator", operator);
    if (!values.isEmpty()) {
      ArrayNode v = e.putArray("values");
      values.forEach(v::add);
    }
    return e;
  }

  /** Splits at the commas outside parentheses. */
  private static List<String> split(String text) {
    List<String> terms = new ArrayList<>();
    int depth = 0;
    int from = 0;
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == '(') {
        depth++;
      } else if (c == ')') {
        depth--;
      } else if (c == ',' && depth == 0) {
        terms.add(text.substring(from, i));
        from = i + 1;
      }
    }
    terms.add(text.substring(from));
    if (depth != 0 || terms.stream().anyMatch(s -> s.isBlank())) {
      throw bad(text);
    }
    return terms;
  }

  private static CliException bad(String text) {
    return new CliException(
        Exit.USAGE,
        "--machines \""
            + Terminal.printable(text)
            + "\": give machine names (m1,m2) or a label selector (rack=a,env!=prod,tier in (x,y))");
  }
}
