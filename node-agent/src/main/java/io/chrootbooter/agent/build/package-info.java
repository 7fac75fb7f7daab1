/**
 * Build-time steps of the bootstrap, run by {@code src/bootstrap/build.sh} with the JDK it jlinks
 * from; nothing here runs on machines.
 *
 * <p>{@link ProxyKeys} is our own small class-file rewriter rather than a bytecode library: it
 * changes nothing but {@code CONSTANT_Utf8} entries of the constant pool, whose layout the JVM
 * specification fixes (§4.4), and the bootstrap's runtime has no bytecode library to lend.
 */
package io.chrootbooter.agent.build;
