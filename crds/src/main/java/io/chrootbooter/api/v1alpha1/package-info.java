/** The Chroot Booter API, group {@code boot.chrootbooter.io}, version {@code v1alpha1}. */
package io.chrootbooter.api.v1alpha1;
