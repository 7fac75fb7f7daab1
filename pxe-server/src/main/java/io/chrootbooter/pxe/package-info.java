/** proxyDHCP and TFTP server that hands PXE clients iPXE and chains them to the operator. */
package io.chrootbooter.pxe;
