/** The node agent that runs in the bootstrap initramfs: download, verify, pivot, return. */
package io.chrootbooter.agent;
