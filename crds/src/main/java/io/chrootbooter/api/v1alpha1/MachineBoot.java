package io.chrootbooter.api.v1alpha1;

import io.fabric8.crd.generator.annotation.AdditionalPrinterColumn;
import io.fabric8.kubernetes.api.model.Namespaced;
import io.fabric8.kubernetes.client.CustomResource;
import io.fabric8.kubernetes.model.annotation.Group;
import io.fabric8.kubernetes.model.annotation.Plural;
import io.fabric8.kubernetes.model.annotation.ShortNames;
import io.fabric8.kubernetes.model.annotation.Version;

/** What one bare-metal machine, identified by its MAC address, should run. */
@Group(BootImage.GROUP)
@Version(BootImage.VERSION)
@ShortNames("mb")
@Plural("machineboots")
@AdditionalPrinterColumn(
    name = "Phase",
    jsonPath = ".status.phase",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Image",
    jsonPath = ".spec.imageRef",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "IP",
    jsonPath = ".status.agent.ip",
    type = AdditionalPrinterColumn.Type.STRING)
@AdditionalPrinterColumn(
    name = "Seen",
    jsonPath = ".status.lastSeen",
    type = AdditionalPrinterColumn.Type.DATE)
@AdditionalPrinterColumn(
    name = "Age",
    jsonPath = ".metadata.creationTimestamp",
    type = AdditionalPrinterColumn.Type.DATE)
@AdditionalPrinterColumn(
    name = "MAC",
    jsonPath = ".spec.macAddress",
    type = AdditionalPrinterColumn.Type.STRING,
    priority = 1)
@AdditionalPrinterColumn(
    name = "Running",
    jsonPath = ".status.currentImage",
    type = AdditionalPrinterColumn.Type.STRING,
    priority = 1)
@AdditionalPrinterColumn(
    name = "Reason",
    jsonPath = ".status.conditions[?(@.type==\"Stalled\")].reason",
    type = AdditionalPrinterColumn.Type.STRING,
    priority = 1)
@AdditionalPrinterColumn(
    name = "Local",
    jsonPath = ".status.prefetch.fullyLocal",
    type = AdditionalPrinterColumn.Type.BOOLEAN,
    priority = 1)
public class MachineBoot extends CustomResource<MachineBootSpec, MachineBootStatus>
    implements Namespaced {}
