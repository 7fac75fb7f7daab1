/**
 * The bootstrap kernel's modules and firmware in a target. Targets run on the bootstrap's kernel,
 * so the modules an image ships for its own kernel do not load; the bootstrap build makes one
 * squashfs of that kernel's complete {@code /lib/modules/<version>} and the firmware Debian ships
 * for it (the modules image), whose SHA-256 the initramfs carries. {@link ModulesImage} fetches it
 * once per boot, verifies it against that digest, mounts it read-only and binds it into each target
 * that asks for it ({@code spec.kernelModules: Bootstrap}).
 */
package io.chrootbooter.agent.modules;
