/** End-to-end tests: QEMU machines booting through the real PXE, operator and agent path. */
package io.chrootbooter.e2e;
