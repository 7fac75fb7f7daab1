#!/bin/sh
# kubectl-boot: Chroot Booter's kubectl plugin. This file is a shell stub followed by a Java
# archive: put it on the PATH and run `kubectl boot --help`. It needs Java 17 or later: java on
# the PATH, or $JAVA_HOME, or $KUBECTL_BOOT_JAVA naming the java binary.
java=${KUBECTL_BOOT_JAVA:-${JAVA_HOME:+$JAVA_HOME/bin/java}}
# shellcheck disable=SC2086 # KUBECTL_BOOT_JAVA_OPTS: more JVM options, split at spaces
exec "${java:-java}" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto -Xss512k \
  $KUBECTL_BOOT_JAVA_OPTS -jar "$0" "$@"
